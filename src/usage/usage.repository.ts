import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';

import type { Scope } from '../budget/budget.types';
import type { ActiveAlertJson, FiredAlert } from './usage.events';

/** One ledger line as the repository returns it (money as exact NUMERIC text). */
export interface UsageRow {
  id: string;
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
  reservationId: string | null;
  metadata: Record<string, unknown> | null;
  occurredAt: Date;
  recordedAt: Date;
  /** occurred_at with microseconds, the pagination key. */
  occurredKey?: string;
}

export interface RecordedUsageRow extends UsageRow {
  replayed: boolean;
  firedAlerts: FiredAlert[];
}

/** A usage as `record_usage` takes it, built by usage-write.ts. */
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
  errorCode: string | null;
  errorDetail: string | null;
}

/** One row of `get_budget_status`: the cache row and the budget's settings. */
export interface StatusRow {
  budgetId: string;
  amount: string;
  currency: string;
  warningThreshold: string;
  criticalThreshold: string;
  enforcement: string;
  periodStart: Date;
  periodEnd: Date;
  active: boolean;
  currentAmount: string;
  usageCount: string;
  lastUsageAt: Date | null;
  updatedAt: Date;
  activeAlerts: ActiveAlertJson[];
  /** Held by open, unexpired reservations. */
  reservedAmount: string;
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
  modelId: string | null;
  source: string | null;
  userId: string | null;
  day: string | null;
  total: string;
  count: string;
  rangeFrom: Date;
  rangeTo: Date;
}

/** The columns of a ledger line, as UsageRow names them. */
const USAGE_COLUMNS = `
  r.id, r.budget_id AS "budgetId", r.amount::text AS amount, r.currency, r.source, r.description,
  r.model_id AS "modelId", r.user_id AS "userId", r.team_id AS "teamId", r.project_id AS "projectId",
  r.request_id AS "requestId", r.reservation_id AS "reservationId", r.metadata, r.occurred_at AS "occurredAt",
  r.recorded_at AS "recordedAt"`;

/** The columns record_usage, record_usage_batch and record_integration_usage return, as RecordedUsageRow names them. */
const RECORDED_COLUMNS = `
  replayed, id, budget_id AS "budgetId", amount::text AS amount, currency, source, description,
  model_id AS "modelId", user_id AS "userId", team_id AS "teamId", project_id AS "projectId",
  request_id AS "requestId", reservation_id AS "reservationId", metadata, occurred_at AS "occurredAt",
  recorded_at AS "recordedAt", fired_alerts AS "firedAlerts"`;

/** The columns of get_budget_status(es), as StatusRow names them. */
const STATUS_COLUMNS = `
  budget_id AS "budgetId", amount::text AS amount, currency, warning_threshold::text AS "warningThreshold",
  critical_threshold::text AS "criticalThreshold", enforcement, period_start AS "periodStart",
  period_end AS "periodEnd", active, current_amount::text AS "currentAmount", usage_count::text AS "usageCount",
  last_usage_at AS "lastUsageAt", updated_at AS "updatedAt", active_alerts AS "activeAlerts",
  budget_reserved_amount(budget_id, $2::timestamptz)::text AS "reservedAmount"`;

const metadataParam = (write: Pick<UsageWrite, 'metadata'>) => (write.metadata === null ? null : JSON.stringify(write.metadata));

/** Every statement of the usage ledger; each public method is one round trip. */
@Injectable()
export class UsageRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /** Records one usage (or replays it) through `record_usage`: validation, idempotency, cache and alerts in SQL. */
  async record(write: UsageWrite): Promise<RecordedUsageRow> {
    const rows = await this.dataSource.query(
      `SELECT ${RECORDED_COLUMNS}
       FROM record_usage($1, $2::numeric, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::jsonb, $14::timestamptz, $15::uuid)`,
      [
        write.budgetId, write.amount, write.currency, write.source, write.description, write.modelId, write.userId,
        write.teamId, write.projectId, write.requestId, write.idempotencyKey, write.requestHash,
        metadataParam(write), write.occurredAt.toISOString(), write.reservationId,
      ],
    );
    return rows[0];
  }

  /** Many records in one transaction and one round trip; each answered on its own line. */
  recordBatch(budgetId: string, writes: UsageWrite[]): Promise<BatchRow[]> {
    return this.dataSource.query(
      `SELECT ordinal, status, error_code AS "errorCode", error_detail AS "errorDetail", ${RECORDED_COLUMNS}
       FROM record_usage_batch($1::uuid, $2::jsonb)`,
      [budgetId, JSON.stringify(writes)],
    );
  }

  /** Records an AI request named by its scopes once per budget tree, in one transaction (`record_integration_usage`). */
  recordForScopes(scopes: Scope[], write: Omit<UsageWrite, 'budgetId' | 'idempotencyKey'>): Promise<RecordedUsageRow[]> {
    return this.dataSource.query(
      `SELECT ${RECORDED_COLUMNS}
       FROM record_integration_usage($1::text[], $2::text[], $3::numeric, $4, $5, $6, $7, $8, $9, $10, $11, $12,
                                     $13::jsonb, $14::timestamptz, $15::uuid)`,
      [
        scopes.map((s) => s.type), scopes.map((s) => s.id), write.amount, write.currency, write.source,
        write.description, write.modelId, write.userId, write.teamId, write.projectId, write.requestId,
        write.requestHash, metadataParam(write), write.occurredAt.toISOString(), write.reservationId,
      ],
    );
  }

  /** The status row for the window containing `at`, refreshing a stale cache row first. */
  async status(budgetId: string, at: Date): Promise<StatusRow> {
    const rows = await this.dataSource.query(
      `SELECT ${STATUS_COLUMNS} FROM get_budget_status($1::uuid, $2::timestamptz)`,
      [budgetId, at.toISOString()],
    );
    return rows[0];
  }

  /** Status rows of several budgets (missing or deleted ones left out), in one round trip. */
  async statuses(budgetIds: string[], at: Date): Promise<StatusRow[]> {
    if (!budgetIds.length) return [];
    return this.dataSource.query(
      `SELECT ${STATUS_COLUMNS} FROM get_budget_statuses($1::uuid[], $2::timestamptz)`,
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
                to_char(r.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS "occurredKey"
         FROM budget_usage_records r
         WHERE ${where.join(' AND ')}
         ORDER BY r.occurred_at DESC, r.id DESC
         LIMIT ${limit}) r
       ORDER BY r."occurredAt" DESC, r.id DESC
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
       SELECT GROUPING(model_id, source, user_id, day) AS grouping, model_id AS "modelId", source,
              user_id AS "userId", day, coalesce(sum(amount), 0)::text AS total, count(*)::text AS count,
              (SELECT range_from FROM budget) AS "rangeFrom", (SELECT range_to FROM budget) AS "rangeTo"
       FROM usage
       GROUP BY GROUPING SETS ((), (model_id), (source), (user_id), (day))`,
      [budgetId, from ?? null, to ?? null, at.toISOString()],
    );
  }
}
