import { Injectable, Logger } from '@nestjs/common';
import { OnEvent } from '@nestjs/event-emitter';
import type { ScopeType } from '../budget/budget.types';
import { Clock } from '../common/clock';
import { DomainError, validationFailed } from '../common/errors/domain-error';
import { Decimal, toMoneyNumber } from '../common/money';
import { validateInput } from '../common/validation';
import { BUDGET_ALERT_TRIGGERED, BudgetTrackerService } from '../usage/budget-tracker.service';
import type { FiredAlert } from '../usage/usage.repository';
import { combineDecisions, decideBudget } from './constraint-decision';
import { ConstraintRepository, type CheckContextRow, type Scope } from './constraint.repository';
import { blockingBudget, toCheckContext } from './constraint.service';
import { ReservationService } from './reservation.service';
import { IntegrationCheckDto, IntegrationScopesDto, IntegrationUsageDto } from './dto/check-constraints.dto';
import type { IntegrationCheckResponseDto } from './dto/constraint-check-response.dto';
import type { IntegrationSummaryDto, IntegrationUsageResponseDto } from './dto/integration.dto';

const SCOPE_FIELDS: [keyof IntegrationScopesDto, ScopeType][] = [
  ['userId', 'user'],
  ['projectId', 'project'],
  ['teamId', 'team'],
  ['organizationId', 'organization'],
];

/** The scopes named in a request, most specific first. At least one is required. */
export function scopesOf(dto: IntegrationScopesDto): Scope[] {
  const scopes = SCOPE_FIELDS.filter(([field]) => dto[field] !== undefined).map(([field, type]) => ({ type, id: dto[field]! }));
  if (!scopes.length) {
    throw validationFailed(
      SCOPE_FIELDS.map(([field]) => ({ field, message: 'at least one of organizationId, teamId, userId, projectId is required' })),
    );
  }
  return scopes;
}

/**
 * The seed's Budget Integration: what RelayCore calls around every AI request. Multi-scope
 * checks decided together, usage recorded once per budget tree, summaries, alert monitoring.
 */
@Injectable()
export class BudgetIntegrationService {
  private readonly logger = new Logger(BudgetIntegrationService.name);

  constructor(
    private readonly constraints: ConstraintRepository,
    private readonly tracker: BudgetTrackerService,
    private readonly reservations: ReservationService,
    private readonly clock: Clock,
  ) {}

  /** Every active budget of the scopes and their ancestors; proceeds only if all allow. */
  async checkConstraints(request: IntegrationCheckDto, actor?: string): Promise<IntegrationCheckResponseDto> {
    const dto = await validateInput(IntegrationCheckDto, request);
    const scopes = scopesOf(dto);
    const estimate = new Decimal(String(dto.estimatedCost));
    const rows = await this.constraints.checkContext([], scopes, this.clock.now());
    this.assertCurrency(rows, dto.currency);
    const contexts = rows.map(toCheckContext);
    const decisions = contexts.map((context) => decideBudget(context, estimate, dto.modelId));
    const combined = combineDecisions(decisions, contexts, dto.modelId);
    const answer: IntegrationCheckResponseDto = {
      canProceed: combined.canProceed,
      reason: combined.reason ?? (rows.length ? undefined : 'No budget applies to these scopes, so nothing constrains this request.'),
      requiresApproval: combined.requiresApproval,
      suggestedModel: combined.suggestedModel,
      suggestedActions: combined.suggestedActions,
      blockedBy: blockingBudget(combined.blockedBy),
      estimatedCost: toMoneyNumber(estimate),
      currency: dto.currency,
      rule: combined.rule,
      results: decisions.map(({ alertActions: _a, ...decision }, index) => ({
        ...decision,
        scopeType: contexts[index].scopeType,
        scopeId: contexts[index].scopeId,
      })),
    };
    if (!dto.reserve || !rows.length) return answer;
    return this.reservations.holdFor(answer, combined, {
      scopes,
      amount: estimate.toFixed(),
      currency: dto.currency,
      ttlSeconds: dto.reservationTtlSeconds,
      modelId: combined.suggestedModel ?? dto.modelId,
      actor,
    }, decisions);
  }

  /** Records the request's actual cost once per budget tree, idempotent on requestId, in one transaction. */
  async recordUsage(request: IntegrationUsageDto): Promise<IntegrationUsageResponseDto> {
    const dto = await validateInput(IntegrationUsageDto, request);
    const scopes = scopesOf(dto);
    // The same normalisation, time rule and request hash as a single-budget usage write.
    const { budgetId: _none, idempotencyKey: _key, ...write } = this.tracker.toWrite(
      '',
      { ...dto, source: dto.source ?? 'relaycore', metadata: dto.metadata ?? null },
      dto.requestId,
    );
    const rows = await this.constraints.recordIntegrationUsage(scopes, write);
    for (const row of rows) for (const alert of row.fired_alerts ?? []) this.tracker.announce(alert);
    return {
      requestId: dto.requestId,
      replayed: rows.length > 0 && rows.every((row) => row.replayed),
      records: rows.map((row) => this.tracker.mapRecord(row)),
    };
  }

  /** Each applicable budget (the scopes' budgets and their ancestors) with its status. */
  async getSummary(request: IntegrationScopesDto): Promise<IntegrationSummaryDto> {
    const dto = await validateInput(IntegrationScopesDto, request);
    const scopes = scopesOf(dto);
    const rows = await this.constraints.checkContext([], scopes, this.clock.now());
    return {
      budgets: rows.map((row) => ({
        budgetId: row.budget_id,
        name: row.name,
        scopeType: row.scope_type,
        scopeId: row.scope_id,
        parentId: row.parent_id,
        status: this.tracker.mapStatus({ ...row, last_usage_at: null }),
      })),
    };
  }

  /** Alert monitoring: every triggered alert is logged here (delivery to channels is a later phase). */
  @OnEvent(BUDGET_ALERT_TRIGGERED)
  onAlertTriggered(alert: FiredAlert): void {
    this.logger.log(
      `Alert ${alert.alertId} of budget ${alert.budgetId} triggered at ${alert.percentUsed}%: ` +
        `actions ${alert.actions.join(', ') || 'none'}; channels ${alert.notificationChannels.join(', ') || 'none'} (delivery pending)`,
    );
  }

  private assertCurrency(rows: CheckContextRow[], currency: string): void {
    const other = rows.find((row) => row.currency !== currency);
    if (other) {
      throw new DomainError(
        422,
        'CURRENCY_MISMATCH',
        `Budget "${other.name}" (${other.scope_type} ${other.scope_id}) counts in ${other.currency}; the request is in ${currency}.`,
      );
    }
  }
}
