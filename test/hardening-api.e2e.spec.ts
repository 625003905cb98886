import { mapPostgresError } from '../src/common/errors/postgres-errors';
import { createTestApp, type TestApp, type TestResponse } from './setup/test-app';

/**
 * Issue 11, the answers found by probing the service from outside (SPEC §3, §6, §10, §12.1):
 * wrong decisions after a budget changed, instants with large offsets, odd bodies that made 500s,
 * weak ETags, lone surrogates, and the OpenAPI document's servers.
 */

const API = '/api/v1';
const BUDGETS = `${API}/budgets`;

function expectProblem(res: TestResponse, status: number) {
  expect(res.status).toBe(status);
  expect(String(res.headers['content-type'])).toMatch(/^application\/problem\+json/);
  expect(res.body).toEqual(expect.objectContaining({ type: expect.any(String), title: expect.any(String), status, detail: expect.any(String) }));
}

const fieldsOf = (res: TestResponse): string[] => (res.body?.errors ?? []).map((e: { field: string }) => e.field);

const cursorOf = (key: unknown[]) => Buffer.from(JSON.stringify(key)).toString('base64url');

describe('hardening: wrong answers and 500s found by probing (issue 11)', () => {
  let t: TestApp;
  let seq = 0;

  const createBudget = async (patch: Record<string, unknown> = {}) => {
    seq += 1;
    const res = await t.request('POST', BUDGETS, {
      name: `Hardening budget ${seq}`,
      scopeType: 'team',
      scopeId: `hard-team-${seq}`,
      amount: 100,
      currency: 'USD',
      period: 'monthly',
      startDate: '2025-01-01T00:00:00Z',
      ...patch,
    });
    expect(res.status).toBe(201);
    return res.body as { id: string; version: number; startDate: string; endDate: string | null };
  };

  const record = async (budgetId: string, amount: number | string, extra: Record<string, unknown> = {}) => {
    const res = await t.request('POST', `${BUDGETS}/${budgetId}/usage`, { amount, currency: 'USD', ...extra });
    expect(res.status).toBe(201);
    return res.body;
  };

  const check = async (budgetId: string, body: Record<string, unknown>) => {
    const res = await t.request('POST', `${BUDGETS}/${budgetId}/check-constraints`, body);
    expect(res.status).toBe(200);
    return res.body;
  };

  beforeAll(async () => {
    t = await createTestApp();
  });

  afterAll(async () => {
    await t.close();
  });

  describe('8. one exact percentage for the status label and the alerts', () => {
    it('limit 3, usage 2.6999: percentUsed shows 90 but the label is warning, and the 90 % alert does not apply', async () => {
      const budget = await createBudget({ amount: 3, alerts: [{ id: 'ninety', threshold: 90, actions: ['require-approval'] }] });
      await record(budget.id, '2.6999');
      const status = (await t.request('GET', `${BUDGETS}/${budget.id}/status`)).body;
      expect(status.percentUsed).toBe(90);
      expect(status.status).toBe('warning');
      expect(status.activeAlerts).toEqual([]);
      const res = await check(budget.id, { estimatedCost: 0 });
      expect(res).toEqual(expect.objectContaining({ canProceed: true, status: 'warning', percentUsedAfter: 90 }));
      // One more 0.0001 reaches 90 % exactly: critical, and the alert applies.
      await record(budget.id, '0.0001');
      const reached = (await t.request('GET', `${BUDGETS}/${budget.id}/status`)).body;
      expect(reached.status).toBe('critical');
      expect(reached.activeAlerts).toEqual([expect.objectContaining({ alertId: 'ninety' })]);
      expect(await check(budget.id, { estimatedCost: 0 })).toEqual(expect.objectContaining({ canProceed: false, requiresApproval: true }));
    });
  });
});
