import { EventEmitter2 } from '@nestjs/event-emitter';
import { Client } from 'pg';
import { expectCacheMatchesLedger } from './setup/ledger-checks';
import { createTestApp, type TestApp, type TestResponse } from './setup/test-app';

/**
 * Issue 11, the items PostgreSQL holds (SPEC §2, §3, §4, §12.1), numbered as in the issue: driven
 * through HTTP and asserted below the API, where each rule lives.
 */

const API = '/api/v1';
const BUDGETS = `${API}/budgets`;
const ALERT_EVENT = 'budget.alert.triggered';

interface Budget {
  id: string;
  parentId: string | null;
  currency: string;
}

function expectProblem(res: TestResponse, status: number, code: string) {
  expect({ status: res.status, code: res.body?.code }).toEqual({ status, code });
  expect(String(res.headers['content-type'])).toMatch(/^application\/problem\+json/);
  expect(res.body).toEqual(
    expect.objectContaining({ type: expect.any(String), title: expect.any(String), status, detail: expect.any(String) }),
  );
}

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

describe('Issue 11: the rules PostgreSQL holds', () => {
  let t: TestApp;
  let seq = 0;

  const createBudget = async (patch: Record<string, unknown> = {}): Promise<Budget> => {
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
    return res.body;
  };

  const usage = (budgetId: string, body: Record<string, unknown>) =>
    t.request('POST', `${BUDGETS}/${budgetId}/usage`, { currency: 'USD', ...body });

  const record = async (budgetId: string, body: Record<string, unknown>) => {
    const res = await usage(budgetId, body);
    expect([res.status, res.body?.code]).toEqual([201, undefined]);
    return res.body;
  };

  const put = (id: string, patch: Record<string, unknown>) => t.request('PUT', `${BUDGETS}/${id}`, patch);

  const status = async (budgetId: string) => {
    const res = await t.request('GET', `${BUDGETS}/${budgetId}/status`);
    expect(res.status).toBe(200);
    return res.body;
  };

  const reserve = async (budgetId: string, estimatedCost: number) => {
    const res = await t.request('POST', `${BUDGETS}/${budgetId}/check-constraints`, { estimatedCost, reserve: true });
    expect(res.status).toBe(200);
    expect(res.body.reservationId).toEqual(expect.any(String));
    return res.body.reservationId as string;
  };

  const reservationState = async (reservationId: string) =>
    (
      await t.sql(
        `SELECT r.state, (SELECT count(*)::int FROM budget_reservation_holds h WHERE h.reservation_id = r.id) AS holds
         FROM budget_reservations r WHERE r.id = $1`,
        [reservationId],
      )
    )[0];

  const usageRows = async (budgetId: string) =>
    Number((await t.sql(`SELECT count(*)::int AS n FROM budget_usage_records WHERE budget_id = $1`, [budgetId]))[0].n);

  /** Alert history rows of a budget as [alertId, periodStart ISO]. */
  const alertRows = async (budgetId: string) =>
    (
      await t.sql(
        `SELECT alert_id, period_start FROM budget_alert_history WHERE budget_id = $1 ORDER BY period_start, alert_id`,
        [budgetId],
      )
    ).map((row) => [row.alert_id, new Date(row.period_start).toISOString()]);

  /** A connection of its own, to hold a transaction open while the service works. */
  const connect = async () => {
    const client = new Client({ connectionString: t.databaseUrl });
    await client.connect();
    return client;
  };

  /** Gives `pending` up to `ms` to either finish or be seen waiting on a lock in the service's pool. */
  const settleOrBlock = async (pending: Promise<unknown>, ms = 4000) => {
    let done = false;
    void pending.finally(() => (done = true));
    const deadline = Date.now() + ms;
    while (!done && Date.now() < deadline) {
      const [{ n }] = await t.sql(
        `SELECT count(*)::int AS n FROM pg_stat_activity
         WHERE datname = current_database() AND application_name = 'relaycore-budget' AND wait_event_type = 'Lock'`,
      );
      if (n > 0) return;
      await sleep(25);
    }
  };

  beforeAll(async () => {
    t = await createTestApp();
  });

  afterEach(() => {
    jest.restoreAllMocks();
  });

  afterAll(async () => {
    await t?.close();
  });

  describe('10. a cycle is reported before any amount rule', () => {
    it('making a parent the child of its smaller child answers 409 HIERARCHY_CYCLE', async () => {
      const parent = await createBudget({ amount: 100 });
      const child = await createBudget({ amount: 50, parentId: parent.id });
      expectProblem(await put(parent.id, { parentId: child.id }), 409, 'HIERARCHY_CYCLE');
      expectProblem(await put(parent.id, { parentId: parent.id, amount: 200 }), 409, 'HIERARCHY_CYCLE');
      const [stored] = await t.sql(`SELECT parent_id FROM budget_definitions WHERE id = $1`, [parent.id]);
      expect(stored.parent_id).toBeNull();
    });
  });
});
