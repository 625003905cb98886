import type { Pool } from 'pg';
import { createTestApp, type TestApp } from './setup/test-app';
import { routedThroughPooler } from './setup/test-database';

/**
 * The hot path's statements run as named prepared statements when the pool talks to PostgreSQL
 * sessions, and unnamed behind a transaction pooler (src/database/prepared-statements.ts); the
 * answers, errors included, are the same either way.
 */

/** The statement names each pooled connection has prepared (the driver keeps them per connection). */
function preparedNames(t: TestApp): string[] {
  const pool = (t.dataSource.driver as unknown as { master: Pool & { _clients: { connection: { parsedStatements: Record<string, string> } }[] } }).master;
  return [...new Set(pool._clients.flatMap((client) => Object.keys(client.connection.parsedStatements)))].sort();
}

async function exercise(t: TestApp) {
  const projectId = `prepared-${Math.random()}`;
  const budget = await t.request('POST', '/api/v1/budgets', {
    name: 'Prepared', scopeType: 'project', scopeId: projectId, amount: 100, currency: 'USD',
    period: 'monthly', startDate: '2025-01-01T00:00:00Z',
  });
  expect(budget.status).toBe(201);
  const id = budget.body.id;
  const answers = [];
  for (let i = 0; i < 3; i++) {
    const check = await t.request('POST', `/api/v1/budgets/${id}/check-constraints`, { estimatedCost: 10 });
    const usage = await t.request('POST', `/api/v1/budgets/${id}/usage`, { amount: 10, currency: 'USD' }, { 'idempotency-key': `k${i}` });
    answers.push({ check: [check.status, check.body.canProceed, check.body.currentAmount], usage: [usage.status, usage.body.amount] });
  }
  const replay = await t.request('POST', `/api/v1/budgets/${id}/usage`, { amount: 10, currency: 'USD' }, { 'idempotency-key': 'k0' });
  const refused = await t.request('POST', `/api/v1/budgets/${id}/usage`, { amount: 10, currency: 'EUR' });
  // A check by scope reads budget_check_context_of_scopes; one by id, budget_check_context_of.
  const byScope = await t.request('POST', '/api/v1/integration/check-constraints', { projectId, estimatedCost: 10, currency: 'USD' });
  return {
    answers,
    replay: [replay.status, replay.headers['idempotent-replayed']],
    refused: [refused.status, refused.body.code, refused.headers['content-type']],
    byScope: [byScope.status, byScope.body.canProceed, byScope.body.results?.[0]?.currentAmount],
  };
}

const expected = {
  answers: [
    { check: [200, true, 0], usage: [201, 10] },
    { check: [200, true, 10], usage: [201, 10] },
    { check: [200, true, 20], usage: [201, 10] },
  ],
  replay: [200, 'true'],
  refused: [422, 'CURRENCY_MISMATCH', 'application/problem+json; charset=utf-8'],
  byScope: [200, true, 30],
};

describe('Prepared statements on the hot path', () => {
  it('PostgreSQL sessions (DATABASE_POOL_MODE=session): checks and writes run prepared, answers unchanged', async () => {
    if (routedThroughPooler()) return; // the suite's pooled run covers the other mode below
    const t = await createTestApp({ config: { databasePoolMode: 'session' } });
    try {
      expect(await exercise(t)).toEqual(expected);
      expect(preparedNames(t)).toEqual(expect.arrayContaining(['check_context_of', 'check_context_of_scopes', 'record_usage']));
    } finally {
      await t.close();
    }
  });

  it('a transaction pooler (DATABASE_POOL_MODE=transaction): the same statements run unnamed, answers unchanged', async () => {
    const t = await createTestApp({ config: { databasePoolMode: 'transaction' } });
    try {
      expect(await exercise(t)).toEqual(expected);
      expect(preparedNames(t)).toEqual([]);
    } finally {
      await t.close();
    }
  });
});
