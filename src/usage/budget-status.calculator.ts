import { Decimal, toMoneyNumber } from '../common/money';
import type { BudgetStatus } from './dto/budget-status.dto';

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

export interface StatusFigures {
  currentAmount: string;
  limit: string;
  warningThreshold: string | number;
  criticalThreshold: string | number;
  periodStart: Date;
  periodEnd: Date;
  active: boolean;
  now: Date;
}

export interface DerivedStatus {
  percentUsed: number;
  remaining: number;
  overage: number;
  daysRemaining: number;
  burnRate: number;
  projectedTotal: number;
  status: BudgetStatus;
}

/** percent = part / whole × 100, rounded to 2 decimals (exact decimal arithmetic): the displayed figure. */
export function percentOf(part: Decimal.Value, whole: Decimal.Value): number {
  return new Decimal(part).div(whole).mul(100).toDecimalPlaces(2).toNumber();
}

/**
 * The status label from the exact percentage, never the rounded one, so it agrees with the
 * alerts (SPEC §12.1): 2.6999 of 3 shows 90 % but is 89.9966… %, below a critical 90.
 */
export function statusLabel(current: Decimal, limit: Decimal, warning: Decimal.Value, critical: Decimal.Value): BudgetStatus {
  if (current.gte(limit)) return 'exceeded';
  const percent = current.div(limit).mul(100);
  if (percent.gte(critical)) return 'critical';
  if (percent.gte(warning)) return 'warning';
  return 'normal';
}

/**
 * The figures SPEC §2 "Status" derives from the cached spend at read time: percent, remaining,
 * overage, days remaining, burn rate, projection and the status label.
 */
export function deriveStatus(figures: StatusFigures): DerivedStatus {
  const current = new Decimal(figures.currentAmount);
  const limit = new Decimal(figures.limit);
  const now = figures.now.getTime();
  const start = figures.periodStart.getTime();
  const end = figures.periodEnd.getTime();
  const afterEnd = !figures.active && now >= end;

  const percentUsed = percentOf(current, limit);
  const elapsedDays = new Decimal(Math.max(now - start, HOUR_MS)).div(DAY_MS);
  const burnRate = current.div(elapsedDays);
  const daysLeft = new Decimal(Math.max(end - Math.max(now, start), 0)).div(DAY_MS);
  const projected = afterEnd ? current : current.add(burnRate.mul(new Decimal(Math.max(end - now, 0)).div(DAY_MS)));

  return {
    percentUsed,
    remaining: toMoneyNumber(Decimal.max(0, limit.sub(current))),
    overage: toMoneyNumber(Decimal.max(0, current.sub(limit))),
    daysRemaining: afterEnd ? 0 : daysLeft.ceil().toNumber(),
    burnRate: toMoneyNumber(burnRate),
    projectedTotal: toMoneyNumber(projected),
    status: statusLabel(current, limit, figures.warningThreshold, figures.criticalThreshold),
  };
}
