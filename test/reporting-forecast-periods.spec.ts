import { Clock } from '../src/common/clock';
import { budgetMaker, recordUsages } from './setup/budgets';
import { expectProblem } from './setup/problem';
import { createTestApp, type TestApp } from './setup/test-app';

const HOUR = 3_600_000;
const NOW = new Date('2026-03-10T12:30:00Z');

describe('Reports: forecast and past periods', () => {
  let t: TestApp;
  const createBudget = budgetMaker(() => t, 'Reports');

  beforeAll(async () => {
    t = await createTestApp();
    jest.spyOn(t.app.get(Clock), 'now').mockImplementation(() => new Date(NOW));
  });
  afterAll(() => t.close());

  describe('GET /budgets/:id/forecast', () => {
    it('a constant hourly rate: the exact projection, a zero-width interval, the exhaustion instant', async () => {
      // 2 an hour at hh:30 from 2026-03-03T12:30 to 11:30 today, and 2 at 12:10: 26 spent today,
      // 168 complete hours of history at 2 each; 11.5 hours left at 2 an hour → 49.
      const budget = await createBudget({ period: 'daily', amount: 100, startDate: '2026-03-01T00:00:00Z' });
      const usages = Array.from({ length: 168 }, (_, h) => ({ amount: 2, occurredAt: new Date(Date.parse('2026-03-03T12:30:00Z') + h * HOUR) }));
      usages.push({ amount: 2, occurredAt: new Date('2026-03-10T12:10:00Z') });
      await recordUsages(t, budget.id, usages);

      const res = await t.request('GET', `/api/v1/budgets/${budget.id}/forecast`, undefined, { 'x-api-key': t.keys.viewer });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({
        budgetId: budget.id,
        periodStart: '2026-03-10T00:00:00.000Z',
        periodEnd: '2026-03-11T00:00:00.000Z',
        currency: 'USD',
        limit: 100,
        currentAmount: 26,
        projectedAmount: 49,
        lower80: 49,
        upper80: 49,
        lower95: 49,
        upper95: 49,
        probabilityOverLimit: 0,
        projectedExhaustionAt: null,
        method: 'bucket-mean-normal',
        basedOn: { from: '2026-03-03T12:00:00.000Z', to: '2026-03-10T12:00:00.000Z', buckets: 168, bucket: 'hour', ratePerBucket: 2 },
      });

      // With a limit of 40: 14 left at 2 an hour is 7 hours from now.
      await t.request('PUT', `/api/v1/budgets/${budget.id}`, { amount: 40 });
      const tight = await t.request('GET', `/api/v1/budgets/${budget.id}/forecast`);
      expect(tight.body).toEqual(
        expect.objectContaining({ projectedAmount: 49, probabilityOverLimit: 1, projectedExhaustionAt: '2026-03-10T19:30:00.000Z' }),
      );
    });

    it('a known variance: the intervals as computed by hand', async () => {
      // Days alternate 1 and 3 (daily buckets of a monthly budget started 2026-03-02, window to
      // 2026-04-02, limit 70): 8 complete days, μ = 2, s² = 8/7; spent this window 16; R = 22 days and
      // 11.5 hours left → projected 16 + 2R, sd = √(8/7 · (R + R²/8)).
      const budget = await createBudget({ period: 'monthly', amount: 70, startDate: '2026-03-02T00:00:00Z' });
      const usages = Array.from({ length: 8 }, (_, d) => ({ amount: d % 2 ? 3 : 1, occurredAt: new Date(Date.parse('2026-03-02T06:00:00Z') + d * 24 * HOUR) }));
      await recordUsages(t, budget.id, usages);
      const res = await t.request('GET', `/api/v1/budgets/${budget.id}/forecast`);
      expect(res.status).toBe(200);
      const R = 22 + 11.5 / 24;
      const projected = 16 + 2 * R;
      const sd = Math.sqrt((8 / 7) * (R + (R * R) / 8));
      expect(res.body.currentAmount).toBe(16);
      expect(res.body.projectedAmount).toBeCloseTo(projected, 9);
      expect(res.body.upper80).toBeCloseTo(projected + 1.2815515655446004 * sd, 8);
      expect(res.body.lower95).toBeCloseTo(projected - 1.959963984540054 * sd, 8);
      expect(res.body.basedOn).toEqual({ from: '2026-03-02T00:00:00.000Z', to: '2026-03-10T00:00:00.000Z', buckets: 8, bucket: 'day', ratePerBucket: 2 });
      // The limit is (70 − 60.9583) / 9.8933 = 0.9139 sd above the projection: 1 − Φ(0.9139) = 0.1804.
      expect(res.body.probabilityOverLimit).toBeCloseTo(0.1804, 3);
    });

    it('a budget that has not started: nothing spent, nothing projected', async () => {
      const budget = await createBudget({ startDate: '2026-04-01T00:00:00Z' });
      const res = await t.request('GET', `/api/v1/budgets/${budget.id}/forecast`);
      expect(res.status).toBe(200);
      expect(res.body).toEqual(expect.objectContaining({ periodStart: '2026-04-01T00:00:00.000Z', currentAmount: 0, projectedAmount: 0, method: 'burn-rate' }));
    });

    it('counts the usage of descendants, like the status', async () => {
      const parent = await createBudget({ period: 'daily', amount: 100, startDate: '2026-03-10T00:00:00Z' });
      const child = await createBudget({ period: 'daily', amount: 50, startDate: '2026-03-10T00:00:00Z', parentId: parent.id });
      await recordUsages(t, child.id, [{ amount: 5, occurredAt: new Date('2026-03-10T01:00:00Z') }]);
      const res = await t.request('GET', `/api/v1/budgets/${parent.id}/forecast`);
      expect(res.body.currentAmount).toBe(5);
    });

    it('404 for an unknown or deleted budget, 400 for a malformed id, 401 without a key', async () => {
      expectProblem(await t.request('GET', '/api/v1/budgets/00000000-0000-4000-8000-000000000000/forecast'), 404);
      expectProblem(await t.request('GET', '/api/v1/budgets/not-a-uuid/forecast'), 400);
      expectProblem(await t.request('GET', '/api/v1/budgets/00000000-0000-4000-8000-000000000000/forecast', undefined, { 'x-api-key': 'nope' }), 401);
      const gone = await createBudget();
      await t.request('DELETE', `/api/v1/budgets/${gone.id}`);
      expectProblem(await t.request('GET', `/api/v1/budgets/${gone.id}/forecast`), 404);
    });
  });

  describe('GET /budgets/:id/periods', () => {
    it('windows newest first with spent, percent, usage count and alerts fired', async () => {
      const budget = await createBudget({
        period: 'monthly',
        amount: 100,
        startDate: '2026-01-01T00:00:00Z',
        alerts: [
          { threshold: 50, actions: ['notify'] },
          { threshold: 100, actions: ['notify'] },
        ],
      });
      await recordUsages(t, budget.id, [
        { amount: 30, occurredAt: new Date('2026-01-10T00:00:00Z') },
        { amount: 50, occurredAt: new Date('2026-02-05T00:00:00Z') },
        { amount: 60, occurredAt: new Date('2026-02-06T00:00:00Z') },
        { amount: '10.5', occurredAt: new Date('2026-03-02T00:00:00Z') },
      ]);
      const res = await t.request('GET', `/api/v1/budgets/${budget.id}/periods`, undefined, { 'x-api-key': t.keys.viewer });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({
        budgetId: budget.id,
        currency: 'USD',
        data: [
          { periodStart: '2026-03-01T00:00:00.000Z', periodEnd: '2026-04-01T00:00:00.000Z', current: true, limit: 100, spent: 10.5, percentUsed: 10.5, usageCount: 1, alertsTriggered: 0 },
          { periodStart: '2026-02-01T00:00:00.000Z', periodEnd: '2026-03-01T00:00:00.000Z', current: false, limit: 100, spent: 110, percentUsed: 110, usageCount: 2, alertsTriggered: 2 },
          { periodStart: '2026-01-01T00:00:00.000Z', periodEnd: '2026-02-01T00:00:00.000Z', current: false, limit: 100, spent: 30, percentUsed: 30, usageCount: 1, alertsTriggered: 0 },
        ],
      });
      const two = await t.request('GET', `/api/v1/budgets/${budget.id}/periods?count=2`);
      expect(two.body.data.map((p: { periodStart: string }) => p.periodStart)).toEqual(['2026-03-01T00:00:00.000Z', '2026-02-01T00:00:00.000Z']);
    });

    it('defaults to 12 windows and follows the period arithmetic (month ends, local time)', async () => {
      const budget = await createBudget({ period: 'weekly', startDate: '2025-06-02T00:00:00-04:00', timezone: 'America/New_York' });
      const res = await t.request('GET', `/api/v1/budgets/${budget.id}/periods`);
      expect(res.body.data).toHaveLength(12);
      // Week windows at local midnight: 2026-03-09 is after the switch to daylight time (UTC−4).
      expect(res.body.data[0]).toEqual(expect.objectContaining({ periodStart: '2026-03-09T04:00:00.000Z', periodEnd: '2026-03-16T04:00:00.000Z' }));
      expect(res.body.data[1]).toEqual(expect.objectContaining({ periodStart: '2026-03-02T05:00:00.000Z', periodEnd: '2026-03-09T04:00:00.000Z' }));
    });

    it('count outside 1–36 is a 400 naming count', async () => {
      const budget = await createBudget();
      for (const count of ['0', '37', 'x', '1.5']) {
        const res = await t.request('GET', `/api/v1/budgets/${budget.id}/periods?count=${count}`);
        expectProblem(res, 400);
        expect([...new Set(res.body.errors.map((e: { field: string }) => e.field))]).toEqual(['count']);
      }
      expectProblem(await t.request('GET', '/api/v1/budgets/00000000-0000-4000-8000-000000000000/periods'), 404);
    });
  });
});
