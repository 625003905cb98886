import { Injectable, Logger } from '@nestjs/common';
import { OnEvent } from '@nestjs/event-emitter';
import type { Scope, ScopeType } from '../budget/budget.types';
import { Clock } from '../common/clock';
import { DomainError, validationFailed } from '../common/errors/domain-error';
import { toMoneyNumber } from '../common/money';
import { validateInput } from '../common/validation';
import { BudgetStatusService } from '../usage/budget-status.service';
import { BudgetTrackerService } from '../usage/budget-tracker.service';
import { BUDGET_ALERT_TRIGGERED, type FiredAlert } from '../usage/usage.events';
import type { BudgetCheckContext } from './constraint-decision';
import { blockingBudget, toIntegrationResult } from './constraint.mapper';
import { ConstraintRepository } from './constraint.repository';
import { ConstraintService, estimateOf } from './constraint.service';
import { ReservationService } from './reservation.service';
import { IntegrationCheckDto, IntegrationScopesDto, IntegrationUsageDto } from './dto/check-constraints.dto';
import type { IntegrationCheckResponseDto } from './dto/constraint-check-response.dto';
import type { IntegrationSummaryDto, IntegrationUsageResponseDto } from './dto/integration.dto';

const SCOPE_FIELDS: [keyof IntegrationScopesDto, ScopeType][] = [
  ['customerId', 'customer'],
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
      SCOPE_FIELDS.map(([field]) => ({
        field,
        message: 'at least one of organizationId, teamId, userId, projectId, customerId is required',
      })),
    );
  }
  return scopes;
}

/**
 * The seed's Budget Integration: what RelayCore calls around every AI request. Multi-scope
 * checks (through the one decision pipeline), usage recorded once per budget tree, summaries,
 * alert monitoring.
 */
@Injectable()
export class BudgetIntegrationService {
  private readonly logger = new Logger(BudgetIntegrationService.name);

  constructor(
    private readonly constraints: ConstraintService,
    private readonly contexts: ConstraintRepository,
    private readonly tracker: BudgetTrackerService,
    private readonly statuses: BudgetStatusService,
    private readonly reservations: ReservationService,
    private readonly clock: Clock,
  ) {}

  /** Every active budget of the scopes that matches the request, and their ancestors; proceeds only if all allow. */
  async checkConstraints(request: IntegrationCheckDto, actor?: string): Promise<IntegrationCheckResponseDto> {
    const dto = await validateInput(IntegrationCheckDto, request);
    const scopes = scopesOf(dto);
    const traits = { modelId: dto.modelId, tags: dto.tags };
    const decided = await this.constraints.decide({ scopes }, estimateOf(dto), traits);
    const { contexts, decisions, combined } = decided;
    this.assertCurrency(contexts, dto.currency);
    const answer: IntegrationCheckResponseDto = {
      canProceed: combined.canProceed,
      reason: combined.reason ?? (contexts.length ? undefined : 'No budget applies to these scopes, so nothing constrains this request.'),
      requiresApproval: combined.requiresApproval,
      suggestedModel: combined.suggestedModel,
      suggestedModelEstimatedCost: decided.suggestedModelEstimatedCost,
      suggestedActions: combined.suggestedActions,
      blockedBy: blockingBudget(combined.blockedBy),
      estimatedCost: toMoneyNumber(decided.estimate),
      currency: dto.currency,
      rule: combined.rule,
      results: decisions.map((decision, index) => toIntegrationResult(decision, contexts[index])),
    };
    if (!dto.reserve || !contexts.length) return answer;
    return this.reservations.holdFor(answer, decided, {
      scopes,
      amount: decided.estimate.toFixed(),
      currency: dto.currency,
      ttlSeconds: dto.reservationTtlSeconds,
      modelId: combined.suggestedModel ?? dto.modelId,
      traits,
      actor,
    });
  }

  /**
   * Records the request's actual cost once: one ledger row counting toward every budget it matches
   * and their ancestors, each once (SPEC §12.2); idempotent on requestId, in one transaction.
   */
  async recordUsage(request: IntegrationUsageDto): Promise<IntegrationUsageResponseDto> {
    const dto = await validateInput(IntegrationUsageDto, request);
    const outcome = await this.tracker.recordScopedUsage(scopesOf(dto), {
      ...dto,
      source: dto.source ?? 'relaycore',
      metadata: dto.metadata ?? null,
    });
    return { requestId: dto.requestId, ...outcome };
  }

  /** Each applicable budget (the scopes' budgets and their ancestors) with its status. */
  async getSummary(request: IntegrationScopesDto): Promise<IntegrationSummaryDto> {
    const dto = await validateInput(IntegrationScopesDto, request);
    // Every budget of the scopes, whatever its filter: this is a view, not a decision on a request.
    const rows = await this.contexts.scopeStatuses(scopesOf(dto), this.clock.now());
    return {
      budgets: rows.map((row) => ({
        budgetId: row.budgetId,
        name: row.name,
        scopeType: row.scopeType,
        scopeId: row.scopeId,
        parentId: row.parentId,
        status: this.statuses.describe({ ...row, lastUsageAt: null }),
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

  /** Only active budgets take the request's usage, so only they can refuse its currency (SPEC §12.1). */
  private assertCurrency(contexts: BudgetCheckContext[], currency: string): void {
    const other = contexts.find((context) => context.active && context.currency !== currency);
    if (other) {
      throw new DomainError(
        422,
        'CURRENCY_MISMATCH',
        `Budget "${other.name}" (${other.scopeType} ${other.scopeId}) counts in ${other.currency}; the request is in ${currency}.`,
      );
    }
  }
}
