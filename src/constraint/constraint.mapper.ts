import { Decimal, toMoneyNumber } from '../common/money';
import type { BudgetCheckContext, BudgetDecision, CombinedDecision } from './constraint-decision';
import type { AlertHistoryRow, CheckContextRow } from './constraint.repository';
import type { AlertHistoryDto } from './dto/alert-history.dto';
import type { BlockingBudgetDto, BudgetConstraintCheckDto } from './dto/constraint-check-response.dto';

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
  const { budgetName: _name, alertActions: _actions, ...figures } = own;
  return {
    ...figures,
    rule: combined.rule,
    canProceed: combined.canProceed,
    reason: combined.reason ?? own.reason,
    requiresApproval: combined.requiresApproval,
    suggestedActions: combined.suggestedActions,
    suggestedModel: combined.suggestedModel,
    suggestedModelEstimatedCost,
    blockedBy: blockingBudget(combined.blockedBy),
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
