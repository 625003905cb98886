import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import type { BudgetRecord, ScopeType } from './budget.types';

/** Column list of every budget read, in the shape `mapBudgetRow` expects. */
export const BUDGET_COLUMNS = `
  b.id, b.name, b.description, b.scope_type, b.scope_id, b.parent_id, b.amount::text AS amount, b.currency,
  b.period, b.custom_period_days, b.start_date, b.end_date, b.recurring, b.timezone, b.enforcement,
  b.warning_threshold::text AS warning_threshold, b.critical_threshold::text AS critical_threshold,
  b.alerts, b.model_policy, b.filter, b.anomaly_detection, b.metadata, b.created_by, b.created_at, b.updated_at, b.version,
  to_char(b.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_key`;

export interface BudgetRow extends BudgetRecord {
  /** created_at with microseconds, the pagination key. */
  createdKey: string;
}

export function mapBudgetRow(row: Record<string, any>): BudgetRow {
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    scopeType: row.scope_type,
    scopeId: row.scope_id,
    parentId: row.parent_id,
    amount: row.amount,
    currency: row.currency,
    period: row.period,
    customPeriodDays: row.custom_period_days,
    startDate: row.start_date,
    endDate: row.end_date,
    recurring: row.recurring,
    timezone: row.timezone,
    enforcement: row.enforcement,
    warningThreshold: row.warning_threshold,
    criticalThreshold: row.critical_threshold,
    alerts: row.alerts ?? [],
    modelPolicy: row.model_policy,
    filter: row.filter,
    anomalyDetection: row.anomaly_detection,
    metadata: row.metadata,
    createdBy: row.created_by,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    version: row.version,
    createdKey: row.created_key,
  };
}

/** The writable columns, keyed by the API's field names. */
export interface BudgetValues {
  name?: string;
  description?: string | null;
  scopeType?: ScopeType;
  scopeId?: string;
  parentId?: string | null;
  amount?: string;
  currency?: string;
  period?: string;
  customPeriodDays?: number | null;
  startDate?: string;
  endDate?: string | null;
  recurring?: boolean;
  timezone?: string;
  enforcement?: string;
  warningThreshold?: number;
  criticalThreshold?: number;
  alerts?: unknown[];
  modelPolicy?: unknown | null;
  filter?: unknown | null;
  anomalyDetection?: unknown | null;
  metadata?: Record<string, unknown> | null;
}

const COLUMN_OF: Record<keyof BudgetValues, [string, string]> = {
  name: ['name', 'text'],
  description: ['description', 'text'],
  scopeType: ['scope_type', 'text'],
  scopeId: ['scope_id', 'text'],
  parentId: ['parent_id', 'uuid'],
  amount: ['amount', 'numeric'],
  currency: ['currency', 'text'],
  period: ['period', 'text'],
  customPeriodDays: ['custom_period_days', 'integer'],
  startDate: ['start_date', 'timestamptz'],
  endDate: ['end_date', 'timestamptz'],
  recurring: ['recurring', 'boolean'],
  timezone: ['timezone', 'text'],
  enforcement: ['enforcement', 'text'],
  warningThreshold: ['warning_threshold', 'numeric'],
  criticalThreshold: ['critical_threshold', 'numeric'],
  alerts: ['alerts', 'jsonb'],
  modelPolicy: ['model_policy', 'jsonb'],
  filter: ['filter', 'jsonb'],
  anomalyDetection: ['anomaly_detection', 'jsonb'],
  metadata: ['metadata', 'jsonb'],
};

function parameter(field: keyof BudgetValues, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  return COLUMN_OF[field][1] === 'jsonb' ? JSON.stringify(value) : value;
}

export type UpdateOutcome = { kind: 'updated'; budget: BudgetRow } | { kind: 'not-found' } | { kind: 'version-mismatch'; version: number };

export interface BudgetListFilter {
  scopeType?: ScopeType;
  scopeId?: string;
  parentId?: string;
  after?: [string, string];
  limit: number;
}

@Injectable()
export class BudgetRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  async insert(values: BudgetValues, createdBy: string): Promise<BudgetRow> {
    const fields = (Object.keys(values) as (keyof BudgetValues)[]).filter((f) => values[f] !== undefined);
    const columns = fields.map((f) => COLUMN_OF[f][0]);
    const placeholders = fields.map((f, i) => `$${i + 1}::${COLUMN_OF[f][1]}`);
    const params = fields.map((f) => parameter(f, values[f]));
    const rows = await this.dataSource.query(
      `WITH b AS (
         INSERT INTO budget_definitions (${[...columns, 'created_by'].join(', ')})
         VALUES (${[...placeholders, `$${fields.length + 1}`].join(', ')})
         RETURNING *)
       SELECT ${BUDGET_COLUMNS} FROM b`,
      [...params, createdBy],
    );
    return mapBudgetRow(rows[0]);
  }

  async findLive(id: string, manager: EntityManager = this.dataSource.manager): Promise<BudgetRow | undefined> {
    const rows = await manager.query(
      `SELECT ${BUDGET_COLUMNS} FROM budget_definitions b WHERE b.id = $1 AND b.deleted_at IS NULL`,
      [id],
    );
    return rows[0] ? mapBudgetRow(rows[0]) : undefined;
  }

  /** Applies the changes in one statement; `expectedVersion` makes it conditional (If-Match). */
  async update(id: string, changes: BudgetValues, expectedVersion?: number): Promise<UpdateOutcome> {
    const fields = (Object.keys(changes) as (keyof BudgetValues)[]).filter((f) => changes[f] !== undefined);
    const sets = fields.map((f, i) => `${COLUMN_OF[f][0]} = $${i + 3}::${COLUMN_OF[f][1]}`);
    const rows = await this.dataSource.transaction(async (manager) => {
      if (changes.parentId !== undefined) {
        // Re-parenting takes the hierarchy lock before it locks its own row; taken inside the
        // guard trigger instead, two crossing moves could each hold a row the other waits for.
        await manager.query(`SELECT pg_advisory_xact_lock(hashtext('budget_definitions.hierarchy'))`);
      }
      return manager.query(
      `WITH b AS (
         UPDATE budget_definitions
         SET ${[...sets, 'version = version + 1', 'updated_at = now()'].join(', ')}
         WHERE id = $1 AND deleted_at IS NULL AND ($2::integer IS NULL OR version = $2::integer)
         RETURNING *)
       SELECT ${BUDGET_COLUMNS} FROM b`,
        [id, expectedVersion ?? null, ...fields.map((f) => parameter(f, changes[f]))],
      );
    });
    if (rows[0]) return { kind: 'updated', budget: mapBudgetRow(rows[0]) };
    const current = await this.findLive(id);
    return current ? { kind: 'version-mismatch', version: current.version } : { kind: 'not-found' };
  }

  /** Soft delete; the hierarchy guard refuses it while live children exist. */
  async softDelete(id: string): Promise<boolean> {
    const rows = await this.dataSource.query(
      `WITH d AS (
         UPDATE budget_definitions SET deleted_at = now(), updated_at = now(), version = version + 1
         WHERE id = $1 AND deleted_at IS NULL RETURNING id)
       SELECT id FROM d`,
      [id],
    );
    return rows.length > 0;
  }

  async list(filter: BudgetListFilter): Promise<BudgetRow[]> {
    const rows = await this.dataSource.query(
      `SELECT ${BUDGET_COLUMNS} FROM budget_definitions b
       WHERE b.deleted_at IS NULL
         AND ($1::text IS NULL OR b.scope_type = $1)
         AND ($2::text IS NULL OR b.scope_id = $2)
         AND ($3::uuid IS NULL OR b.parent_id = $3)
         AND ($4::timestamptz IS NULL OR (b.created_at, b.id) > ($4::timestamptz, $5::uuid))
       ORDER BY b.created_at, b.id
       LIMIT $6`,
      [filter.scopeType ?? null, filter.scopeId ?? null, filter.parentId ?? null, filter.after?.[0] ?? null,
        filter.after?.[1] ?? null, filter.limit + 1],
    );
    return rows.map(mapBudgetRow);
  }

  async listForScope(scopeType: ScopeType, scopeId: string): Promise<BudgetRow[]> {
    const rows = await this.dataSource.query(
      `SELECT ${BUDGET_COLUMNS} FROM budget_definitions b
       WHERE b.deleted_at IS NULL AND b.scope_type = $1 AND b.scope_id = $2
       ORDER BY b.created_at, b.id`,
      [scopeType, scopeId],
    );
    return rows.map(mapBudgetRow);
  }

  /**
   * Every live budget related to a scope's budgets: the budgets themselves, all their ancestors
   * and all their descendants, in one statement (depth is at most 8).
   */
  async findScopeFamily(scopeType: ScopeType, scopeId: string): Promise<BudgetRow[]> {
    const rows = await this.dataSource.query(
      `WITH RECURSIVE roots AS (
         SELECT id, parent_id FROM budget_definitions
         WHERE deleted_at IS NULL AND scope_type = $1 AND scope_id = $2
       ), up AS (
         SELECT id, parent_id FROM roots
         UNION
         SELECT p.id, p.parent_id FROM budget_definitions p JOIN up ON p.id = up.parent_id WHERE p.deleted_at IS NULL
       ), down AS (
         SELECT id FROM roots
         UNION
         SELECT c.id FROM budget_definitions c JOIN down ON c.parent_id = down.id WHERE c.deleted_at IS NULL
       )
       SELECT ${BUDGET_COLUMNS} FROM budget_definitions b
       WHERE b.id IN (SELECT id FROM up UNION SELECT id FROM down)
       ORDER BY b.created_at, b.id`,
      [scopeType, scopeId],
    );
    return rows.map(mapBudgetRow);
  }
}
