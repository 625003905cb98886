import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import type { BudgetAlertConfig, ModelPolicy, RequestTraits, Scope, ScopeType } from '../budget/budget.types';
import { APP_CONFIG, type AppConfig } from '../config/configuration';
import { prepared } from '../database/prepared-statements';
import type { PriceChoice, PriceLookupHints } from '../pricing/pricing.types';
import type { ActiveAlertJson } from '../usage/usage.events';

/** Everything a check decides on about one budget, from `budget_check_context`. */
export interface CheckContextRow {
  budgetId: string;
  name: string;
  scopeType: ScopeType;
  scopeId: string;
  parentId: string | null;
  isSeed: boolean;
  /** False for a budget named by id whose filter refuses the request (it is answered, not counted). */
  matches: boolean;
  amount: string;
  currency: string;
  warningThreshold: string;
  criticalThreshold: string;
  enforcement: 'hard' | 'soft';
  periodStart: Date;
  periodEnd: Date;
  active: boolean;
  currentAmount: string;
  reservedAmount: string;
  alertRules: BudgetAlertConfig[];
  modelPolicy: ModelPolicy | null;
}

/** A check context row with what a status shows besides (the integration summary). */
export interface ScopeStatusRow extends CheckContextRow {
  usageCount: string;
  updatedAt: Date;
  activeAlerts: ActiveAlertJson[];
}

export interface AlertHistoryRow {
  id: string;
  budgetId: string;
  alertId: string;
  threshold: string;
  alertType: string;
  periodStart: Date;
  triggeredAt: Date;
  percentUsed: string;
  amount: string;
  actions: string[];
  notificationChannels: string[];
  usageRecordId: string | null;
  acknowledgedAt: Date | null;
  acknowledgedBy: string | null;
  note: string | null;
}

const ALERT_COLUMNS = `h.id, h.budget_id AS "budgetId", h.alert_id AS "alertId", h.threshold::text AS threshold,
  h.alert_type AS "alertType", h.period_start AS "periodStart", h.triggered_at AS "triggeredAt",
  h.percent_used::text AS "percentUsed", h.amount::text AS amount, h.actions,
  h.notification_channels AS "notificationChannels", h.usage_record_id AS "usageRecordId",
  h.acknowledged_at AS "acknowledgedAt", h.acknowledged_by AS "acknowledgedBy", h.note`;

/**
 * The columns of budget_check_context a decision reads, as CheckContextRow names them. The others
 * (usage count, last update, the window's triggered alerts) are left unselected, so PostgreSQL
 * does not compute them in the inlined statements (the alert history's jsonb per member).
 */
const CONTEXT_COLUMNS = `
  budget_id AS "budgetId", name, scope_type AS "scopeType", scope_id AS "scopeId", parent_id AS "parentId",
  is_seed AS "isSeed", matches, amount::text AS amount, currency, warning_threshold::text AS "warningThreshold",
  critical_threshold::text AS "criticalThreshold", enforcement, period_start AS "periodStart",
  period_end AS "periodEnd", active, current_amount::text AS "currentAmount",
  reserved_amount::text AS "reservedAmount", alert_rules AS "alertRules", model_policy AS "modelPolicy"`;

/** Every column, as ScopeStatusRow names them. */
const STATUS_COLUMNS = `${CONTEXT_COLUMNS}, usage_count::text AS "usageCount", updated_at AS "updatedAt",
  active_alerts AS "activeAlerts"`;

/** What a check is about: one budget (and its ancestors), or the budgets of a request's scopes (and theirs). */
export type CheckTarget = { budgetId: string } | { scopes: Scope[] };

/** budget_check_context with its seven parameters ($1–$7, contextParams). */
const CONTEXT_CALL = `budget_check_context($1::uuid[], $2::text[], $3::text[], $4::timestamptz, $5, $6::text[], $7)`;

const contextParams = (target: CheckTarget, at: Date, traits: RequestTraits) => {
  const scopes = 'scopes' in target ? target.scopes : [];
  return [
    'budgetId' in target ? [target.budgetId] : [], scopes.map((s) => s.type), scopes.map((s) => s.id), at.toISOString(),
    traits.modelId ?? null, traits.tags ?? null, true,
  ];
};

/**
 * The same rows for a check of one budget id (no scopes), from budget_check_context_of, and for a
 * check by scopes (no ids), from budget_check_context_of_scopes: one inlined statement while the
 * cache rows are fresh (migrations CheckContextOfBudget, CheckContextOfScopes).
 */
const CHECK_CONTEXT_OF = prepared(
  'check_context_of',
  `SELECT ${CONTEXT_COLUMNS} FROM budget_check_context_of($1::uuid, $2::timestamptz, $3, $4::text[], $5)`,
);
const CHECK_CONTEXT_OF_SCOPES = prepared(
  'check_context_of_scopes',
  `SELECT ${CONTEXT_COLUMNS} FROM budget_check_context_of_scopes($1::text[], $2::text[], $3::timestamptz, $4, $5::text[], $6)`,
);
/** The same through PL/pgSQL wrappers, for unnamed statements (DATABASE_POOL_MODE=transaction). */
const CHECK_CONTEXT_OF_PLANNED = `SELECT ${CONTEXT_COLUMNS} FROM budget_check_context_of_planned($1::uuid, $2::timestamptz, $3, $4::text[], $5)`;
const CHECK_CONTEXT_OF_SCOPES_PLANNED =
  `SELECT ${CONTEXT_COLUMNS} FROM budget_check_context_of_scopes_planned($1::text[], $2::text[], $3::timestamptz, $4, $5::text[], $6)`;

/** One check of a group: what it is about, its instant and its traits (CheckContextGroups). */
export interface GroupedCheck {
  target: CheckTarget;
  at: Date;
  traits: RequestTraits;
}

/**
 * The contexts of many checks in one statement, each by one budget id or each by scopes (migration
 * CheckContextGroups); `request` numbers the checks from 1. A check whose chains are not all fresh
 * has no row there.
 */
const CHECK_CONTEXTS_OF = prepared(
  'check_contexts_of',
  `SELECT request, ${CONTEXT_COLUMNS} FROM budget_check_contexts_of($1::uuid[], $2::timestamptz[], $3::text[], $4::jsonb, true)`,
);
const CHECK_CONTEXTS_OF_SCOPES = prepared(
  'check_contexts_of_scopes',
  `SELECT request, ${CONTEXT_COLUMNS}
   FROM budget_check_contexts_of_scopes($1::integer[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::jsonb, true)`,
);

/** Estimated tokens of a check, priced at the catalog's version for the request's model. */
export interface EstimatedTokens {
  provider?: string;
  inputTokens: number;
  outputTokens: number;
}

/** Every statement of constraint checks and alerts; each method is one round trip. */
@Injectable()
export class ConstraintRepository {
  /**
   * The statements of a check by one id and by scopes. The inlined functions pay off when their
   * statement is planned once per connection: named, with DATABASE_POOL_MODE=session. Behind a
   * transaction pooler every statement is unnamed and planned on every call, which would cost more
   * than inlining saves; there the PL/pgSQL wrappers (migration CheckContextPlannedOnce) keep the
   * plan in the server session instead.
   */
  private readonly contextOf: string;
  private readonly contextOfScopes: string;

  constructor(@InjectDataSource() private readonly dataSource: DataSource, @Inject(APP_CONFIG) config: AppConfig) {
    const session = config.databasePoolMode === 'session';
    this.contextOf = session ? CHECK_CONTEXT_OF : CHECK_CONTEXT_OF_PLANNED;
    this.contextOfScopes = session ? CHECK_CONTEXT_OF_SCOPES : CHECK_CONTEXT_OF_SCOPES_PLANNED;
  }

  /**
   * The budget named by id, or the budgets of the scopes, that match the request's traits, and all
   * their ancestors, most specific first.
   */
  checkContext(target: CheckTarget, at: Date, traits: RequestTraits): Promise<CheckContextRow[]> {
    const [, types, scopeIds, instant, modelId, tags, applyFilters] = contextParams(target, at, traits);
    return 'budgetId' in target
      ? this.dataSource.query(this.contextOf, [target.budgetId, instant, modelId, tags, applyFilters])
      : this.dataSource.query(this.contextOfScopes, [types, scopeIds, instant, modelId, tags, applyFilters]);
  }

  /**
   * The contexts of many checks in one round trip, all by budget id or all by scopes: per check
   * (in order) its rows, as checkContext would read them, or undefined for a check whose chains
   * are not all fresh (or whose budget is unknown), to be read alone through checkContext.
   */
  async checkContexts(checks: GroupedCheck[]): Promise<(CheckContextRow[] | undefined)[]> {
    // Per check: its instant, its model, and its tags in one jsonb array (null for none).
    const common = [
      checks.map((c) => c.at.toISOString()),
      checks.map((c) => c.traits.modelId ?? null),
      JSON.stringify(checks.map((c) => c.traits.tags ?? null)),
    ];
    const byScopes = checks.map((c) => ('scopes' in c.target ? c.target.scopes : []));
    const rows: (CheckContextRow & { request: number })[] =
      'budgetId' in checks[0].target
        ? await this.dataSource.query(CHECK_CONTEXTS_OF, [checks.map((c) => ('budgetId' in c.target ? c.target.budgetId : null)), ...common])
        : await this.dataSource.query(CHECK_CONTEXTS_OF_SCOPES, [
            byScopes.flatMap((scopes, index) => scopes.map(() => index + 1)),
            byScopes.flatMap((scopes) => scopes.map((s) => s.type)),
            byScopes.flatMap((scopes) => scopes.map((s) => s.id)),
            ...common,
          ]);
    // Each row keeps its request number (the decision reads only its own fields): a rest-spread per
    // row would cost more than the rest of this loop.
    const answers: (CheckContextRow[] | undefined)[] = checks.map(() => undefined);
    for (const row of rows) (answers[row.request - 1] ??= []).push(row);
    return answers;
  }

  /** Every budget of the scopes and their ancestors, whatever their filters, with their status figures. */
  scopeStatuses(scopes: Scope[], at: Date): Promise<ScopeStatusRow[]> {
    return this.dataSource.query(
      `SELECT ${STATUS_COLUMNS} FROM budget_check_context('{}', $1::text[], $2::text[], $3::timestamptz, NULL, NULL, false)`,
      [scopes.map((s) => s.type), scopes.map((s) => s.id), at.toISOString()],
    );
  }

  /**
   * checkContext and the catalog's price of the estimated tokens at `at` (model_price_choose and
   * model_price_cost, the rule and formula of token-priced usage), in the same round trip.
   */
  async pricedCheckContext(
    target: CheckTarget,
    at: Date,
    traits: RequestTraits & { modelId: string },
    tokens: EstimatedTokens,
    hints: PriceLookupHints,
  ): Promise<{ rows: CheckContextRow[]; choice: PriceChoice }> {
    const rows = await this.dataSource.query(
      `WITH choice AS MATERIALIZED (
         SELECT c.price_id, c.provider, c.error_code, c.providers, model_price_cost(c, $9::integer, $10::integer, NULL)::text AS amount,
                c.input_per_mtok::text AS input, c.output_per_mtok::text AS output, c.cached_input_per_mtok::text AS cached
         FROM model_price_choose($8, $5, $4::timestamptz, $11, $12, $13) c)
       SELECT choice.price_id AS "priceId", choice.provider AS "priceProvider", choice.error_code AS "errorCode",
              choice.providers, choice.amount AS "estimatedCost", choice.input AS "inputPerMTok",
              choice.output AS "outputPerMTok", choice.cached AS "cachedInputPerMTok", ctx.*
       FROM choice LEFT JOIN LATERAL (SELECT ${CONTEXT_COLUMNS} FROM ${CONTEXT_CALL}) ctx ON true`,
      [
        ...contextParams(target, at, traits), tokens.provider ?? null, tokens.inputTokens, tokens.outputTokens,
        hints.maker, hints.aliasProvider, hints.aliasModelId,
      ],
    );
    const { priceId, priceProvider, errorCode, providers, estimatedCost, inputPerMTok, outputPerMTok, cachedInputPerMTok } = rows[0];
    const contexts = rows
      .filter((row: CheckContextRow) => row.budgetId !== null)
      .map(
        ({ priceId: _p, priceProvider: _pp, errorCode: _e, providers: _ps, estimatedCost: _c, inputPerMTok: _i, outputPerMTok: _o, cachedInputPerMTok: _ci, ...row }: Record<string, unknown>) =>
          row as unknown as CheckContextRow,
      );
    const rates = priceId === null ? null : { inputPerMTok, outputPerMTok, cachedInputPerMTok };
    return { rows: contexts, choice: { priceId, provider: priceProvider, errorCode, providers, amount: estimatedCost, rates } };
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
