import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import type { BudgetAlertConfig, ModelPolicy, ScopeType } from '../budget/budget.types';
import type { ActiveAlertJson, RecordedUsageRow, UsageWrite } from '../usage/usage.repository';

export interface CheckContextRow {
  budget_id: string;
  name: string;
  scope_type: ScopeType;
  scope_id: string;
  parent_id: string | null;
  is_seed: boolean;
  amount: string;
  currency: string;
  warning_threshold: string;
  critical_threshold: string;
  enforcement: 'hard' | 'soft';
  period_start: Date;
  period_end: Date;
  active: boolean;
  current_amount: string;
  reserved_amount: string;
  usage_count: string;
  updated_at: Date;
  active_alerts: ActiveAlertJson[];
  alert_rules: BudgetAlertConfig[];
  model_policy: ModelPolicy | null;
}

export interface AlertHistoryRow {
  id: string;
  budget_id: string;
  alert_id: string;
  threshold: string;
  alert_type: string;
  period_start: Date;
  triggered_at: Date;
  percent_used: string;
  amount: string;
  actions: string[];
  notification_channels: string[];
  usage_record_id: string | null;
  acknowledged_at: Date | null;
  acknowledged_by: string | null;
  note: string | null;
}

export interface Scope {
  type: ScopeType;
  id: string;
}

const ALERT_COLUMNS = `h.id, h.budget_id, h.alert_id, h.threshold::text AS threshold, h.alert_type, h.period_start,
  h.triggered_at, h.percent_used::text AS percent_used, h.amount::text AS amount, h.actions, h.notification_channels,
  h.usage_record_id, h.acknowledged_at, h.acknowledged_by, h.note`;

/** Every statement of constraint checks, alerts and the integration; each method is one round trip. */
@Injectable()
export class ConstraintRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /** The budgets named (by id or by scope) and all their ancestors, most specific first. */
  checkContext(budgetIds: string[], scopes: Scope[], at: Date): Promise<CheckContextRow[]> {
    return this.dataSource.query(
      `SELECT budget_id, name, scope_type, scope_id, parent_id, is_seed, amount::text AS amount, currency,
              warning_threshold::text AS warning_threshold, critical_threshold::text AS critical_threshold,
              enforcement, period_start, period_end, active, current_amount::text AS current_amount,
              reserved_amount::text AS reserved_amount, usage_count::text AS usage_count, updated_at,
              active_alerts, alert_rules, model_policy
       FROM budget_check_context($1::uuid[], $2::text[], $3::text[], $4::timestamptz)`,
      [budgetIds, scopes.map((s) => s.type), scopes.map((s) => s.id), at.toISOString()],
    );
  }

  /** Records an AI request once per budget tree of its scopes, in one transaction. */
  recordIntegrationUsage(scopes: Scope[], write: Omit<UsageWrite, 'budgetId' | 'idempotencyKey'>): Promise<RecordedUsageRow[]> {
    return this.dataSource.query(
      `SELECT replayed, id, budget_id, amount::text AS amount, currency, source, description, model_id, user_id,
              team_id, project_id, request_id, reservation_id, metadata, occurred_at, recorded_at, fired_alerts
       FROM record_integration_usage($1::text[], $2::text[], $3::numeric, $4, $5, $6, $7, $8, $9, $10, $11, $12,
                                     $13::jsonb, $14::timestamptz, $15::uuid)`,
      [
        scopes.map((s) => s.type), scopes.map((s) => s.id), write.amount, write.currency, write.source,
        write.description, write.modelId, write.userId, write.teamId, write.projectId, write.requestId,
        write.requestHash, write.metadata === null ? null : JSON.stringify(write.metadata),
        write.occurredAt.toISOString(), write.reservationId,
      ],
    );
  }

  /** Triggered alerts of a budget, newest first: the current window's, or all. */
  listAlerts(budgetId: string, periodStart: Date | null): Promise<AlertHistoryRow[]> {
    return this.dataSource.query(
      `SELECT ${ALERT_COLUMNS} FROM budget_alert_history h
       WHERE h.budget_id = $1 AND ($2::timestamptz IS NULL OR h.period_start = $2::timestamptz)
       ORDER BY h.triggered_at DESC, h.id`,
      [budgetId, periodStart?.toISOString() ?? null],
    );
  }

  /** Acknowledges a history row once; a second acknowledgement keeps the first (who, when). */
  async acknowledgeAlert(budgetId: string, historyId: string, actor: string, note: string | null): Promise<AlertHistoryRow | undefined> {
    const rows = await this.dataSource.query(
      `WITH h AS (
         UPDATE budget_alert_history
         SET acknowledged_at = coalesce(acknowledged_at, now()),
             acknowledged_by = coalesce(acknowledged_by, $3),
             note = coalesce($4, note)
         WHERE id = $2 AND budget_id = $1
         RETURNING *)
       SELECT ${ALERT_COLUMNS} FROM h`,
      [budgetId, historyId, actor, note],
    );
    return rows[0];
  }
}
