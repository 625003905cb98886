import { errorFunction, mean, sampleVariance } from 'simple-statistics';
import { Decimal, MONEY_SCALE } from '../common/money';

/**
 * The forecast of a window's total (docs/reporting.md, "Forecast"): the spend of each complete
 * bucket (hour or day) of the recent history is taken as independent draws of one rate, with
 * mean μ and sample variance s² over n buckets. With R buckets left in the window:
 *
 *   projected = current + μ·R
 *   sd        = s·√(R + R²/n)        (R·s²: the draws still to come; R²·s²/n: the error in μ)
 *   interval  = projected ± z·sd,    z80 = 1.2816, z95 = 1.9600, the lower bound never below current
 *   P(over)   = 1 − Φ((limit − projected) / sd)
 *   exhausted = now + (limit − current) / μ buckets, when that falls inside the window
 *
 * The statistics are floats: they describe a projection, never money on the ledger, and their
 * error (≈1e-12 relative) is far below the interval's width. `current` stays exact (Decimal) and
 * every figure is rounded to 10 decimals on the way out.
 */

export const HOUR_SECONDS = 3600;
export const DAY_SECONDS = 86_400;
/** Normal quantiles for the two-sided 80 % and 95 % intervals. */
export const Z80 = 1.2815515655446004;
export const Z95 = 1.959963984540054;

/** Which buckets a window's forecast reads: hours for windows up to a week, days for longer ones. */
export interface ForecastPlan {
  bucketSeconds: number;
  /** History buckets read at most (7 days of hours, or 28 days). */
  lookbackBuckets: number;
}

export function forecastPlan(periodStart: Date, periodEnd: Date): ForecastPlan {
  // A week of local time is 167–169 hours across a daylight-saving change.
  const hourly = periodEnd.getTime() - periodStart.getTime() <= (7 * 24 + 1) * HOUR_SECONDS * 1000;
  return hourly ? { bucketSeconds: HOUR_SECONDS, lookbackBuckets: 7 * 24 } : { bucketSeconds: DAY_SECONDS, lookbackBuckets: 28 };
}

/**
 * The history range [from, to) of complete buckets before `now`, aligned to UTC hours or days and
 * starting no earlier than the first whole bucket after the budget's start (before it nothing
 * could be spent, and counting those buckets as zeros would drag the rate down).
 */
export function historyRange(plan: ForecastPlan, now: Date, budgetStart: Date): { from: Date; to: Date; buckets: number } {
  const size = plan.bucketSeconds * 1000;
  const to = Math.floor(now.getTime() / size) * size;
  const firstWhole = Math.ceil(budgetStart.getTime() / size) * size;
  const from = Math.min(to, Math.max(to - plan.lookbackBuckets * size, firstWhole));
  return { from: new Date(from), to: new Date(to), buckets: Math.round((to - from) / size) };
}

export interface ForecastInput {
  /** Spend of each complete history bucket, oldest first (zeros included). */
  buckets: number[];
  bucketSeconds: number;
  /** Spend in the window so far (exact). */
  current: Decimal;
  limit: Decimal;
  now: Date;
  periodStart: Date;
  periodEnd: Date;
}

export const FORECAST_METHODS = ['bucket-mean-normal', 'burn-rate'] as const;
export type ForecastMethod = (typeof FORECAST_METHODS)[number];

export interface Forecast {
  projectedAmount: Decimal;
  lower80: Decimal;
  upper80: Decimal;
  lower95: Decimal;
  upper95: Decimal;
  /** 0–1, 4 decimals. */
  probabilityOverLimit: number;
  projectedExhaustionAt: Date | null;
  method: ForecastMethod;
  /** μ: mean spend per bucket (0 with the burn-rate fallback's own rate below). */
  ratePerBucket: number;
  /** The standard deviation of the projected total. */
  standardDeviation: number;
}

const money = (value: number | Decimal) => new Decimal(value).toDecimalPlaces(MONEY_SCALE);

/** Φ, the standard normal distribution function. */
export function normalCdf(x: number): number {
  return 0.5 * (1 + errorFunction(x / Math.SQRT2));
}

/**
 * The forecast of one window (see the top of this file). With fewer than two complete buckets of
 * history there is no variance to speak of: the projection is the status's burn rate
 * (current / elapsed time, elapsed at least an hour) and the interval has no width.
 */
export function forecastWindow(input: ForecastInput): Forecast {
  const { current, limit, periodStart, periodEnd } = input;
  const bucketMs = input.bucketSeconds * 1000;
  const from = Math.max(input.now.getTime(), periodStart.getTime());
  const remainingBuckets = Math.max(periodEnd.getTime() - from, 0) / bucketMs;
  const n = input.buckets.length;

  let rate: number;
  let sd: number;
  let method: ForecastMethod;
  if (n >= 2) {
    rate = mean(input.buckets);
    const variance = Math.max(sampleVariance(input.buckets), 0);
    sd = Math.sqrt(variance * (remainingBuckets + (remainingBuckets * remainingBuckets) / n));
    method = 'bucket-mean-normal';
  } else {
    const elapsedMs = Math.max(input.now.getTime() - periodStart.getTime(), HOUR_SECONDS * 1000);
    rate = current.toNumber() * (bucketMs / elapsedMs);
    sd = 0;
    method = 'burn-rate';
  }

  const projected = current.add(money(rate * remainingBuckets));
  const bound = (z: number, sign: 1 | -1) => {
    const value = projected.add(money(sign * z * sd));
    return sign < 0 ? Decimal.max(current, value) : value;
  };

  let probability: number;
  if (current.gte(limit)) probability = 1;
  else if (sd === 0) probability = projected.gte(limit) ? 1 : 0;
  else probability = 1 - normalCdf(limit.sub(projected).toNumber() / sd);

  let exhaustion: Date | null = null;
  if (current.gte(limit)) exhaustion = input.now;
  else if (rate > 0) {
    const at = from + (limit.sub(current).toNumber() / rate) * bucketMs;
    if (at < periodEnd.getTime()) exhaustion = new Date(Math.ceil(at));
  }

  return {
    projectedAmount: projected,
    lower80: bound(Z80, -1),
    upper80: bound(Z80, 1),
    lower95: bound(Z95, -1),
    upper95: bound(Z95, 1),
    probabilityOverLimit: Math.min(1, Math.max(0, Math.round(probability * 10_000) / 10_000)),
    projectedExhaustionAt: exhaustion,
    method,
    ratePerBucket: rate,
    standardDeviation: sd,
  };
}
