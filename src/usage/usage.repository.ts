import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';

import type { Scope } from '../budget/budget.types';
import { prepared } from '../database/prepared-statements';
import type { PriceLookupHints } from '../pricing/pricing.types';
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
  customerId: string | null;
  tags: string[] | null;
  requestId: string | null;
  reservationId: string | null;
  metadata: Record<string, unknown> | null;
  occurredAt: Date;
  recordedAt: Date;
  /** The budgets an integration usage matched (null for a single-budget write: it matched budgetId). */
  matchedBudgetIds: string[] | null;
  provider: string | null;
  inputTokens: number | null;
  outputTokens: number | null;
  cachedInputTokens: number | null;
  /** The price version a token-priced amount was computed from. */
  priceId: string | null;
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
  /** Null: priced from the tokens at occurredAt, in the write's own statement. */
  amount: string | null;
  currency: string;
  source: string;
  description: string | null;
  modelId: string | null;
  userId: string | null;
  teamId: string | null;
  projectId: string | null;
  customerId: string | null;
  tags: string[] | null;
  requestId: string | null;
  idempotencyKey: string | null;
  requestHash: string;
  metadata: Record<string, unknown> | null;
  occurredAt: Date;
  reservationId: string | null;
  provider: string | null;
  inputTokens: number | null;
  outputTokens: number | null;
  cachedInputTokens: number | null;
  /** PriceLookupHints, as the statement takes them (null unless the amount is priced from tokens). */
  priceMaker: string | null;
  priceAliasProvider: string | null;
  priceAliasModelId: string | null;
}

/** The catalog's lookup hints as a write carries them. */
export const priceHintFields = (hints: PriceLookupHints) => ({
  priceMaker: hints.maker,
  priceAliasProvider: hints.aliasProvider,
  priceAliasModelId: hints.aliasModelId,
});

export interface BatchRow extends RecordedUsageRow {
  ordinal: number;
  status: number;
  errorCode: string | null;
  errorDetail: string | null;
}

/** A line of `record_usage_group`: the write's row when it was recorded now or replayed. */
export interface GroupRow extends RecordedUsageRow {
  ordinal: number;
  recorded: boolean;
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
  customerId?: string;
  tag?: string;
  before?: [string, string];
  limit: number;
}

/** A summary dimension: the breakdowns of budget_usage_sums, and the days of the budget's time zone. */
export type SummaryDimension = 'total' | 'model' | 'source' | 'user' | 'tag' | 'day';

/** One line of a summary: the sum and count of one value of one dimension (none when nothing counts). */
export interface SummaryRow {
  dimension: SummaryDimension | null;
  key: string | null;
  total: string | null;
  count: string | null;
  rangeFrom: Date;
  rangeTo: Date;
}

/** The tokens of a ledger line and the price version they were priced at, as UsageRow names them. */
const TOKEN_COLUMNS = (r: string) => `${r}provider, ${r}input_tokens AS "inputTokens", ${r}output_tokens AS "outputTokens",
  ${r}cached_input_tokens AS "cachedInputTokens", ${r}price_id AS "priceId"`;

/** The columns of a ledger line, as UsageRow names them. */
const USAGE_COLUMNS = `
  r.id, r.budget_id AS "budgetId", r.amount::text AS amount, r.currency, r.source, r.description,
  r.model_id AS "modelId", r.user_id AS "userId", r.team_id AS "teamId", r.project_id AS "projectId",
  r.customer_id AS "customerId", r.tags, r.request_id AS "requestId", r.reservation_id AS "reservationId", r.metadata,
  r.occurred_at AS "occurredAt", r.recorded_at AS "recordedAt", r.matched_budget_ids AS "matchedBudgetIds",
  ${TOKEN_COLUMNS('r.')}`;

/** The columns record_usage, record_usage_batch and record_integration_usage return, as RecordedUsageRow names them. */
const RECORDED_COLUMNS = `
  replayed, id, budget_id AS "budgetId", amount::text AS amount, currency, source, description,
  model_id AS "modelId", user_id AS "userId", team_id AS "teamId", project_id AS "projectId",
  customer_id AS "customerId", tags, request_id AS "requestId", reservation_id AS "reservationId", metadata,
  occurred_at AS "occurredAt", recorded_at AS "recordedAt", fired_alerts AS "firedAlerts", ${TOKEN_COLUMNS('')}`;

/** RECORDED_COLUMNS and the matched budgets, which record_usage and record_integration_usage return. */
const RECORDED_MATCH_COLUMNS = `${RECORDED_COLUMNS}, matched_budget_ids AS "matchedBudgetIds"`;

/** The columns of get_budget_status(es), as StatusRow names them. */
const STATUS_COLUMNS = `
  budget_id AS "budgetId", amount::text AS amount, currency, warning_threshold::text AS "warningThreshold",
  critical_threshold::text AS "criticalThreshold", enforcement, period_start AS "periodStart",
  period_end AS "periodEnd", active, current_amount::text AS "currentAmount", usage_count::text AS "usageCount",
  last_usage_at AS "lastUsageAt", updated_at AS "updatedAt", active_alerts AS "activeAlerts",
  budget_reserved_amount(budget_id, $2::timestamptz)::text AS "reservedAmount"`;

/** A single usage write, prepared once per connection (the hot path). */
const RECORD_USAGE = prepared(
  'record_usage',
  `SELECT ${RECORDED_MATCH_COLUMNS}
   FROM record_usage($1, $2::numeric, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::jsonb, $14::timestamptz, $15::uuid,
                     $16, $17::text[], $18, $19::integer, $20::integer, $21::integer, $22, $23, $24)`,
);

/** A batch of records for one budget, prepared once per connection. */
const RECORD_USAGE_BATCH = prepared(
  'record_usage_batch',
  `SELECT ordinal, status, error_code AS "errorCode", error_detail AS "errorDetail", ${RECORDED_COLUMNS}
   FROM record_usage_batch($1::uuid, $2::jsonb)`,
);

/** Concurrent single writes committed as one group (usage-write-groups.ts), prepared once per connection. */
const RECORD_USAGE_GROUP = prepared(
  'record_usage_group',
  `SELECT ordinal, recorded, ${RECORDED_COLUMNS} FROM record_usage_group($1::jsonb)`,
);

/** Concurrent gateway writes (by scopes) committed as one group, prepared once per connection. */
const RECORD_INTEGRATION_USAGE_GROUP = prepared(
  'record_integration_usage_group',
  `SELECT ordinal, recorded, ${RECORDED_MATCH_COLUMNS} FROM record_integration_usage_group($1::jsonb)`,
);

const metadataParam = (write: Pick<UsageWrite, 'metadata'>) => (write.metadata === null ? null : JSON.stringify(write.metadata));

/** The writers' last seven parameters: the tokens, and the catalog's lookup hints. */
const tokenParams = (write: Omit<UsageWrite, 'budgetId' | 'idempotencyKey'>) => [
  write.provider, write.inputTokens, write.outputTokens, write.cachedInputTokens, write.priceMaker,
  write.priceAliasProvider, write.priceAliasModelId,
];

/** Every statement of the usage ledger; each public method is one round trip. */
@Injectable()
export class UsageRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /** Records one usage (or replays it) through `record_usage`: validation, idempotency, cache and alerts in SQL. */
  async record(write: UsageWrite): Promise<RecordedUsageRow> {
    const rows = await this.dataSource.query(
      RECORD_USAGE,
      [
        write.budgetId, write.amount, write.currency, write.source, write.description, write.modelId, write.userId,
        write.teamId, write.projectId, write.requestId, write.idempotencyKey, write.requestHash,
        metadataParam(write), write.occurredAt.toISOString(), write.reservationId, write.customerId, write.tags,
        ...tokenParams(write),
      ],
    );
    return rows[0];
  }

  /** Many records in one transaction and one round trip; each answered on its own line. */
  recordBatch(budgetId: string, writes: UsageWrite[]): Promise<BatchRow[]> {
    return this.dataSource.query(RECORD_USAGE_BATCH, [budgetId, JSON.stringify(writes)]);
  }

  /**
   * Single writes to any budgets committed together (`record_usage_group`): one transaction, one
   * INSERT, one round trip. Each line says whether its write was recorded now, replayed (its key
   * recorded the same body before), or neither (the caller writes it again alone).
   */
  recordGroup(writes: (UsageWrite & { id: string })[]): Promise<GroupRow[]> {
    return this.dataSource.query(RECORD_USAGE_GROUP, [JSON.stringify(writes)]);
  }

  /**
   * Gateway writes committed together (`record_integration_usage_group`): one transaction, one
   * INSERT, one round trip. Each line says whether its write was recorded now; one that was not
   * (a replay, a refusal, no budget) is written again alone by the caller.
   */
  recordScopedGroup(writes: { id: string; scopes: Scope[]; write: Omit<UsageWrite, 'budgetId' | 'idempotencyKey'> }[]): Promise<GroupRow[]> {
    return this.dataSource.query(RECORD_INTEGRATION_USAGE_GROUP, [
      JSON.stringify(
        writes.map(({ id, scopes, write }) => ({
          ...write, id, scopeTypes: scopes.map((s) => s.type), scopeIds: scopes.map((s) => s.id),
        })),
      ),
    ]);
  }

  /**
   * Records an AI request named by its scopes (`record_integration_usage`): one ledger row counting
   * toward every budget it matches and their ancestors, each once; none when no budget matches.
   */
  recordForScopes(scopes: Scope[], write: Omit<UsageWrite, 'budgetId' | 'idempotencyKey'>): Promise<RecordedUsageRow[]> {
    return this.dataSource.query(
      `SELECT ${RECORDED_MATCH_COLUMNS}
       FROM record_integration_usage($1::text[], $2::text[], $3::numeric, $4, $5, $6, $7, $8, $9, $10, $11,
                                     $12::text[], $13, $14, $15::jsonb, $16::timestamptz, $17::uuid,
                                     $18, $19::integer, $20::integer, $21::integer, $22, $23, $24)`,
      [
        scopes.map((s) => s.type), scopes.map((s) => s.id), write.amount, write.currency, write.source,
        write.description, write.modelId, write.userId, write.teamId, write.projectId, write.customerId, write.tags,
        write.requestId, write.requestHash, metadataParam(write), write.occurredAt.toISOString(), write.reservationId,
        ...tokenParams(write),
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
   * The requests that count toward the budget (with includeDescendants, toward any budget of its
   * subtree), newest first by (occurredAt, id), each once; keyset pagination stays stable under
   * concurrent inserts. Each budget of the tree gives its own newest rows by a backward scan of its
   * index range (LATERAL ... LIMIT), from the ledger and from its attribution rows, and only those
   * few are merged: never a sort of the whole ledger.
   */
  async history(filter: HistoryFilter): Promise<UsageRow[]> {
    // Only the filters given become conditions, so the plan (custom or generic) always has them
    // as index conditions rather than "$n IS NULL OR ..." branches. The time conditions go on
    // the index each branch scans (the ledger's, or the attribution table's).
    const params: unknown[] = [filter.budgetId, filter.includeDescendants];
    const rowWhere: string[] = [];
    const own = ['r.budget_id = tree.id'];
    const attributed = ['a.budget_id = tree.id'];
    const placeholder = (value: unknown) => `$${params.push(value)}`;
    if (filter.from) {
      const p = placeholder(filter.from);
      own.push(`r.occurred_at >= ${p}::timestamptz`);
      attributed.push(`a.occurred_at >= ${p}::timestamptz`);
    }
    if (filter.to) {
      const p = placeholder(filter.to);
      own.push(`r.occurred_at < ${p}::timestamptz`);
      attributed.push(`a.occurred_at < ${p}::timestamptz`);
    }
    if (filter.before) {
      const at = placeholder(filter.before[0]);
      const id = placeholder(filter.before[1]);
      own.push(`(r.occurred_at, r.id) < (${at}::timestamptz, ${id}::uuid)`);
      attributed.push(`(a.occurred_at, a.usage_id) < (${at}::timestamptz, ${id}::uuid)`);
    }
    if (filter.modelId) rowWhere.push(`r.model_id = ${placeholder(filter.modelId)}`);
    if (filter.source) rowWhere.push(`r.source = ${placeholder(filter.source)}`);
    if (filter.userId) rowWhere.push(`r.user_id = ${placeholder(filter.userId)}`);
    if (filter.customerId) rowWhere.push(`r.customer_id = ${placeholder(filter.customerId)}`);
    if (filter.tag) rowWhere.push(`r.tags @> ARRAY[${placeholder(filter.tag)}::text]`);
    const limit = placeholder(filter.limit + 1);
    const columns = `${USAGE_COLUMNS},
      to_char(r.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS "occurredKey"`;
    return this.dataSource.query(
      `WITH RECURSIVE tree AS (
         SELECT $1::uuid AS id
         UNION
         SELECT c.id FROM budget_definitions c JOIN tree t ON c.parent_id = t.id WHERE $2::boolean
       ), hits AS (
         SELECT r.*
         FROM tree CROSS JOIN LATERAL (
           SELECT ${columns}
           FROM budget_usage_records r
           WHERE ${[...own, ...rowWhere].join(' AND ')}
           ORDER BY r.occurred_at DESC, r.id DESC
           LIMIT ${limit}) r
         UNION ALL
         SELECT r.*
         FROM tree CROSS JOIN LATERAL (
           SELECT ${columns}
           FROM budget_usage_attributions a
           JOIN budget_usage_records r ON r.id = a.usage_id AND r.occurred_at = a.occurred_at
           WHERE ${[...attributed, ...rowWhere].join(' AND ')}
           ORDER BY a.occurred_at DESC, a.usage_id DESC
           LIMIT ${limit}) r
       )
       SELECT DISTINCT ON (h."occurredAt", h.id) h.*
       FROM hits h
       ORDER BY h."occurredAt" DESC, h.id DESC
       LIMIT ${limit}`,
      params,
    );
  }

  /**
   * Total, count and the five breakdowns over the requests that count toward the budget (the rule
   * of `budget_usage_rows`: its subtree's rows and attributions, each once), for [from, to) or, by
   * default, the window containing `at`, read from the roll-ups (`budget_usage_sums`: day and hour
   * rows, the ledger only for partial hours at the edges), so the cost follows the buckets in the
   * range, not the requests. Days are local to the budget's time zone. A request carrying several
   * tags counts once in every breakdown but `byTag`, where it counts under each of its tags.
   */
  async summary(budgetId: string, from: string | undefined, to: string | undefined, at: Date): Promise<SummaryRow[]> {
    return this.dataSource.query(
      `WITH budget AS (
         SELECT b.timezone, coalesce($2::timestamptz, w.period_start) AS range_from,
                coalesce($3::timestamptz, w.period_end) AS range_to
         FROM budget_definitions b,
              budget_period_window(b.start_date, b.end_date, b.period, b.custom_period_days, b.recurring, b.timezone,
                                   $4::timestamptz) w
         WHERE b.id = $1::uuid
       ), lines AS (
         SELECT s.dimension, s.value AS key, sum(s.amount) AS total, sum(s.usage_count) AS n
         FROM budget, budget_usage_sums($1::uuid, budget.range_from, budget.range_to) s
         GROUP BY s.dimension, s.value
         UNION ALL
         SELECT 'day', to_char(s.bucket AT TIME ZONE budget.timezone, 'YYYY-MM-DD'), sum(s.amount), sum(s.usage_count)
         FROM budget, budget_usage_sums($1::uuid, budget.range_from, budget.range_to, 'total', 'day', budget.timezone) s
         GROUP BY 2
       )
       SELECT l.dimension, l.key, l.total::text AS total, l.n::text AS count,
              budget.range_from AS "rangeFrom", budget.range_to AS "rangeTo"
       FROM budget LEFT JOIN lines l ON true`,
      [budgetId, from ?? null, to ?? null, at.toISOString()],
    );
  }
}
