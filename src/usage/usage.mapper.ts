import { Decimal, toMoneyNumber } from '../common/money';
import { deriveStatus } from './budget-status.calculator';
import type { BudgetAlertStatusDto, BudgetStatusDto } from './dto/budget-status.dto';
import type { UsageRecordResponseDto } from './dto/usage-record-response.dto';
import type { StatusRow, UsageRow } from './usage.repository';

/** The API's view of a ledger line. */
export function toUsageRecord(row: UsageRow): UsageRecordResponseDto {
  return {
    id: row.id,
    budgetId: row.budgetId,
    amount: toMoneyNumber(row.amount),
    currency: row.currency,
    source: row.source,
    description: row.description,
    modelId: row.modelId,
    userId: row.userId,
    teamId: row.teamId,
    projectId: row.projectId,
    customerId: row.customerId ?? null,
    tags: row.tags ?? [],
    requestId: row.requestId,
    reservationId: row.reservationId,
    metadata: row.metadata,
    occurredAt: new Date(row.occurredAt).toISOString(),
    recordedAt: new Date(row.recordedAt).toISOString(),
    matchedBudgetIds: row.matchedBudgetIds ?? [row.budgetId],
    provider: row.provider ?? null,
    inputTokens: row.inputTokens ?? null,
    outputTokens: row.outputTokens ?? null,
    cachedInputTokens: row.cachedInputTokens ?? null,
    priceId: row.priceId ?? null,
  };
}

/** The seed's BudgetStatusInfo from a status row, with the figures derived at `now`. */
export function toBudgetStatus(row: StatusRow, now: Date): BudgetStatusDto {
  const derived = deriveStatus({
    currentAmount: row.currentAmount,
    limit: row.amount,
    warningThreshold: row.warningThreshold,
    criticalThreshold: row.criticalThreshold,
    periodStart: row.periodStart,
    periodEnd: row.periodEnd,
    active: row.active,
    now,
  });
  return {
    budgetId: row.budgetId,
    currentAmount: toMoneyNumber(row.currentAmount),
    limit: toMoneyNumber(row.amount),
    currency: row.currency,
    ...derived,
    activeAlerts: (row.activeAlerts ?? []).map(
      (alert): BudgetAlertStatusDto => ({
        id: alert.id,
        alertId: alert.alertId,
        threshold: Number(alert.threshold),
        type: alert.type as BudgetAlertStatusDto['type'],
        triggeredAt: new Date(alert.triggeredAt).toISOString(),
        percentUsed: new Decimal(alert.percentUsed).toDecimalPlaces(2).toNumber(),
        amount: toMoneyNumber(String(alert.amount)),
        actions: alert.actions as BudgetAlertStatusDto['actions'],
        acknowledged: alert.acknowledged,
        acknowledgedAt: alert.acknowledgedAt ? new Date(alert.acknowledgedAt).toISOString() : null,
        acknowledgedBy: alert.acknowledgedBy,
      }),
    ),
    periodStart: row.periodStart.toISOString(),
    periodEnd: row.periodEnd.toISOString(),
    active: row.active,
    reservedAmount: toMoneyNumber(row.reservedAmount),
    usageCount: Number(row.usageCount),
    lastUpdated: row.updatedAt.toISOString(),
  };
}
