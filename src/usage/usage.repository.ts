import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';

export interface UsageRow {
  id: string;
  budget_id: string;
  amount: string;
  currency: string;
  source: string;
  description: string | null;
  model_id: string | null;
  user_id: string | null;
  team_id: string | null;
  project_id: string | null;
  request_id: string | null;
  reservation_id: string | null;
  metadata: Record<string, unknown> | null;
  occurred_at: Date;
  recorded_at: Date;
  /** occurred_at with microseconds, the pagination key. */
  occurred_key?: string;
}

export interface FiredAlert {
  id: string;
  budgetId: string;
  alertId: string;
  threshold: number;
  type: string;
  percentUsed: number;
  amount: number;
  actions: string[];
  notificationChannels: string[];
  periodStart: string;
  triggeredAt: string;
}

export interface RecordedUsageRow extends UsageRow {
  replayed: boolean;
  fired_alerts: FiredAlert[];
}

export interface UsageWrite {
  budgetId: string;
  amount: string;
  currency: string;
  source: string;
  description: string | null;
  modelId: string | null;
  userId: string | null;
  teamId: string | null;
  projectId: string | null;
  requestId: string | null;
  idempotencyKey: string | null;
  requestHash: string;
  metadata: Record<string, unknown> | null;
  occurredAt: Date;
  reservationId: string | null;
}

export interface BatchRow extends RecordedUsageRow {
  ordinal: number;
  status: number;
  error_code: string | null;
  error_detail: string | null;
}

/** One row of `get_budget_status`: the cache row and the budget's settings. */
export interface StatusRow {
  budget_id: string;
  amount: string;
  currency: string;
  warning_threshold: string;
  critical_threshold: string;
  enforcement: string;
  period_start: Date;
  period_end: Date;
  active: boolean;
  current_amount: string;
  usage_count: string;
  last_usage_at: Date | null;
  updated_at: Date;
  active_alerts: ActiveAlertJson[];
  /** Held by open, unexpired reservations. */
  reserved_amount: string;
}

export interface ActiveAlertJson {
  id: string;
  alertId: string;
  threshold: number | string;
  type: string;
  triggeredAt: string;
  percentUsed: number | string;
  amount: number | string;
  actions: string[];
  acknowledged: boolean;
  acknowledgedAt: string | null;
  acknowledgedBy: string | null;
}

export interface HistoryFilter {
  budgetId: string;
  includeDescendants: boolean;
  from?: string;
  to?: string;
  modelId?: string;
  source?: string;
  userId?: string;
  before?: [string, string];
  limit: number;
}

export interface SummaryRow {
  grouping: number;
  model_id: string | null;
  source: string | null;
  user_id: string | null;
  day: string | null;
  total: string;
  count: string;
  range_from: Date;
  range_to: Date;
}

const USAGE_COLUMNS = `
  r.id, r.budget_id, r.amount::text AS amount, r.currency, r.source, r.description, r.model_id, r.user_id,
  r.team_id, r.project_id, r.request_id, r.reservation_id, r.metadata, r.occurred_at, r.recorded_at`;

/** Every statement of the usage ledger; each public method is one round trip. */
@Injectable()
export class UsageRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /** Records one usage (or replays it) through `record_usage`: validation, idempotency, cache and alerts in SQL. */
  async record(write: UsageWrite, manager: EntityManager = this.dataSource.manager): Promise<RecordedUsageRow> {
    const rows = await manager.query(
      `SELECT replayed, id, budget_id, amount::text AS amount, currency, source, description, model_id, user_id,
              team_id, project_id, request_id, reservation_id, metadata, occurred_at, recorded_at, fired_alerts
       FROM record_usage($1, $2::numeric, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::jsonb, $14::timestamptz, $15::uuid)`,
      [
        write.budgetId, write.amount, write.currency, write.source, write.description, write.modelId, write.userId,
        write.teamId, write.projectId, write.requestId, write.idempotencyKey, write.requestHash,
        write.metadata === null ? null : JSON.stringify(write.metadata), write.occurredAt.toISOString(), write.reservationId,
      ],
    );
    return rows[0];
  }

  /** Many records in one transaction and one round trip; each answered on its own line. */
  recordBatch(budgetId: string, writes: UsageWrite[]): Promise<BatchRow[]> {
    return this.dataSource.query(
      `SELECT ordinal, status, error_code, error_detail, replayed, id, budget_id, amount::text AS amount, currency,
              source, description, model_id, user_id, team_id, project_id, request_id, reservation_id, metadata,
              occurred_at, recorded_at, fired_alerts
       FROM record_usage_batch($1::uuid, $2::jsonb)`,
      [budgetId, JSON.stringify(writes)],
    );
  }

  /** The status row for the window containing `at`, refreshing a stale cache row first. */
  async status(budgetId: string, at: Date): Promise<StatusRow> {
    const rows = await this.dataSource.query(
      `SELECT budget_id, amount::text AS amount, currency, warning_threshold::text AS warning_threshold,
              critical_threshold::text AS critical_threshold, enforcement, period_start, period_end, active,
              current_amount::text AS current_amount, usage_count::text AS usage_count, last_usage_at, updated_at,
              active_alerts, budget_reserved_amount(budget_id, $2::timestamptz)::text AS reserved_amount
       FROM get_budget_status($1::uuid, $2::timestamptz)`,
      [budgetId, at.toISOString()],
    );
    return rows[0];
  }

  async statuses(budgetIds: string[], at: Date): Promise<StatusRow[]> {
    if (!budgetIds.length) return [];
    return this.dataSource.query(
      `SELECT budget_id, amount::text AS amount, currency, warning_threshold::text AS warning_threshold,
              critical_threshold::text AS critical_threshold, enforcement, period_start, period_end, active,
              current_amount::text AS current_amount, usage_count::text AS usage_count, last_usage_at, updated_at,
              active_alerts, budget_reserved_amount(budget_id, $2::timestamptz)::text AS reserved_amount
       FROM get_budget_statuses($1::uuid[], $2::timestamptz)`,
      [budgetIds, at.toISOString()],
    );
  }

  /** Recomputes the cache row from the ledger. */
  async refresh(budgetId: string, at: Date): Promise<void> {
    await this.dataSource.query(`SELECT refresh_budget_status_cache($1::uuid, $2::timestamptz)`, [budgetId, at.toISOString()]);
  }

  /**
   * Newest first by (occurredAt, id); keyset pagination stays stable under concurrent inserts.
   * Each budget of the tree gives its own newest rows by a backward scan of its index range
   * (LATERAL ... LIMIT), and only those few are merged: never a sort of the whole ledger.
   */
  async history(filter: HistoryFilter): Promise<UsageRow[]> {
    // Only the filters given become conditions, so the plan (custom or generic) always has them
    // as index conditions rather than "$n IS NULL OR ..." branches.
    const params: unknown[] = [filter.budgetId, filter.includeDescendants];
    const where = ['r.budget_id = tree.id'];
    const add = (condition: (placeholder: string) => string, value: unknown) =>
      where.push(condition(`$${params.push(value)}`));
    if (filter.from) add((p) => `r.occurred_at >= ${p}::timestamptz`, filter.from);
    if (filter.to) add((p) => `r.occurred_at < ${p}::timestamptz`, filter.to);
    if (filter.modelId) add((p) => `r.model_id = ${p}`, filter.modelId);
    if (filter.source) add((p) => `r.source = ${p}`, filter.source);
    if (filter.userId) add((p) => `r.user_id = ${p}`, filter.userId);
    if (filter.before) {
      const at = `$${params.push(filter.before[0])}`;
      const id = `$${params.push(filter.before[1])}`;
      where.push(`(r.occurred_at, r.id) < (${at}::timestamptz, ${id}::uuid)`);
    }
    const limit = `$${params.push(filter.limit + 1)}`;
    return this.dataSource.query(
      `WITH RECURSIVE tree AS (
         SELECT $1::uuid AS id
         UNION ALL
         SELECT c.id FROM budget_definitions c JOIN tree t ON c.parent_id = t.id WHERE $2::boolean
       )
       SELECT r.*
       FROM tree CROSS JOIN LATERAL (
         SELECT ${USAGE_COLUMNS},
                to_char(r.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS occurred_key
         FROM budget_usage_records r
         WHERE ${where.join(' AND ')}
         ORDER BY r.occurred_at DESC, r.id DESC
         LIMIT ${limit}) r
       ORDER BY r.occurred_at DESC, r.id DESC
       LIMIT ${limit}`,
      params,
    );
  }

  /**
   * Total, count and the four breakdowns in one scan (GROUPING SETS) over the budget and its
   * descendants, for [from, to) or, by default, the window containing `at`. Days are local to the
   * budget's time zone.
   */
  async summary(budgetId: string, from: string | undefined, to: string | undefined, at: Date): Promise<SummaryRow[]> {
    return this.dataSource.query(
      `WITH RECURSIVE tree AS (
         SELECT id FROM budget_definitions WHERE id = $1::uuid
         UNION ALL
         SELECT c.id FROM budget_definitions c JOIN tree t ON c.parent_id = t.id
       ), budget AS (
         SELECT b.timezone, coalesce($2::timestamptz, w.period_start) AS range_from,
                coalesce($3::timestamptz, w.period_end) AS range_to
         FROM budget_definitions b,
              budget_period_window(b.start_date, b.end_date, b.period, b.custom_period_days, b.recurring, b.timezone,
                                   $4::timestamptz) w
         WHERE b.id = $1::uuid
       ), usage AS (
         -- The index range is keyed on the tree's budget ids and the time range: index-only.
         SELECT r.amount, r.model_id, r.source, r.user_id,
                to_char(r.occurred_at AT TIME ZONE budget.timezone, 'YYYY-MM-DD') AS day
         FROM budget, budget_usage_records r
         WHERE r.budget_id = ANY (ARRAY(SELECT id FROM tree))
           AND r.occurred_at >= budget.range_from AND r.occurred_at < budget.range_to
       )
       SELECT GROUPING(model_id, source, user_id, day) AS grouping, model_id, source, user_id, day,
              coalesce(sum(amount), 0)::text AS total, count(*)::text AS count,
              (SELECT range_from FROM budget) AS range_from, (SELECT range_to FROM budget) AS range_to
       FROM usage
       GROUP BY GROUPING SETS ((), (model_id), (source), (user_id), (day))`,
      [budgetId, from ?? null, to ?? null, at.toISOString()],
    );
  }
}
