import { randomUUID } from 'node:crypto';
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

/** One usage for `recordUsages`: USD, at `occurredAt`. */
export interface DatedUsage {
  amount: number | string;
  occurredAt: Date;
  modelId?: string;
  description?: string;
  metadata?: Record<string, unknown>;
}

/** Records many dated USD usages through the batch endpoint, 1000 a request; asserts each is a 201. */
export async function recordUsages(t: TestApp, budgetId: string, usages: DatedUsage[]) {
  for (let i = 0; i < usages.length; i += 1000) {
    const records = usages.slice(i, i + 1000).map((usage) => ({
      ...usage,
      currency: 'USD',
      occurredAt: usage.occurredAt.toISOString(),
      requestId: `req-${randomUUID()}`,
    }));
    const res = await t.request('POST', `/api/v1/budgets/${budgetId}/usage/batch`, { records });
    expect(res.status).toBe(200);
    expect(res.body.results.filter((result: { status: number }) => result.status !== 201)).toEqual([]);
  }
}
