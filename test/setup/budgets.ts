import type { TestApp } from './test-app';

/**
 * A `createBudget(patch)` for a spec: a monthly 100 USD team budget started 2025-01-01, each with
 * its own name and scope id (`<label>-team-<n>`), with `patch` on top; asserts the 201.
 * `app` is a getter because specs create their app in beforeAll.
 */
export function budgetMaker(app: () => TestApp, label: string) {
  let seq = 0;
  return async <T = any>(patch: Record<string, unknown> = {}): Promise<T> => {
    seq += 1;
    const res = await app().request('POST', '/api/v1/budgets', {
      name: `${label} budget ${seq}`,
      scopeType: 'team',
      scopeId: `${label.toLowerCase().replace(/[^a-z0-9]+/g, '-')}-team-${seq}`,
      amount: 100,
      currency: 'USD',
      period: 'monthly',
      startDate: '2025-01-01T00:00:00Z',
      ...patch,
    });
    expect(res.status).toBe(201);
    return res.body as T;
  };
}

/** Records a USD usage on a budget through the API; asserts the 201. */
export async function recordUsage(t: TestApp, budgetId: string, amount: number | string, extra: Record<string, unknown> = {}) {
  const res = await t.request('POST', `/api/v1/budgets/${budgetId}/usage`, { amount, currency: 'USD', ...extra });
  expect(res.status).toBe(201);
  return res.body;
}

/** A constraint check on a budget through the API; asserts the 200 (a "no" is a 200 too). */
export async function checkBudget(t: TestApp, budgetId: string, body: Record<string, unknown>) {
  const res = await t.request('POST', `/api/v1/budgets/${budgetId}/check-constraints`, body);
  expect(res.status).toBe(200);
  return res.body;
}
