import { Decimal } from '../common/money';
import { DAY_SECONDS, forecastPlan, forecastWindow, historyRange, HOUR_SECONDS, normalCdf, Z80, Z95, type ForecastInput } from './forecast';

const HOUR = 3_600_000;
const start = new Date('2026-03-01T00:00:00Z');
const at = (hours: number) => new Date(start.getTime() + hours * HOUR);

/** An hourly forecast of a one-day window [start, start + 24 h) at `nowHours` into it. */
function hourly(buckets: number[], current: Decimal.Value, limit: Decimal.Value, nowHours: number): ForecastInput {
  return {
    buckets,
    bucketSeconds: HOUR_SECONDS,
    current: new Decimal(current),
    limit: new Decimal(limit),
    now: at(nowHours),
    periodStart: start,
    periodEnd: at(24),
  };
}

const fixed = (value: Decimal) => value.toFixed(10);

/** A seeded generator (mulberry32) and normal draws by Box–Muller, so the simulation is the same on every run. */
function normalDraws(seed: number) {
  let state = seed >>> 0;
  const uniform = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return (mu: number, sigma: number) => {
    const u = 1 - uniform();
    const v = uniform();
    return mu + sigma * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
}

describe('forecastWindow', () => {
  it('a constant rate projects exactly, with an interval of no width', () => {
    const forecast = forecastWindow(hourly([2, 2, 2, 2, 2, 2], 10, 100, 5));
    // 19 hours left at 2 an hour.
    expect(fixed(forecast.projectedAmount)).toBe('48.0000000000');
    for (const bound of [forecast.lower80, forecast.upper80, forecast.lower95, forecast.upper95]) expect(fixed(bound)).toBe('48.0000000000');
    expect(forecast.method).toBe('bucket-mean-normal');
    expect(forecast.probabilityOverLimit).toBe(0);
    // (100 − 10) / 2 = 45 hours: after the window's end.
    expect(forecast.projectedExhaustionAt).toBeNull();
  });

  it('a constant rate that reaches the limit inside the window: the exhaustion instant and certainty', () => {
    const forecast = forecastWindow(hourly([2, 2, 2, 2, 2, 2], 10, 40, 5));
    expect(forecast.projectedExhaustionAt).toEqual(at(5 + 15));
    expect(forecast.probabilityOverLimit).toBe(1);
  });

  it('a known variance gives the intervals computed by hand', () => {
    // μ = 2, s² = 4/3, n = 4, R = 2 hours left: sd = √(4/3 · (2 + 4/4)) = 2.
    const forecast = forecastWindow(hourly([1, 3, 1, 3], 5, 11, 22));
    expect(forecast.standardDeviation).toBeCloseTo(2, 12);
    expect(fixed(forecast.projectedAmount)).toBe('9.0000000000');
    expect(fixed(forecast.lower80)).toBe(new Decimal(9).sub(2 * Z80).toFixed(10)); // 6.4368968689
    expect(fixed(forecast.upper80)).toBe('11.5631031311');
    expect(fixed(forecast.lower95)).toBe('5.0800720309');
    expect(fixed(forecast.upper95)).toBe('12.9199279691');
    // The limit is one sd above the projection: 1 − Φ(1) = 0.158655…
    expect(forecast.probabilityOverLimit).toBe(0.1587);
    // 6 left to spend at 2 an hour: 3 hours, after the end (2 hours left).
    expect(forecast.projectedExhaustionAt).toBeNull();
  });

  it('the lower bound never falls below what is already spent', () => {
    // μ = 5, s² = 50, n = 2, R = 1: sd = √75 ≈ 8.66; 13 − 1.96 · 8.66 < 8.
    const forecast = forecastWindow(hourly([0, 10], 8, 100, 23));
    expect(fixed(forecast.projectedAmount)).toBe('13.0000000000');
    expect(fixed(forecast.lower95)).toBe('8.0000000000');
    expect(fixed(forecast.lower80)).toBe('8.0000000000');
    expect(fixed(forecast.upper95)).toBe(new Decimal(13).add(Z95 * Math.sqrt(75)).toFixed(10));
  });

  it('linear growth: the mean rate of the history (the method models no trend)', () => {
    // μ = 2.5, s² = 5/3, R = 4: projected = 7 + 10; sd = √(5/3 · (4 + 16/4)) = √(40/3).
    const forecast = forecastWindow(hourly([1, 2, 3, 4], 7, 100, 20));
    expect(fixed(forecast.projectedAmount)).toBe('17.0000000000');
    expect(forecast.standardDeviation).toBeCloseTo(Math.sqrt(40 / 3), 12);
  });

  it('a spike widens the interval through the variance', () => {
    const quiet = forecastWindow(hourly([1, 1, 1, 1, 1, 1, 1, 1], 4, 100, 12));
    const spiky = forecastWindow(hourly([1, 1, 1, 1, 1, 1, 1, 9], 4, 100, 12));
    // μ = 2, s² = 8, n = 8, R = 12: sd = √(8 · (12 + 18)) = √240.
    expect(fixed(spiky.projectedAmount)).toBe('28.0000000000');
    expect(spiky.standardDeviation).toBeCloseTo(Math.sqrt(240), 12);
    expect(quiet.upper95.sub(quiet.lower95).toNumber()).toBe(0);
    expect(spiky.upper95.gt(spiky.projectedAmount.add(30))).toBe(true);
  });

  it('weekly seasonality over whole weeks: the weekly mean, the weekday swing in the interval', () => {
    const week = [10, 10, 10, 10, 10, 2, 2];
    const buckets = [...week, ...week, ...week, ...week];
    const forecast = forecastWindow({
      buckets,
      bucketSeconds: DAY_SECONDS,
      current: new Decimal(54),
      limit: new Decimal(300),
      now: new Date('2026-03-08T00:00:00Z'),
      periodStart: new Date('2026-03-01T00:00:00Z'),
      periodEnd: new Date('2026-03-29T00:00:00Z'),
    });
    // μ = 54/7, 21 days left: 54 + 162 = 216.
    expect(fixed(forecast.projectedAmount)).toBe('216.0000000000');
    const mu = 54 / 7;
    const variance = buckets.reduce((sum, x) => sum + (x - mu) ** 2, 0) / 27;
    expect(forecast.standardDeviation).toBeCloseTo(Math.sqrt(variance * (21 + 441 / 28)), 10);
  });

  it('a quiet start (under two buckets of history) falls back to the burn rate, with no interval', () => {
    // 6 spent in the first 3 hours: 2 an hour for the 21 hours left.
    const forecast = forecastWindow(hourly([5], 6, 100, 3));
    expect(forecast.method).toBe('burn-rate');
    expect(fixed(forecast.projectedAmount)).toBe('48.0000000000');
    expect(fixed(forecast.lower95)).toBe('48.0000000000');
    expect(fixed(forecast.upper95)).toBe('48.0000000000');
    // Elapsed counts as at least an hour: 1 spent in the first minute is 1 an hour.
    const early = forecastWindow(hourly([], 1, 100, 1 / 60));
    expect(early.projectedAmount.toNumber()).toBeCloseTo(1 + (24 - 1 / 60), 9);
  });

  it('an exceeded window: probability 1 and exhausted now; an ended one: the total, no interval', () => {
    const over = forecastWindow(hourly([1, 3, 1, 3], 120, 100, 10));
    expect(over.probabilityOverLimit).toBe(1);
    expect(over.projectedExhaustionAt).toEqual(at(10));
    const ended = forecastWindow(hourly([1, 3, 1, 3], 50, 100, 30));
    expect(fixed(ended.projectedAmount)).toBe('50.0000000000');
    expect(fixed(ended.upper95)).toBe('50.0000000000');
  });

  it('over 200 simulated windows the 80 % interval covers the true total 70–90 % of the time, the 95 % one 88–99 %', () => {
    const draw = normalDraws(20261129);
    let covered80 = 0;
    let covered95 = 0;
    const windows = 200;
    for (let w = 0; w < windows; w += 1) {
      // A budget spending about 10 an hour (sd 3): a week of history, then a day-long window
      // observed after a random number of hours; the truth is what the rest of the day brings.
      const history = Array.from({ length: 168 }, () => Math.max(0, draw(10, 3)));
      const elapsed = 1 + Math.floor((w * 7) % 23);
      const spent = Array.from({ length: elapsed }, () => Math.max(0, draw(10, 3))).reduce((a, b) => a + b, 0);
      const future = Array.from({ length: 24 - elapsed }, () => Math.max(0, draw(10, 3))).reduce((a, b) => a + b, 0);
      const truth = spent + future;
      const forecast = forecastWindow(hourly(history, spent.toFixed(10), 1000, elapsed));
      if (forecast.lower80.lte(truth) && forecast.upper80.gte(truth)) covered80 += 1;
      if (forecast.lower95.lte(truth) && forecast.upper95.gte(truth)) covered95 += 1;
    }
    expect(covered80 / windows).toBeGreaterThanOrEqual(0.7);
    expect(covered80 / windows).toBeLessThanOrEqual(0.9);
    expect(covered95 / windows).toBeGreaterThanOrEqual(0.88);
    expect(covered95 / windows).toBeLessThanOrEqual(0.99);
  });
});

describe('normalCdf', () => {
  it('matches the standard normal table', () => {
    expect(normalCdf(0)).toBeCloseTo(0.5, 7);
    expect(normalCdf(1)).toBeCloseTo(0.8413447, 6);
    expect(normalCdf(Z80)).toBeCloseTo(0.9, 6);
    expect(normalCdf(Z95)).toBeCloseTo(0.975, 6);
  });
});

describe('forecastPlan and historyRange', () => {
  it('hours for windows up to a week (a daylight-saving week included), days beyond', () => {
    expect(forecastPlan(start, at(24))).toEqual({ bucketSeconds: HOUR_SECONDS, lookbackBuckets: 168 });
    expect(forecastPlan(start, at(169))).toEqual({ bucketSeconds: HOUR_SECONDS, lookbackBuckets: 168 });
    expect(forecastPlan(start, new Date('2026-04-01T00:00:00Z'))).toEqual({ bucketSeconds: DAY_SECONDS, lookbackBuckets: 28 });
  });

  it('complete buckets only, back to the lookback or the first whole bucket after the budget started', () => {
    const plan = { bucketSeconds: HOUR_SECONDS, lookbackBuckets: 168 };
    expect(historyRange(plan, new Date('2026-03-10T12:34:00Z'), new Date('2025-01-01T00:00:00Z'))).toEqual({
      from: new Date('2026-03-03T12:00:00Z'),
      to: new Date('2026-03-10T12:00:00Z'),
      buckets: 168,
    });
    expect(historyRange(plan, new Date('2026-03-10T12:34:00Z'), new Date('2026-03-10T09:30:00Z'))).toEqual({
      from: new Date('2026-03-10T10:00:00Z'),
      to: new Date('2026-03-10T12:00:00Z'),
      buckets: 2,
    });
    // Started within the current bucket: no history at all.
    expect(historyRange(plan, new Date('2026-03-10T12:34:00Z'), new Date('2026-03-10T12:10:00Z')).buckets).toBe(0);
  });
});
