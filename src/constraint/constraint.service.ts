import { Injectable } from '@nestjs/common';
import { Clock } from '../common/clock';
import { DomainError, notFound } from '../common/errors/domain-error';
import { Decimal, toMoneyNumber } from '../common/money';
import { validateInput } from '../common/validation';
import { BudgetTrackerService, type ConstraintChecker } from '../usage/budget-tracker.service';
import {
  combineDecisions, decideBudget, type BudgetCheckContext, type BudgetDecision, type CombinedDecision,
} from './constraint-decision';
import { ConstraintRepository, type AlertHistoryRow, type CheckContextRow } from './constraint.repository';
import { CheckConstraintsDto } from './dto/check-constraints.dto';
import { ReservationService } from './reservation.service';
import type { BlockingBudgetDto, BudgetConstraintCheckDto } from './dto/constraint-check-response.dto';
import type { AcknowledgeAlertDto, AlertHistoryDto } from './dto/alert-history.dto';

export function toCheckContext(row: CheckContextRow): BudgetCheckContext {
  return {
    budgetId: row.budget_id,
    name: row.name,
    scopeType: row.scope_type,
    scopeId: row.scope_id,
    parentId: row.parent_id,
    limit: row.amount,
    currency: row.currency,
    enforcement: row.enforcement,
    warningThreshold: row.warning_threshold,
    criticalThreshold: row.critical_threshold,
    alerts: row.alert_rules ?? [],
    modelPolicy: row.model_policy,
    periodStart: row.period_start,
    periodEnd: row.period_end,
    active: row.active,
    currentAmount: row.current_amount,
    reservedAmount: row.reserved_amount,
    triggeredAlertIds: (row.active_alerts ?? []).map((alert) => alert.alertId),
  };
}

export function blockingBudget(decision: BudgetDecision | undefined): BlockingBudgetDto | undefined {
  return decision
    ? { budgetId: decision.budgetId, name: decision.budgetName, remaining: decision.remaining, resetsAt: decision.resetsAt }
    : undefined;
}

/** One budget's answer, with the verdict of the whole chain it belongs to. */
export function toCheckResponse(own: BudgetDecision, combined: CombinedDecision): BudgetConstraintCheckDto {
  const { budgetName: _name, alertActions: _actions, ...figures } = own;
  return {
    ...figures,
    rule: combined.rule,
    canProceed: combined.canProceed,
    reason: combined.reason ?? own.reason,
    requiresApproval: combined.requiresApproval,
    suggestedActions: combined.suggestedActions,
    suggestedModel: combined.suggestedModel ?? own.suggestedModel,
    blockedBy: blockingBudget(combined.blockedBy),
  };
}

/**
 * Single-budget constraint checks (the SPEC §3 ladder over the budget and its ancestors, since
 * its usage rolls up into them) and the alert history of a budget.
 */
@Injectable()
export class ConstraintService implements ConstraintChecker {
  constructor(
    private readonly constraints: ConstraintRepository,
    private readonly tracker: BudgetTrackerService,
    private readonly reservations: ReservationService,
    private readonly clock: Clock,
  ) {}

  /** `actor` names who placed a hold (reserve: true); the controller checks the role first. */
  async checkBudget(budgetId: string, request: CheckConstraintsDto, actor?: string): Promise<BudgetConstraintCheckDto> {
    const dto = await validateInput(CheckConstraintsDto, request);
    const estimate = new Decimal(String(dto.estimatedCost));
    const rows = await this.constraints.checkContext([budgetId], [], this.clock.now());
    const contexts = rows.map(toCheckContext);
    const ownIndex = contexts.findIndex((context) => context.budgetId === budgetId);
    if (ownIndex < 0) throw notFound('budget', budgetId);
    const own = decideBudget(contexts[ownIndex], estimate, dto.modelId);
    // An inactive budget takes no usage, so neither it nor its ancestors constrain this request.
    const decided = own.rule === 'inactive' ? [own] : contexts.map((context) => decideBudget(context, estimate, dto.modelId));
    const combined = combineDecisions(decided, own.rule === 'inactive' ? [contexts[ownIndex]] : contexts, dto.modelId);
    const answer = toCheckResponse(own, combined);
    if (!dto.reserve || own.rule === 'inactive') return answer;
    return this.reservations.holdFor(answer, combined, {
      budgetIds: [budgetId],
      amount: estimate.toFixed(),
      currency: own.currency,
      ttlSeconds: dto.reservationTtlSeconds,
      modelId: combined.suggestedModel ?? dto.modelId,
      actor,
    }, decided);
  }

  async listAlerts(budgetId: string, all: boolean): Promise<AlertHistoryDto[]> {
    const status = await this.tracker.getBudgetStatus(budgetId);
    const rows = await this.constraints.listAlerts(budgetId, all ? null : new Date(status.periodStart));
    return rows.map((row) => this.mapAlert(row));
  }

  async acknowledgeAlert(budgetId: string, historyId: string, actor: string, body: AcknowledgeAlertDto = {}): Promise<AlertHistoryDto> {
    const row = await this.constraints.acknowledgeAlert(budgetId, historyId, actor, body.note ?? null);
    if (!row) {
      throw new DomainError(404, 'ALERT_NOT_FOUND', `Budget ${budgetId} has no triggered alert ${historyId}.`);
    }
    return this.mapAlert(row);
  }

  private mapAlert(row: AlertHistoryRow): AlertHistoryDto {
    return {
      id: row.id,
      budgetId: row.budget_id,
      alertId: row.alert_id,
      threshold: Number(row.threshold),
      type: row.alert_type as AlertHistoryDto['type'],
      periodStart: row.period_start.toISOString(),
      triggeredAt: row.triggered_at.toISOString(),
      percentUsed: new Decimal(row.percent_used).toDecimalPlaces(2).toNumber(),
      amount: toMoneyNumber(row.amount),
      actions: row.actions as AlertHistoryDto['actions'],
      notificationChannels: row.notification_channels,
      usageRecordId: row.usage_record_id,
      acknowledgedAt: row.acknowledged_at ? row.acknowledged_at.toISOString() : null,
      acknowledgedBy: row.acknowledged_by,
      note: row.note,
    };
  }
}
