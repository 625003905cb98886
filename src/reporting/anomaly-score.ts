import type { AnomalySensitivity } from '../budget/budget.types';
import { Decimal } from '../common/money';

/**
 * Spike scoring (docs/reporting.md, "Anomalies"). An hour's spend is compared with the spend of
 * the same hour on each of the 7 days before it (the days the budget existed, at least 3):
 *
 *   m     = median of the baseline hours, MAD = median |x − m|
 *   scale = max(1.4826·MAD, 0.1·m, 0.001·limit)
 *   score = (observed − m) / scale          a spike when score ≥ the sensitivity's threshold
 *
 * 1.4826·MAD estimates the standard deviation of normal data, so the score reads as a robust
 * z-score (Iglewicz–Hoaglin's modified z-score); the floors keep a perfectly steady baseline
 * (MAD 0) from calling every small wobble a spike: a deviation then has to be a sizeable share of
 * the usual spend, or of the limit when the usual spend is nothing. Median and MAD are exact
 * decimals; the score is rounded to 4 decimals.
 */

export const SENSITIVITY_THRESHOLDS: Record<AnomalySensitivity, number> = { low: 7, medium: 5, high: 3.5 };
export const MIN_BASELINE_HOURS = 3;
export const BASELINE_DAYS = 7;
const MAD_TO_SD = new Decimal('1.4826');

export interface HourScore {
  median: Decimal;
  mad: Decimal;
  scale: Decimal;
  score: number;
  threshold: number;
  isSpike: boolean;
}

export function median(values: Decimal[]): Decimal {
  const sorted = [...values].sort((a, b) => a.comparedTo(b));
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : sorted[middle - 1].add(sorted[middle]).div(2);
}

/** The score of one hour, or undefined when the baseline is too short to judge (fewer than 3 hours). */
export function scoreHour(observed: Decimal, baseline: Decimal[], limit: Decimal, sensitivity: AnomalySensitivity): HourScore | undefined {
  if (baseline.length < MIN_BASELINE_HOURS) return undefined;
  const m = median(baseline);
  const mad = median(baseline.map((value) => value.sub(m).abs()));
  const scale = Decimal.max(mad.mul(MAD_TO_SD), m.mul('0.1'), limit.mul('0.001'));
  const score = observed.sub(m).div(scale).toDecimalPlaces(4).toNumber();
  const threshold = SENSITIVITY_THRESHOLDS[sensitivity];
  return { median: m, mad, scale, score, threshold, isSpike: score >= threshold };
}
