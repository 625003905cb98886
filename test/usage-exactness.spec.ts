import { createTestApp, type TestApp } from './setup/test-app';

/**
 * SPEC §2 "Status" (money is exact: a million records of 0.000001 sum to exactly 1) and issue 3
 * acceptance 1. The million rows go in as one `INSERT … SELECT generate_series` below the API, so
 * the usage trigger sees them as one multi-row statement.
 */

const BUDGETS = '/api/v1/budgets';
const MILLION = 1_000_000;

describe('Exact money', () => {
  let t: TestApp;
  let seq = 0;

  const createBudget = async (patch: Record<string, unknown> = {}) => {
    seq += 1;
    const res = await t.request('POST', BUDGETS, {
      name: `Exactness budget ${seq}`,
      scopeType: 'project',
      scopeId: `exact-${seq}`,
      amount: 10,
      currency: 'USD',
      // A window around now that the test cannot straddle.
      period: 'custom',
      customPeriodDays: 30,
      startDate: new Date(Date.now() - 15 * 86_400_000).toISOString(),
      ...patch,
    });
    expect(res.status).toBe(201);
    return res.body as { id: string };
  };

  const status = async (id: string) => {
    const res = await t.request('GET', `${BUDGETS}/${id}/status`);
    expect(res.status).toBe(200);
    return res.body;
  };

  const truth = async (id: string) =>
    (await t.sql(`SELECT current_amount::text AS amount, usage_count::bigint::text AS n FROM calculate_budget_status($1, now())`, [id]))[0];
  const cache = async (id: string) =>
    (await t.sql(`SELECT current_amount::text AS amount, usage_count::text AS n FROM budget_status_cache WHERE budget_id = $1`, [id]))[0];

  beforeAll(async () => {
    t = await createTestApp();
  });

  afterAll(async () => {
    await t.close();
  });

  it(`${MILLION.toLocaleString('en')} records of 0.000001 → currentAmount exactly 1`, async () => {
    const parent = await createBudget();
    const budget = await createBudget({ parentId: parent.id });

    const started = Date.now();
    await t.sql(
      `INSERT INTO budget_usage_records (budget_id, amount, currency, source, occurred_at)
       SELECT $1::uuid, 0.000001, 'USD', 'bulk-test', now() - (g % 1000) * interval '1 second'
       FROM generate_series(1, $2::int) AS g`,
      [budget.id, MILLION],
    );
    const seconds = (Date.now() - started) / 1000;
    // eslint-disable-next-line no-console
    console.info(`bulk insert of ${MILLION} usage records (one statement, rollup trigger included): ${seconds.toFixed(1)} s`);

    const [count] = await t.sql(`SELECT count(*)::int AS n, sum(amount)::text AS total FROM budget_usage_records WHERE budget_id = $1`, [
      budget.id,
    ]);
    expect(count).toEqual({ n: MILLION, total: '1.0000000000' });

    // The cache the trigger maintained, on the budget and its parent.
    expect(await cache(budget.id)).toEqual({ amount: '1.0000000000', n: String(MILLION) });
    expect(await cache(parent.id)).toEqual({ amount: '1.0000000000', n: String(MILLION) });
    expect(await truth(budget.id)).toEqual({ amount: '1.0000000000', n: String(MILLION) });
    expect(await truth(parent.id)).toEqual({ amount: '1.0000000000', n: String(MILLION) });

    const s = await status(budget.id);
    expect(s.currentAmount).toBe(1);
    expect(s.usageCount).toBe(MILLION);
    expect(s.percentUsed).toBe(10);
    expect(s.remaining).toBe(9);
    expect((await status(parent.id)).currentAmount).toBe(1);

    const refreshed = await t.request('POST', `${BUDGETS}/${budget.id}/refresh-cache`);
    expect(refreshed.status).toBe(200);
    expect(refreshed.body.currentAmount).toBe(1);
    expect(refreshed.body.usageCount).toBe(MILLION);
    expect(await cache(budget.id)).toEqual({ amount: '1.0000000000', n: String(MILLION) });

    const summary = await t.request('GET', `${BUDGETS}/${budget.id}/usage/summary`);
    expect(summary.status).toBe(200);
    expect(summary.body.total).toBe(1);
    expect(summary.body.count).toBe(MILLION);
    expect(summary.body.bySource).toEqual([{ key: 'bulk-test', amount: 1, count: MILLION }]);
  }, 600_000);

  it('0.1 + 0.2 is exactly 0.3 (numbers and decimal strings), through HTTP, the cache and the ledger', async () => {
    const budget = await createBudget();
    for (const amount of [0.1, '0.2']) {
      expect((await t.request('POST', `${BUDGETS}/${budget.id}/usage`, { amount, currency: 'USD' })).status).toBe(201);
    }
    const s = await status(budget.id);
    expect(s.currentAmount).toBe(0.3);
    expect(s.remaining).toBe(9.7);
    expect(s.percentUsed).toBe(3);
    expect(await cache(budget.id)).toEqual({ amount: '0.3000000000', n: '2' });
    expect(await truth(budget.id)).toEqual({ amount: '0.3000000000', n: '2' });
  });

  it('ten times 0.1, and sums at the 10th decimal and near the 1e13 limit, are exact', async () => {
    const tenths = await createBudget();
    for (let i = 0; i < 10; i++) {
      expect((await t.request('POST', `${BUDGETS}/${tenths.id}/usage`, { amount: 0.1, currency: 'USD' })).status).toBe(201);
    }
    expect((await status(tenths.id)).currentAmount).toBe(1);
    expect((await status(tenths.id)).remaining).toBe(9);
    expect(await cache(tenths.id)).toEqual({ amount: '1.0000000000', n: '10' });

    const tiny = await createBudget();
    for (let i = 0; i < 3; i++) {
      expect((await t.request('POST', `${BUDGETS}/${tiny.id}/usage`, { amount: '0.0000000001', currency: 'USD' })).status).toBe(201);
    }
    expect(await cache(tiny.id)).toEqual({ amount: '0.0000000003', n: '3' });
    expect((await status(tiny.id)).currentAmount).toBe(3e-10);

    const big = await createBudget({ amount: '10000000000000' });
    for (const amount of ['9999999999999.9999999999', '0.0000000001']) {
      expect((await t.request('POST', `${BUDGETS}/${big.id}/usage`, { amount, currency: 'USD' })).status).toBe(201);
    }
    expect(await cache(big.id)).toEqual({ amount: '10000000000000.0000000000', n: '2' });
    expect(await truth(big.id)).toEqual({ amount: '10000000000000.0000000000', n: '2' });
    const s = await status(big.id);
    expect(s.currentAmount).toBe(1e13);
    expect(s.status).toBe('exceeded');
    expect(s.remaining).toBe(0);
    expect(s.overage).toBe(0);
  });
});
