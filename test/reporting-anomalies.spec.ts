import { SchedulerRegistry } from '@nestjs/schedule';
import { AnomalyDetectorService } from '../src/reporting/anomaly-detector.service';
import { budgetMaker, recordUsages } from './setup/budgets';
import { expectProblem } from './setup/problem';
import { createTestApp, type TestApp } from './setup/test-app';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** The hour scored: 2026-03-10 14:00–15:00, detected at 15:05. */
const HOUR_START = Date.parse('2026-03-10T14:00:00Z');
const DETECT_AT = new Date(HOUR_START + HOUR + 5 * 60_000);

describe('Reports: anomalies', () => {
  let t: TestApp;
  let detector: AnomalyDetectorService;
  const createBudget = budgetMaker(() => t, 'Anomaly');

  beforeAll(async () => {
    t = await createTestApp();
    detector = t.app.get(AnomalyDetectorService);
  });
  afterAll(() => t.close());

  /** 10 in the scored hour on each of the 7 days before, `observed` in it today, and noise in other hours. */
  async function history(budgetId: string, observed: number) {
    await recordUsages(t, budgetId, [
      ...[1, 2, 3, 4, 5, 6, 7].map((d) => ({ amount: 10, occurredAt: new Date(HOUR_START - d * DAY + 20 * 60_000) })),
      ...[1, 2, 3].map((d) => ({ amount: 500, occurredAt: new Date(HOUR_START - d * DAY - 3 * HOUR) })),
      { amount: observed, occurredAt: new Date(HOUR_START + 10 * 60_000) },
    ]);
  }

  it('the budget field: defaults, round trip, clearing, and 400 naming the field', async () => {
    const created = await createBudget({ anomalyDetection: { enabled: true } });
    expect(created.anomalyDetection).toEqual({ enabled: true, sensitivity: 'medium' });
    const updated = await t.request('PUT', `/api/v1/budgets/${created.id}`, { anomalyDetection: { enabled: false, sensitivity: 'high' } });
    expect(updated.body.anomalyDetection).toEqual({ enabled: false, sensitivity: 'high' });
    const cleared = await t.request('PUT', `/api/v1/budgets/${created.id}`, { anomalyDetection: null });
    expect(cleared.body.anomalyDetection).toBeNull();
    expect((await createBudget()).anomalyDetection).toBeNull();

    for (const [body, field] of [
      [{ anomalyDetection: { enabled: true, sensitivity: 'extreme' } }, 'anomalyDetection.sensitivity'],
      [{ anomalyDetection: { sensitivity: 'low' } }, 'anomalyDetection.enabled'],
      [{ anomalyDetection: { enabled: true, other: 1 } }, 'anomalyDetection.other'],
      [{ anomalyDetection: 'on' }, 'anomalyDetection'],
    ] as const) {
      const res = await t.request('PUT', `/api/v1/budgets/${created.id}`, body);
      expectProblem(res, 400);
      expect(res.body.errors.map((e: { field: string }) => e.field)).toContain(field);
    }
  });

  it('a spike is recorded once per budget and hour, with everything its event needs', async () => {
    const budget = await createBudget({ amount: 1000, anomalyDetection: { enabled: true, sensitivity: 'medium' } });
    const quiet = await createBudget({ amount: 1000, anomalyDetection: { enabled: true, sensitivity: 'medium' } });
    const off = await createBudget({ amount: 1000 });
    await history(budget.id, 100);
    await history(quiet.id, 11);
    await history(off.id, 100);

    const first = await detector.detect(DETECT_AT);
    expect(first.ran).toBe(true);
    expect(first.hourStart).toEqual(new Date(HOUR_START));
    // Baseline 10 × 7: median 10, MAD 0; scale = max(0, 1, 1000 × 0.001) = 1; (100 − 10) / 1 = 90.
    const mine = first.recorded.filter((a) => [budget.id, quiet.id, off.id].includes(a.budgetId));
    expect(mine).toEqual([
      {
        id: expect.any(String),
        budgetId: budget.id,
        hourStart: '2026-03-10T14:00:00.000Z',
        hourEnd: '2026-03-10T15:00:00.000Z',
        observed: 100,
        baselineMedian: 10,
        baselineMad: 0,
        baselineHours: 7,
        score: 90,
        sensitivity: 'medium',
        threshold: 5,
        currency: 'USD',
        detectedAt: expect.any(String),
      },
    ]);

    // Again, and from two callers at once: the hour is recorded once.
    const again = await Promise.all([detector.detect(DETECT_AT), detector.detect(new Date(DETECT_AT.getTime() + 20 * 60_000))]);
    expect(again.flatMap((outcome) => outcome.recorded)).toEqual([]);
    const rows = await t.sql(`SELECT count(*)::int AS n FROM budget_anomalies WHERE budget_id = $1`, [budget.id]);
    expect(rows).toEqual([{ n: 1 }]);
    // The spike's event (SPEC §13) was written with it, once: budget.anomaly.detected in the outbox.
    const events = await t.sql(
      `SELECT type, data->'anomaly'->>'score' AS score, data->'budget'->>'id' AS budget FROM notification_events
       WHERE budget_id = $1`,
      [budget.id],
    );
    expect(events).toEqual([{ type: 'budget.anomaly.detected', score: '90', budget: budget.id }]);

    const list = await t.request('GET', `/api/v1/budgets/${budget.id}/anomalies`, undefined, { 'x-api-key': t.keys.viewer });
    expect(list.status).toBe(200);
    expect(list.body).toEqual({ data: [mine[0]], nextCursor: null });
    expect((await t.request('GET', `/api/v1/budgets/${quiet.id}/anomalies`)).body).toEqual({ data: [], nextCursor: null });
    expect((await t.request('GET', `/api/v1/budgets/${off.id}/anomalies`)).body).toEqual({ data: [], nextCursor: null });
  });

  it('only one instance scores at a time: the detector takes a transaction-level advisory lock', async () => {
    const holder = await t.dataSource.createQueryRunner();
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT pg_advisory_xact_lock(hashtext('budget_anomalies.detector'))`);
      const outcome = await detector.detect(DETECT_AT);
      expect(outcome).toEqual({ hourStart: new Date(HOUR_START), ran: false, recorded: [] });
      await holder.query('COMMIT');
      expect((await detector.detect(DETECT_AT)).ran).toBe(true);
    } finally {
      await holder.release();
    }
  });

  it('lists newest hour first with cursor pagination; 400 for a bad cursor, 404 for an unknown budget', async () => {
    const budget = await createBudget({ amount: 1000, anomalyDetection: { enabled: true, sensitivity: 'high' } });
    await history(budget.id, 100);
    // The next two hours spike too (their baselines are empty hours: median 0, scale 1).
    await recordUsages(t, budget.id, [
      { amount: 50, occurredAt: new Date(HOUR_START + HOUR + 60_000) },
      { amount: 50, occurredAt: new Date(HOUR_START + 2 * HOUR + 60_000) },
    ]);
    for (const hours of [0, 1, 2]) await detector.detect(new Date(DETECT_AT.getTime() + hours * HOUR));
    const page1 = await t.request('GET', `/api/v1/budgets/${budget.id}/anomalies?limit=2`);
    expect(page1.body.data.map((a: { hourStart: string }) => a.hourStart)).toEqual(['2026-03-10T16:00:00.000Z', '2026-03-10T15:00:00.000Z']);
    const page2 = await t.request('GET', `/api/v1/budgets/${budget.id}/anomalies?limit=2&cursor=${page1.body.nextCursor}`);
    expect(page2.body).toEqual({ data: [expect.objectContaining({ hourStart: '2026-03-10T14:00:00.000Z' })], nextCursor: null });
    expectProblem(await t.request('GET', `/api/v1/budgets/${budget.id}/anomalies?cursor=nope`), 400);
    expectProblem(await t.request('GET', '/api/v1/budgets/00000000-0000-4000-8000-000000000000/anomalies'), 404);
  });

  it('no timer runs under test: the detector is off when ANOMALY_DETECTOR_INTERVAL_MS is 0', () => {
    expect(t.app.get(SchedulerRegistry).getIntervals()).not.toContain('anomaly-detector');
  });

  it('with an interval set, the scheduler runs the detector by itself', async () => {
    const scheduled = await createTestApp({ config: { anomalyDetectorIntervalMs: 1000 } });
    try {
      expect(scheduled.app.get(SchedulerRegistry).getIntervals()).toContain('anomaly-detector');
      const detect = jest.spyOn(scheduled.app.get(AnomalyDetectorService), 'detect');
      const deadline = Date.now() + 5000;
      while (!detect.mock.calls.length && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
      expect(detect).toHaveBeenCalled();
      expect((await detect.mock.results[0].value).ran).toBe(true);
    } finally {
      await scheduled.close();
    }
  });
});
