import { EventEmitter2 } from '@nestjs/event-emitter';
import { Client } from 'pg';
import { expectCacheMatchesLedger } from './setup/ledger-checks';
import { expectProblem } from './setup/problem';
import { budgetMaker } from './setup/budgets';
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

/** A problem+json answer with this status and stable code. */
function expectCodedProblem(res: TestResponse, status: number, code: string) {
  expectProblem(res, status);
  expect(res.body.code).toBe(code);
}

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

const makeBudget = budgetMaker(() => t, 'Hardening');
let t: TestApp;

describe('Issue 11: the rules PostgreSQL holds', () => {
  const createBudget = (patch: Record<string, unknown> = {}) => makeBudget<Budget>(patch);

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

  describe('3. currency is locked by usage and reservations (409 CURRENCY_LOCKED)', () => {
    it('changes freely until a usage exists; then 409 and the ledger keeps its label', async () => {
      const budget = await createBudget();
      expect((await put(budget.id, { currency: 'EUR' })).status).toBe(200);
      expect((await put(budget.id, { currency: 'USD' })).status).toBe(200);
      await record(budget.id, { amount: 90 });

      const relabel = await put(budget.id, { currency: 'JPY' });
      expectCodedProblem(relabel, 409, 'CURRENCY_LOCKED');
      expect(relabel.body.detail).toMatch(/usage|reserv/i);
      const [stored] = await t.sql(`SELECT currency, version FROM budget_definitions WHERE id = $1`, [budget.id]);
      expect(stored).toEqual({ currency: 'USD', version: 3 });
      expect(await status(budget.id)).toMatchObject({ currency: 'USD', currentAmount: 90 });
      // Other fields still change.
      expect((await put(budget.id, { amount: 200 })).status).toBe(200);
    });

    it('an open reservation locks it until released; usage of a deleted child locks its parent', async () => {
      const budget = await createBudget();
      const held = await reserve(budget.id, 10);
      expectCodedProblem(await put(budget.id, { currency: 'EUR' }), 409, 'CURRENCY_LOCKED');
      expect((await t.request('DELETE', `${API}/reservations/${held}`)).status).toBe(204);
      expect((await put(budget.id, { currency: 'EUR' })).status).toBe(200);

      const parent = await createBudget();
      const child = await createBudget({ parentId: parent.id, amount: 50 });
      await record(child.id, { amount: 5 });
      expect((await t.request('DELETE', `${BUDGETS}/${child.id}`)).status).toBe(204);
      // The parent has no usage of its own, but the deleted child's counts in its windows.
      expectCodedProblem(await put(parent.id, { currency: 'EUR' }), 409, 'CURRENCY_LOCKED');
      expect(await status(parent.id)).toMatchObject({ currency: 'USD', currentAmount: 5 });
    });

    it('a usage racing a currency change committed first is refused, never recorded under the new label', async () => {
      const budget = await createBudget();
      const change = await connect();
      try {
        await change.query('BEGIN');
        await change.query(`UPDATE budget_definitions SET currency = 'EUR', version = version + 1 WHERE id = $1`, [budget.id]);
        const racing = usage(budget.id, { amount: 7 });
        await settleOrBlock(racing);
        await change.query('COMMIT');
        const res = await racing;
        expectCodedProblem(res, 422, 'CURRENCY_MISMATCH');
        // Refused by the re-read under the cache row lock, not by the check before the insert.
        expect(res.body.detail).toMatch(/changed while/);
      } finally {
        await change.end();
      }
      const mislabelled = await t.sql(
        `SELECT u.id FROM budget_usage_records u JOIN budget_definitions d ON d.id = u.budget_id
         WHERE d.id = $1 AND u.currency <> d.currency`,
        [budget.id],
      );
      expect(mislabelled).toEqual([]);
      await expectCacheMatchesLedger(t, [budget.id]);
    });

    it('a currency change racing an uncommitted usage waits for it, then answers 409', async () => {
      const budget = await createBudget();
      const writer = await connect();
      try {
        await writer.query('BEGIN');
        await writer.query(`SELECT id FROM record_usage($1, 7, 'USD')`, [budget.id]);
        const change = put(budget.id, { currency: 'EUR' });
        await settleOrBlock(change);
        await writer.query('COMMIT');
        expectCodedProblem(await change, 409, 'CURRENCY_LOCKED');
      } finally {
        await writer.end();
      }
      const [stored] = await t.sql(`SELECT currency FROM budget_definitions WHERE id = $1`, [budget.id]);
      expect(stored.currency).toBe('USD');
    });
  });

  describe('4. inactive budgets take no part in a reservation, the currency rule included', () => {
    it('an ended budget in another currency neither refuses nor receives a hold', async () => {
      const ended = await createBudget({ currency: 'EUR', startDate: '2025-01-01T00:00:00Z', endDate: '2025-03-01T00:00:00Z' });
      const notYet = await createBudget({ currency: 'JPY', startDate: '2099-01-01T00:00:00Z' });
      const active = await createBudget();
      const [placed] = await t.sql(
        `SELECT granted, reservation_id FROM place_reservation($1::uuid[], '{}', '{}', 5, 'USD', 60, NULL, NULL, 'hardening-spec')`,
        [[ended.id, notYet.id, active.id]],
      );
      expect(placed.granted).toBe(true);
      const holds = await t.sql(`SELECT budget_id FROM budget_reservation_holds WHERE reservation_id = $1`, [placed.reservation_id]);
      expect(holds.map((h) => h.budget_id)).toEqual([active.id]);
      expect(await status(ended.id)).toMatchObject({ active: false, reservedAmount: 0 });

      // An active member in another currency still refuses.
      const euro = await createBudget({ currency: 'EUR' });
      await expect(
        t.sql(`SELECT granted FROM place_reservation($1::uuid[], '{}', '{}', 5, 'USD', 60, NULL, NULL, 'hardening-spec')`, [
          [euro.id, active.id],
        ]),
      ).rejects.toMatchObject({ code: 'RB422', message: 'CURRENCY_MISMATCH' });
    });
  });

  describe('5. every usage is evaluated against the window it belongs to', () => {
    /** The current window of a daily UTC budget anchored so that it ends two minutes from now. */
    const closingWindow = () => {
      const windowEnd = new Date(Math.floor(Date.now() / 1000) * 1000 + 120_000);
      return { windowStart: new Date(windowEnd.getTime() - 86_400_000).toISOString(), windowEnd: windowEnd.toISOString() };
    };
    /** A daily UTC budget starting at `startDate`, with a 50 % alert. */
    const daily = (startDate: string, parentId?: string) =>
      createBudget({
        period: 'daily',
        startDate,
        alerts: [{ id: 'half', threshold: 50, actions: ['notify'] }],
        ...(parentId ? { parentId } : {}),
      });

    it('usage dated just past the window end (clock skew) does not suppress the current window’s alerts', async () => {
      const { windowStart, windowEnd } = closingWindow();
      const parent = await daily(windowStart);
      const child = await daily(windowStart, parent.id);
      const events: { budgetId: string; periodStart: string }[] = [];
      const listener = (alert: { budgetId: string; periodStart: string }) => events.push(alert);
      const emitter = t.app.get(EventEmitter2);
      emitter.on(ALERT_EVENT, listener);

      const skewed = new Date(Date.parse(windowEnd) + 10_000).toISOString();
      const early = await record(child.id, { amount: 60, occurredAt: skewed });
      expect(early.occurredAt).toBe(skewed);
      // The cache still holds the window containing now, and equals the ledger there.
      await expectCacheMatchesLedger(t, [parent.id, child.id]);
      for (const id of [parent.id, child.id]) expect(await status(id)).toMatchObject({ periodStart: windowStart, currentAmount: 0 });

      await record(child.id, { amount: 60 });
      for (const id of [parent.id, child.id]) {
        expect(await alertRows(id)).toEqual([
          ['half', windowStart],
          ['half', windowEnd],
        ]);
        expect(await status(id)).toMatchObject({ periodStart: windowStart, currentAmount: 60, percentUsed: 60 });
      }
      emitter.off(ALERT_EVENT, listener);
      const announced = events.map((e) => [e.budgetId, new Date(e.periodStart).toISOString()]);
      expect(announced).toEqual(
        expect.arrayContaining([
          [child.id, windowStart],
          [parent.id, windowStart],
          [child.id, windowEnd],
          [parent.id, windowEnd],
        ]),
      );
      await expectCacheMatchesLedger(t, [parent.id, child.id]);
      // The next window's figures are exact too.
      const [next] = await t.sql(`SELECT trim_scale(current_amount)::text AS amount FROM calculate_budget_status($1, $2)`, [
        parent.id,
        skewed,
      ]);
      expect(next.amount).toBe('60');
    });

    it('40 concurrent writers over both windows: the cache equals the ledger and each window’s alert fires once', async () => {
      const { windowStart, windowEnd } = closingWindow();
      const parent = await daily(windowStart);
      const children = [await daily(windowStart, parent.id), await daily(windowStart, parent.id)];
      const ids = [parent.id, ...children.map((c) => c.id)];
      // Every other pair of writes is dated 1–40 ms past the window end (clock skew).
      await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          record(children[i % 2].id, {
            amount: 6,
            ...(i % 4 < 2 ? { occurredAt: new Date(Date.parse(windowEnd) + 1 + i).toISOString() } : {}),
          }),
        ),
      );
      await expectCacheMatchesLedger(t, ids);
      for (const id of ids) {
        expect(await alertRows(id)).toEqual([
          ['half', windowStart],
          ['half', windowEnd],
        ]);
      }
      const [nextWindow] = await t.sql(
        `SELECT array_agg(trim_scale(x.current_amount)::text ORDER BY o.n) AS amounts
         FROM unnest($1::uuid[]) WITH ORDINALITY o (id, n) CROSS JOIN LATERAL calculate_budget_status(o.id, $2) x`,
        [ids, new Date(Date.parse(windowEnd) + 1).toISOString()],
      );
      expect(nextWindow.amounts).toEqual(['120', '60', '60']);
      expect(await status(parent.id)).toMatchObject({ periodStart: windowStart, currentAmount: 120, usageCount: 20 });
    });

    it('a batch with records in the current and the next window evaluates both windows', async () => {
      const { windowStart, windowEnd } = closingWindow();
      const budget = await daily(windowStart);
      const skewed = new Date(Date.parse(windowEnd) + 5_000).toISOString();
      const res = await t.request('POST', `${BUDGETS}/${budget.id}/usage/batch`, {
        records: [
          { amount: 55, currency: 'USD', occurredAt: skewed, idempotencyKey: 'next-window' },
          { amount: 55, currency: 'USD', idempotencyKey: 'this-window' },
        ],
      });
      expect(res.status).toBe(200);
      expect(res.body.results.map((r: { status: number }) => r.status)).toEqual([201, 201]);
      expect(await alertRows(budget.id)).toEqual([
        ['half', windowStart],
        ['half', windowEnd],
      ]);
      await expectCacheMatchesLedger(t, [budget.id]);
    });

    it('late usage of an earlier window fires that window’s alert, and leaves the current figures alone', async () => {
      const budget = await createBudget({ alerts: [{ id: 'half', threshold: 50, actions: ['notify'] }] });
      const now = new Date();
      const previousMonth = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1));
      const late = new Date(previousMonth.getTime() + 3 * 86_400_000).toISOString();
      await record(budget.id, { amount: 60, occurredAt: late });
      expect(await alertRows(budget.id)).toEqual([['half', previousMonth.toISOString()]]);
      expect(await status(budget.id)).toMatchObject({ currentAmount: 0, activeAlerts: [] });
      await expectCacheMatchesLedger(t, [budget.id]);
    });
  });

  describe('6. window 0 starts at startDate exactly, even in a repeated DST hour', () => {
    const window = async (id: string, at: string) =>
      (
        await t.sql(
          `SELECT w.period_start, w.period_end, w.active FROM budget_definitions b
           CROSS JOIN LATERAL budget_period_window(b.start_date, b.end_date, b.period, b.custom_period_days, b.recurring,
                                                   b.timezone, $2::timestamptz) w
           WHERE b.id = $1`,
          [id, at],
        )
      ).map((w) => [w.period_start.toISOString(), w.period_end.toISOString(), w.active])[0];

    it('2026-11-01T01:30-04:00 in New York (the first 01:30): usage 15 minutes later is recorded in window 0', async () => {
      const budget = await createBudget({ period: 'daily', timezone: 'America/New_York', startDate: '2026-11-01T01:30:00-04:00' });
      const res = await usage(budget.id, { amount: 3, occurredAt: '2026-11-01T05:45:00.000Z' });
      expect([res.status, res.body.detail]).toEqual([201, undefined]);
      // Window 0 runs from the anchor to the next local 01:30 (EST): 25 hours; later ones follow local time.
      expect(await window(budget.id, '2026-11-01T05:45:00Z')).toEqual(['2026-11-01T05:30:00.000Z', '2026-11-02T06:30:00.000Z', true]);
      expect(await window(budget.id, '2026-11-01T05:30:00Z')).toEqual(['2026-11-01T05:30:00.000Z', '2026-11-02T06:30:00.000Z', true]);
      expect(await window(budget.id, '2026-11-02T06:30:00Z')).toEqual(['2026-11-02T06:30:00.000Z', '2026-11-03T06:30:00.000Z', true]);
      expect(await window(budget.id, '2026-11-01T05:29:59Z')).toEqual(['2026-11-01T05:30:00.000Z', '2026-11-02T06:30:00.000Z', false]);
      const [{ amount }] = await t.sql(`SELECT trim_scale(current_amount)::text AS amount FROM calculate_budget_status($1, $2)`, [
        budget.id,
        '2026-11-01T06:00:00Z',
      ]);
      expect(amount).toBe('3');
    });

    it('the second 01:30 (-05:00) anchors window 0 there; before it the refusal says the budget has not started', async () => {
      const budget = await createBudget({ period: 'daily', timezone: 'America/New_York', startDate: '2026-11-01T01:30:00-05:00' });
      expect(await window(budget.id, '2026-11-01T06:35:00Z')).toEqual(['2026-11-01T06:30:00.000Z', '2026-11-02T06:30:00.000Z', true]);
      const before = await usage(budget.id, { amount: 1, occurredAt: '2026-11-01T06:00:00.000Z' });
      expectCodedProblem(before, 422, 'OUTSIDE_BUDGET_PERIOD');
      expect(before.body.detail).toMatch(/before the budget starts/);
      expect(before.body.detail).not.toMatch(/non-recurring/);
      expect((await usage(budget.id, { amount: 1, occurredAt: '2026-11-01T06:35:00.000Z' })).status).toBe(201);
    });

    it('only a non-recurring budget is called non-recurring when usage falls outside its window', async () => {
      const single = await createBudget({ period: 'daily', recurring: false, startDate: '2026-01-01T00:00:00Z' });
      const outside = await usage(single.id, { amount: 1, occurredAt: '2026-01-03T00:00:00.000Z' });
      expectCodedProblem(outside, 422, 'OUTSIDE_BUDGET_PERIOD');
      expect(outside.body.detail).toMatch(/non-recurring/);
      const ended = await createBudget({ period: 'daily', startDate: '2026-01-01T00:00:00Z', endDate: '2026-01-05T00:00:00Z' });
      const after = await usage(ended.id, { amount: 1, occurredAt: '2026-01-06T00:00:00.000Z' });
      expectCodedProblem(after, 422, 'OUTSIDE_BUDGET_PERIOD');
      expect(after.body.detail).toMatch(/end/);
      expect(after.body.detail).not.toMatch(/non-recurring/);
    });
  });

  describe('7. roll-up has no depth cut-off for deleted or moved descendants', () => {
    it('a deleted leaf that ends up below level 8 after a move still counts in the new root', async () => {
      const levels: Budget[] = [];
      for (let i = 0; i < 7; i++) levels.push(await createBudget({ amount: 1000, parentId: levels[i - 1]?.id }));
      const oldRoot = await createBudget({ amount: 1000 });
      const moved = await createBudget({ amount: 1000, parentId: oldRoot.id });
      const leaf = await createBudget({ amount: 1000, parentId: moved.id });
      await record(leaf.id, { amount: 10 });
      expect((await t.request('DELETE', `${BUDGETS}/${leaf.id}`)).status).toBe(204);

      // The live subtree of `moved` is one level, so it fits under level 7; the deleted leaf is at level 9.
      expect((await put(moved.id, { parentId: levels[6].id })).status).toBe(200);
      const [{ depth }] = await t.sql(
        `WITH RECURSIVE up AS (SELECT id, parent_id, 1 AS depth FROM budget_definitions WHERE id = $1
                               UNION ALL SELECT b.id, b.parent_id, up.depth + 1 FROM up JOIN budget_definitions b ON b.id = up.parent_id)
         SELECT max(depth)::int AS depth FROM up`,
        [leaf.id],
      );
      expect(depth).toBe(9);

      for (const node of [...levels, moved]) expect((await status(node.id)).currentAmount).toBe(10);
      expect((await status(oldRoot.id)).currentAmount).toBe(0);
      await expectCacheMatchesLedger(t, [...levels, moved, oldRoot].map((b) => b.id));
      const summary = await t.request('GET', `${BUDGETS}/${levels[0].id}/usage/summary`);
      expect(summary.body).toMatchObject({ total: 10, count: 1 });
    });

    it('a cycle among deleted budgets (only reachable by hand) terminates and counts each record once', async () => {
      const top = await createBudget();
      const below = await createBudget({ parentId: top.id });
      await record(top.id, { amount: 5 });
      await record(below.id, { amount: 7 });
      for (const gone of [below, top]) expect((await t.request('DELETE', `${BUDGETS}/${gone.id}`)).status).toBe(204);
      // The guard does not look at deleted rows, so a hand-made update can close a loop.
      await t.sql(`UPDATE budget_definitions SET parent_id = $2 WHERE id = $1`, [top.id, below.id]);
      for (const id of [top.id, below.id]) {
        const [truth] = await t.sql(
          `SELECT trim_scale(current_amount)::text AS amount, usage_count::int AS n FROM calculate_budget_status($1)`,
          [id],
        );
        expect(truth).toEqual({ amount: '12', n: 2 });
      }
    });
  });

  describe('9. a usage settles only a reservation held on its budget or an ancestor', () => {
    it('usage on B carrying A’s reservationId: 409 RESERVATION_MISMATCH, nothing recorded, A still held', async () => {
      const a = await createBudget();
      const b = await createBudget();
      const held = await reserve(a.id, 10);

      const res = await usage(b.id, { amount: 4, reservationId: held });
      expectCodedProblem(res, 409, 'RESERVATION_MISMATCH');
      expect(await usageRows(b.id)).toBe(0);
      expect(await reservationState(held)).toEqual({ state: 'held', holds: 1 });
      expect(await status(a.id)).toMatchObject({ reservedAmount: 10 });
      expect(await status(b.id)).toMatchObject({ currentAmount: 0, usageCount: 0 });

      // Once released, it still belongs to A: the answer does not change.
      expect((await t.request('DELETE', `${API}/reservations/${held}`)).status).toBe(204);
      expectCodedProblem(await usage(b.id, { amount: 4, reservationId: held }), 409, 'RESERVATION_MISMATCH');
      expect(await usageRows(b.id)).toBe(0);
    });

    it('a reservation held on a parent may be settled by its child’s usage; its own budget’s usage settles it', async () => {
      const parent = await createBudget();
      const child = await createBudget({ parentId: parent.id });
      const onParent = await reserve(parent.id, 10);
      expect((await usage(child.id, { amount: 4, reservationId: onParent })).status).toBe(201);
      expect(await reservationState(onParent)).toEqual({ state: 'settled', holds: 0 });
      const onChild = await reserve(child.id, 10);
      expect((await usage(child.id, { amount: 4, reservationId: onChild })).status).toBe(201);
      expect(await reservationState(onChild)).toEqual({ state: 'settled', holds: 0 });
    });

    it('in a batch the mismatched record alone is refused; the integration usage refuses it whole', async () => {
      const a = await createBudget();
      const b = await createBudget({ scopeType: 'user', scopeId: 'hard-mismatch-user' });
      const held = await reserve(a.id, 10);

      const batch = await t.request('POST', `${BUDGETS}/${b.id}/usage/batch`, {
        records: [
          { amount: 1, currency: 'USD', idempotencyKey: 'plain' },
          { amount: 2, currency: 'USD', idempotencyKey: 'foreign', reservationId: held },
        ],
      });
      expect(batch.status).toBe(200);
      expect(batch.body.results.map((r: { status: number; error?: { code: string } }) => [r.status, r.error?.code])).toEqual([
        [201, undefined],
        [409, 'RESERVATION_MISMATCH'],
      ]);
      expect(await usageRows(b.id)).toBe(1);
      expect(await reservationState(held)).toEqual({ state: 'held', holds: 1 });

      const integration = await t.request('POST', `${API}/integration/usage`, {
        userId: 'hard-mismatch-user', amount: 3, currency: 'USD', requestId: 'hard-mismatch-1', reservationId: held,
      });
      expectCodedProblem(integration, 409, 'RESERVATION_MISMATCH');
      expect(await usageRows(b.id)).toBe(1);
      expect(await reservationState(held)).toEqual({ state: 'held', holds: 1 });
      await expectCacheMatchesLedger(t, [a.id, b.id]);
    });
  });

  describe('10. a cycle is reported before any amount rule', () => {
    it('making a parent the child of its smaller child answers 409 HIERARCHY_CYCLE', async () => {
      const parent = await createBudget({ amount: 100 });
      const child = await createBudget({ amount: 50, parentId: parent.id });
      expectCodedProblem(await put(parent.id, { parentId: child.id }), 409, 'HIERARCHY_CYCLE');
      expectCodedProblem(await put(parent.id, { parentId: parent.id, amount: 200 }), 409, 'HIERARCHY_CYCLE');
      const [stored] = await t.sql(`SELECT parent_id FROM budget_definitions WHERE id = $1`, [parent.id]);
      expect(stored.parent_id).toBeNull();
    });
  });
});
