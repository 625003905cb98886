import { expectCacheMatchesLedger } from './setup/ledger-checks';
import { createTestApp, type TestApp } from './setup/test-app';

/** POST /budgets/:id/usage/batch: one transaction, one multi-row insert, one answer per record. */
describe('usage batch ingestion', () => {
  let t: TestApp;
  const API = '/api/v1';

  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(() => t.close());

  const createBudget = async (body: Record<string, unknown> = {}) =>
    (
      await t.request('POST', `${API}/budgets`, {
        name: 'Batch budget', scopeType: 'team', scopeId: `team-${Math.random().toString(36).slice(2)}`, amount: 10,
        currency: 'USD', period: 'monthly', startDate: new Date(Date.now() - 86_400_000).toISOString(), ...body,
      })
    ).body as { id: string };
  it('answers each record on its own line: recorded, replayed, key reused, currency, period', async () => {
    const budget = await createBudget();
    const held = await t.request('POST', `${API}/budgets/${budget.id}/check-constraints`, { estimatedCost: 2, reserve: true });
    expect(held.body.reservationId).toEqual(expect.any(String));
    expect((await t.request('POST', `${API}/budgets/${budget.id}/usage`, { amount: 1, currency: 'USD', requestId: 'pre' })).status).toBe(201);

    const records = [
      { amount: 1.5, currency: 'USD', idempotencyKey: 'a', reservationId: held.body.reservationId },
      { amount: 2, currency: 'USD', idempotencyKey: 'a' },
      { amount: 1.5, currency: 'USD', idempotencyKey: 'a', reservationId: held.body.reservationId },
      { amount: 2, currency: 'EUR' },
      { amount: 1, currency: 'USD', requestId: 'pre' },
      { amount: 9, currency: 'USD', requestId: 'pre' },
      { amount: 1, currency: 'USD', occurredAt: '2020-01-01T00:00:00Z' },
      { amount: '0.0000000001', currency: 'USD' },
    ];
    const res = await t.request('POST', `${API}/budgets/${budget.id}/usage/batch`, { records });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ recorded: 2, replayed: 2, failed: 4 });
    expect(res.body.results.map((r: { status: number; error?: { code: string } }) => [r.status, r.error?.code])).toEqual([
      [201, undefined], [409, 'IDEMPOTENCY_KEY_REUSED'], [200, undefined], [422, 'CURRENCY_MISMATCH'],
      [200, undefined], [409, 'IDEMPOTENCY_KEY_REUSED'], [422, 'OUTSIDE_BUDGET_PERIOD'], [201, undefined],
    ]);
    expect(res.body.results[2].record.id).toBe(res.body.results[0].record.id);

    const status = (await t.request('GET', `${API}/budgets/${budget.id}/status`)).body;
    expect(status).toMatchObject({ currentAmount: 2.5000000001, usageCount: 3, reservedAmount: 0 });
    await expectCacheMatchesLedger(t, [budget.id]);

    const again = await t.request('POST', `${API}/budgets/${budget.id}/usage/batch`, { records: [records[0]] });
    expect(again.body.results[0]).toMatchObject({ status: 200, replayed: true });
    expect((await t.request('GET', `${API}/budgets/${budget.id}/status`)).body.currentAmount).toBe(2.5000000001);
  });

  it('rolls 1000 records up the hierarchy in one transaction and fires the alerts they cross, once', async () => {
    const org = await createBudget({ scopeType: 'organization', amount: 1000, alerts: [{ id: 'org-80', threshold: 80, actions: ['notify'] }] });
    const team = await createBudget({ amount: 1000, parentId: org.id });
    const records = Array.from({ length: 1000 }, (_, i) => ({ amount: '0.85', currency: 'USD', idempotencyKey: `k-${i}` }));
    const res = await t.request('POST', `${API}/budgets/${team.id}/usage/batch`, { records });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ recorded: 1000, replayed: 0, failed: 0 });
    expect((await t.request('GET', `${API}/budgets/${org.id}/status`)).body).toMatchObject({ currentAmount: 850, usageCount: 1000 });
    const alerts = await t.sql('SELECT alert_id FROM budget_alert_history WHERE budget_id = $1', [org.id]);
    expect(alerts).toEqual([{ alert_id: 'org-80' }]);
    await expectCacheMatchesLedger(t, [team.id, org.id]);
  });

  it('refuses a malformed batch whole (400 naming the record field), over 1000 records, and an unknown budget', async () => {
    const budget = await createBudget();
    const bad = await t.request('POST', `${API}/budgets/${budget.id}/usage/batch`, {
      records: [{ amount: 1, currency: 'USD' }, { amount: -1, currency: 'USD' }],
    });
    expect(bad.status).toBe(400);
    expect(bad.body.errors).toEqual([{ field: 'records.1.amount', message: expect.any(String) }]);
    const tooMany = Array.from({ length: 1001 }, () => ({ amount: 1, currency: 'USD' }));
    expect((await t.request('POST', `${API}/budgets/${budget.id}/usage/batch`, { records: tooMany })).status).toBe(400);
    expect((await t.request('POST', `${API}/budgets/${budget.id}/usage/batch`, { records: [] })).status).toBe(400);
    expect(await t.sql('SELECT count(*)::int AS n FROM budget_usage_records WHERE budget_id = $1', [budget.id])).toEqual([{ n: 0 }]);
    const unknown = await t.request('POST', `${API}/budgets/00000000-0000-4000-8000-000000000000/usage/batch`, {
      records: [{ amount: 1, currency: 'USD' }],
    });
    expect(unknown.status).toBe(404);
    expect(unknown.headers['content-type']).toMatch(/application\/problem\+json/);
  });
});
