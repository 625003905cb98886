import { Decimal, toMoneyNumber } from '../common/money';
import type { BudgetCheckContext, BudgetDecision, CombinedDecision } from './constraint-decision';
import type { AlertHistoryRow, CheckContextRow } from './constraint.repository';
import type { AlertHistoryDto } from './dto/alert-history.dto';
import type { BlockingBudgetDto, BudgetConstraintCheckDto, IntegrationBudgetResultDto } from './dto/constraint-check-response.dto';

export function toCheckContext(row: CheckContextRow): BudgetCheckContext {
  return {
    budgetId: row.budgetId,
    name: row.name,
    scopeType: row.scopeType,
    scopeId: row.scopeId,
    parentId: row.parentId,
    limit: row.amount,
    currency: row.currency,
    enforcement: row.enforcement,
    warningThreshold: row.warningThreshold,
    criticalThreshold: row.criticalThreshold,
    alerts: row.alertRules ?? [],
    modelPolicy: row.modelPolicy,
    periodStart: row.periodStart,
    periodEnd: row.periodEnd,
    active: row.active,
    matches: row.matches,
    currentAmount: row.currentAmount,
    reservedAmount: row.reservedAmount,
  };
}

export function blockingBudget(decision: BudgetDecision | undefined): BlockingBudgetDto | undefined {
  return decision
    ? { budgetId: decision.budgetId, name: decision.budgetName, remaining: decision.remaining, resetsAt: decision.resetsAt }
    : undefined;
}

/** One budget's answer, with the verdict of the whole chain it belongs to. */
export function toCheckResponse(
  own: BudgetDecision,
  { combined, suggestedModelEstimatedCost }: { combined: CombinedDecision; suggestedModelEstimatedCost?: number | null },
): BudgetConstraintCheckDto {
  // Built field by field, in the DTO's order: a rest-spread of the decision cost a check more
  // than the rest of this mapping (docs/performance.md, fifth pass).
  return {
    budgetId: own.budgetId,
    canProceed: combined.canProceed,
    rule: combined.rule,
    reason: combined.reason ?? own.reason,
    requiresApproval: combined.requiresApproval,
    suggestedActions: combined.suggestedActions,
    suggestedModel: combined.suggestedModel,
    suggestedModelEstimatedCost,
    estimatedCost: own.estimatedCost,
    currentAmount: own.currentAmount,
    reservedAmount: own.reservedAmount,
    limit: own.limit,
    currency: own.currency,
    remaining: own.remaining,
    percentUsedAfter: own.percentUsedAfter,
    status: own.status,
    active: own.active,
    resetsAt: own.resetsAt,
    blockedBy: blockingBudget(combined.blockedBy),
  };
}

/** One budget's answer within an integration check: its decision and scope, without the alert actions it was judged by. */
export function toIntegrationResult(decision: BudgetDecision, context: BudgetCheckContext): IntegrationBudgetResultDto {
  // Field by field, in the decision's order, as toCheckResponse (a rest-spread costs more).
  return {
    budgetId: decision.budgetId,
    budgetName: decision.budgetName,
    canProceed: decision.canProceed,
    reason: decision.reason,
    requiresApproval: decision.requiresApproval,
    suggestedActions: decision.suggestedActions,
    suggestedModel: decision.suggestedModel,
    estimatedCost: decision.estimatedCost,
    currentAmount: decision.currentAmount,
    reservedAmount: decision.reservedAmount,
    limit: decision.limit,
    currency: decision.currency,
    remaining: decision.remaining,
    percentUsedAfter: decision.percentUsedAfter,
    status: decision.status,
    active: decision.active,
    resetsAt: decision.resetsAt,
    rule: decision.rule,
    scopeType: context.scopeType,
    scopeId: context.scopeId,
  };
}

export function toAlertHistory(row: AlertHistoryRow): AlertHistoryDto {
  return {
    id: row.id,
    budgetId: row.budgetId,
    alertId: row.alertId,
    threshold: Number(row.threshold),
    type: row.alertType as AlertHistoryDto['type'],
    periodStart: row.periodStart.toISOString(),
    triggeredAt: row.triggeredAt.toISOString(),
    percentUsed: new Decimal(row.percentUsed).toDecimalPlaces(2).toNumber(),
    amount: toMoneyNumber(row.amount),
    actions: row.actions as AlertHistoryDto['actions'],
    notificationChannels: row.notificationChannels,
    usageRecordId: row.usageRecordId,
    acknowledgedAt: row.acknowledgedAt ? row.acknowledgedAt.toISOString() : null,
    acknowledgedBy: row.acknowledgedBy,
    note: row.note,
  };
}
