import type { BudgetRecord } from '../budget/budget.types';
import { Decimal, toMoneyNumber } from '../common/money';
import { percentOf } from '../usage/budget-status.calculator';
import type { BudgetAnomalyDto } from './dto/anomaly.dto';
import type { BudgetForecastDto } from './dto/forecast.dto';
import type { BudgetPeriodDto } from './dto/periods.dto';
import type { WhatIfSettingsDto, WhatIfWindowDto } from './dto/what-if.dto';
import { HOUR_SECONDS, type Forecast, type ForecastPlan } from './forecast';
import type { AnomalyRow, PeriodRow, WindowRow } from './reporting.repository';
import type { ProposedSettings, WhatIfWindowResult } from './what-if-replay';

export function toForecastDto(
  budget: BudgetRecord,
  window: WindowRow,
  current: Decimal,
  forecast: Forecast,
  plan: ForecastPlan,
  history: { from: Date; to: Date; buckets: number },
): BudgetForecastDto {
  return {
    budgetId: budget.id,
    periodStart: window.periodStart.toISOString(),
    periodEnd: window.periodEnd.toISOString(),
    currency: budget.currency,
    limit: toMoneyNumber(budget.amount),
    currentAmount: toMoneyNumber(current),
    projectedAmount: toMoneyNumber(forecast.projectedAmount),
    lower80: toMoneyNumber(forecast.lower80),
    upper80: toMoneyNumber(forecast.upper80),
    lower95: toMoneyNumber(forecast.lower95),
    upper95: toMoneyNumber(forecast.upper95),
    probabilityOverLimit: forecast.probabilityOverLimit,
    projectedExhaustionAt: forecast.projectedExhaustionAt?.toISOString() ?? null,
    method: forecast.method,
    basedOn: {
      from: history.from.toISOString(),
      to: history.to.toISOString(),
      buckets: history.buckets,
      bucket: plan.bucketSeconds === HOUR_SECONDS ? 'hour' : 'day',
      ratePerBucket: toMoneyNumber(new Decimal(forecast.ratePerBucket)),
    },
  };
}

export function toPeriodDto(row: PeriodRow, limit: string): BudgetPeriodDto {
  return {
    periodStart: row.periodStart.toISOString(),
    periodEnd: row.periodEnd.toISOString(),
    current: row.ordinal === 1,
    limit: toMoneyNumber(limit),
    spent: toMoneyNumber(row.spent),
    percentUsed: percentOf(row.spent, limit),
    usageCount: Number(row.usageCount),
    alertsTriggered: Number(row.alertsTriggered),
  };
}

export function toWhatIfWindowDto(result: WhatIfWindowResult): WhatIfWindowDto {
  return {
    periodStart: result.periodStart.toISOString(),
    periodEnd: result.periodEnd.toISOString(),
    usageCount: result.usageCount,
    recordedSpent: toMoneyNumber(result.recordedSpent),
    spent: toMoneyNumber(result.spent),
    wouldBlockCount: result.wouldBlockCount,
    wouldBlockAmount: toMoneyNumber(result.wouldBlockAmount),
    firstBlockAt: result.firstBlockAt?.toISOString() ?? null,
    wouldDowngradeCount: result.wouldDowngradeCount,
    wouldRequireApprovalCount: result.wouldRequireApprovalCount,
    alertsThatWouldFire: result.alertsThatWouldFire.map((alert) => ({ ...alert, firedAt: alert.firedAt.toISOString() })),
  };
}

export function toWhatIfSettingsDto(settings: ProposedSettings): WhatIfSettingsDto {
  return {
    amount: toMoneyNumber(settings.limit),
    enforcement: settings.enforcement,
    alerts: settings.alerts,
    modelPolicy: settings.modelPolicy,
  };
}

export function toAnomalyDto(row: AnomalyRow): BudgetAnomalyDto {
  return {
    id: row.id,
    budgetId: row.budgetId,
    hourStart: row.hourStart.toISOString(),
    hourEnd: new Date(row.hourStart.getTime() + HOUR_SECONDS * 1000).toISOString(),
    observed: toMoneyNumber(row.observed),
    baselineMedian: toMoneyNumber(row.baselineMedian),
    baselineMad: toMoneyNumber(row.baselineMad),
    baselineHours: row.baselineHours,
    score: row.score,
    sensitivity: row.sensitivity,
    threshold: row.threshold,
    currency: row.currency,
    detectedAt: row.detectedAt.toISOString(),
  };
}
