import { Clock } from '../src/common/clock';
import { BudgetTrackerService } from '../src/usage/budget-tracker.service';
import { createTestApp, type TestApp } from './setup/test-app';
import { expectProblem } from './setup/problem';
import { SEED_RECORD_USAGE_EXAMPLE } from './setup/seed-examples';

/**
 * SPEC §2 "Usage record", "Idempotency", "Status", "The cache", §5 Usage, §10 (history and
 * summary details), issue 3 acceptance 6, and the seed's in-process calls (§11), through the real
 * pipeline against a real PostgreSQL.
 */

const BUDGETS = '/api/v1/budgets';
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

describe('Usage ledger and status (HTTP)', () => {
  let t: TestApp;
  let seq = 0;

  const createBudget = async (patch: Record<string, unknown> = {}) => {
    seq += 1;
    const res = await t.request('POST', BUDGETS, {
      name: `Usage budget ${seq}`,
      scopeType: 'team',
      scopeId: `usage-team-${seq}`,
      amount: 1000,
      currency: 'USD',
      period: 'monthly',
      startDate: '2025-01-01T00:00:00Z',
      ...patch,
    });
    expect(res.status).toBe(201);
    return res.body as { id: string; amount: number; currency: string };
  };

  const record = (budgetId: string, body: Record<string, unknown>, headers: Record<string, string> = {}) =>
    t.request('POST', `${BUDGETS}/${budgetId}/usage`, body, headers);

  const status = async (budgetId: string) => {
    const res = await t.request('GET', `${BUDGETS}/${budgetId}/status`);
    expect(res.status).toBe(200);
    return res.body;
  };

  const rows = (budgetId: string) =>
    t.sql(
      `SELECT id, trim_scale(amount)::text AS amount, request_id, idempotency_key, model_id, user_id, team_id, project_id
       FROM budget_usage_records WHERE budget_id = $1 ORDER BY recorded_at, id`,
      [budgetId],
    );

  /** Pins the service clock (the database keeps its own now()). */
  const pinClock = (iso: string) => jest.spyOn(t.app.get(Clock), 'now').mockImplementation(() => new Date(iso));

  beforeAll(async () => {
    t = await createTestApp();
  });

  afterEach(() => {
    jest.restoreAllMocks();
  });

  afterAll(async () => {
    await t.close();
  });

  describe('recording', () => {
    it("the seed's RecordUsageRequest example → 201, metadata ids lifted into columns", async () => {
      const budget = await createBudget();
      const res = await record(budget.id, SEED_RECORD_USAGE_EXAMPLE);
      expect(res.status).toBe(201);
      expect(res.headers['idempotent-replayed']).toBeUndefined();
      expect(res.body).toEqual({
        id: expect.stringMatching(/^[0-9a-f-]{36}$/),
        budgetId: budget.id,
        amount: 25.5,
        currency: 'USD',
        source: 'relaycore',
        description: 'GPT-4 API usage',
        modelId: 'gpt-4',
        userId: 'user-456',
        teamId: 'team-123',
        projectId: null,
        customerId: null,
        tags: [],
        requestId: 'req-789',
        reservationId: null,
        metadata: SEED_RECORD_USAGE_EXAMPLE.metadata,
        occurredAt: expect.stringMatching(ISO),
        recordedAt: expect.stringMatching(ISO),
        matchedBudgetIds: [budget.id],
        // An amount-priced record (SPEC §14): no tokens, no price version.
        provider: null,
        inputTokens: null,
        outputTokens: null,
        cachedInputTokens: null,
        priceId: null,
      });
      expect(await rows(budget.id)).toEqual([
        {
          id: res.body.id,
          amount: '25.5',
          request_id: 'req-789',
          idempotency_key: 'req-789',
          model_id: 'gpt-4',
          user_id: 'user-456',
          team_id: 'team-123',
          project_id: null,
        },
      ]);
      const s = await status(budget.id);
      expect(s.currentAmount).toBe(25.5);
      expect(s.usageCount).toBe(1);
    });

    it('the Idempotency-Key header is the key when present, else requestId', async () => {
      const budget = await createBudget();
      const body = { amount: '1.25', currency: 'USD', requestId: 'req-h-1' };

      const withHeader = await record(budget.id, body, { 'Idempotency-Key': 'idem-h-1' });
      expect(withHeader.status).toBe(201);
      const sameHeader = await record(budget.id, body, { 'Idempotency-Key': 'idem-h-1' });
      expect(sameHeader.status).toBe(200);
      expect(sameHeader.headers['idempotent-replayed']).toBe('true');
      expect(sameHeader.body.id).toBe(withHeader.body.id);

      // Without the header the key is requestId, which is another key than the header's.
      const withoutHeader = await record(budget.id, body);
      expect(withoutHeader.status).toBe(201);
      expect(withoutHeader.body.id).not.toBe(withHeader.body.id);
      const replayWithoutHeader = await record(budget.id, body);
      expect(replayWithoutHeader.status).toBe(200);
      expect(replayWithoutHeader.body.id).toBe(withoutHeader.body.id);

      // requestId inside metadata (the seed's shape) is a key too.
      const inMetadata = { amount: 2, currency: 'USD', metadata: { requestId: 'req-meta-1' } };
      const first = await record(budget.id, inMetadata);
      expect(first.status).toBe(201);
      const again = await record(budget.id, inMetadata);
      expect(again.status).toBe(200);
      expect(again.body.id).toBe(first.body.id);

      // No key at all: every write is a new record.
      expect((await record(budget.id, { amount: 3, currency: 'USD' })).status).toBe(201);
      expect((await record(budget.id, { amount: 3, currency: 'USD' })).status).toBe(201);

      const stored = await rows(budget.id);
      expect(stored.map((row) => [row.idempotency_key, row.request_id])).toEqual([
        ['idem-h-1', 'req-h-1'],
        ['req-h-1', 'req-h-1'],
        ['req-meta-1', 'req-meta-1'],
        [null, null],
        [null, null],
      ]);
      const s = await status(budget.id);
      expect(s.usageCount).toBe(5);
      expect(s.currentAmount).toBe(10.5);
    });

    it('a replay → 200 + Idempotent-Replayed: true, the same record, counted once (status and SQL)', async () => {
      const budget = await createBudget();
      const body = { amount: '0.3333333333', currency: 'USD', requestId: 'req-replay', modelId: 'gpt-4' };
      const first = await record(budget.id, body);
      expect(first.status).toBe(201);
      const before = await status(budget.id);
      for (let i = 0; i < 3; i++) {
        const replay = await record(budget.id, body);
        expect(replay.status).toBe(200);
        expect(replay.headers['idempotent-replayed']).toBe('true');
        expect(replay.body).toEqual(first.body);
      }
      const after = await status(budget.id);
      expect(after.currentAmount).toBe(0.3333333333);
      expect(after.usageCount).toBe(1);
      expect(after.currentAmount).toBe(before.currentAmount);
      const [sqlRow] = await t.sql(
        `SELECT count(*)::int AS n, sum(amount)::text AS total FROM budget_usage_records WHERE budget_id = $1`,
        [budget.id],
      );
      expect(sqlRow).toEqual({ n: 1, total: '0.3333333333' });
      const [cache] = await t.sql(
        `SELECT trim_scale(current_amount)::text AS amount, usage_count::int AS n FROM budget_status_cache WHERE budget_id = $1`,
        [budget.id],
      );
      expect(cache).toEqual({ amount: '0.3333333333', n: 1 });
    });

    it('the same key with a different body → 409 problem+json, nothing recorded', async () => {
      const budget = await createBudget();
      expect((await record(budget.id, { amount: 5, currency: 'USD', requestId: 'req-409' })).status).toBe(201);
      expectProblem(await record(budget.id, { amount: 6, currency: 'USD', requestId: 'req-409' }), 409);
      expectProblem(await record(budget.id, { amount: 5, currency: 'USD', requestId: 'req-409', modelId: 'gpt-4' }), 409);
      expectProblem(
        await record(budget.id, { amount: 7, currency: 'USD' }, { 'Idempotency-Key': 'req-409' }),
        409,
      );
      expect((await rows(budget.id)).length).toBe(1);
      expect((await status(budget.id)).currentAmount).toBe(5);
    });

    it('keys are per budget: the same requestId on two budgets records on each', async () => {
      const a = await createBudget();
      const b = await createBudget();
      const body = { amount: 4, currency: 'USD', requestId: 'req-shared' };
      const onA = await record(a.id, body);
      const onB = await record(b.id, body);
      expect([onA.status, onB.status]).toEqual([201, 201]);
      expect(onA.body.id).not.toBe(onB.body.id);
      expect((await status(a.id)).currentAmount).toBe(4);
      expect((await status(b.id)).currentAmount).toBe(4);
    });

    it('amount rules: 0 accepted; negative, more than 10 decimals, over 1e13 or not a number → 400', async () => {
      const budget = await createBudget();
      expect((await record(budget.id, { amount: 0, currency: 'USD' })).status).toBe(201);
      expect((await record(budget.id, { amount: '0.0000000001', currency: 'USD' })).status).toBe(201);
      for (const amount of [-1, '0.00000000001', '10000000000000.1', 'abc', null]) {
        const res = await record(budget.id, { amount, currency: 'USD' });
        expectProblem(res, 400);
        expect(JSON.stringify(res.body.errors)).toMatch(/amount/);
      }
      expectProblem(await record(budget.id, { amount: 1, currency: 'USD', unknownField: 1 }), 400);
      const [sum] = await t.sql(`SELECT count(*)::int AS n, sum(amount)::text AS total FROM budget_usage_records WHERE budget_id = $1`, [
        budget.id,
      ]);
      expect(sum).toEqual({ n: 2, total: '0.0000000001' });
    });

    it('a currency other than the budget\'s → 422, nothing recorded', async () => {
      const budget = await createBudget();
      const res = await record(budget.id, { amount: 5, currency: 'EUR' });
      expectProblem(res, 422);
      expect(res.body.detail).toMatch(/USD/);
      expect((await rows(budget.id)).length).toBe(0);
    });

    it('occurredAt more than 5 minutes in the future → 400; 4 minutes ahead is accepted', async () => {
      const budget = await createBudget();
      const tooLate = await record(budget.id, {
        amount: 1,
        currency: 'USD',
        occurredAt: new Date(Date.now() + 6 * 60_000).toISOString(),
      });
      expectProblem(tooLate, 400);
      expect(JSON.stringify(tooLate.body.errors)).toMatch(/occurredAt/);
      const slightlyAhead = await record(budget.id, {
        amount: 1,
        currency: 'USD',
        occurredAt: new Date(Date.now() + 4 * 60_000).toISOString(),
      });
      expect(slightlyAhead.status).toBe(201);
      expect((await rows(budget.id)).length).toBe(1);
    });

    it('occurredAt before startDate or at/after endDate → 422; inside → 201', async () => {
      const budget = await createBudget({ startDate: '2025-01-01T00:00:00Z', endDate: '2025-07-01T00:00:00Z' });
      expectProblem(await record(budget.id, { amount: 1, currency: 'USD', occurredAt: '2024-12-31T23:59:59Z' }), 422);
      expectProblem(await record(budget.id, { amount: 1, currency: 'USD', occurredAt: '2025-07-01T00:00:00Z' }), 422);
      expectProblem(await record(budget.id, { amount: 1, currency: 'USD', occurredAt: '2025-09-15T00:00:00Z' }), 422);
      expect((await record(budget.id, { amount: 1, currency: 'USD', occurredAt: '2025-03-15T00:00:00Z' })).status).toBe(201);
      expect((await rows(budget.id)).length).toBe(1);
    });

    it('usage on a deleted budget → 404 (and on an unknown one)', async () => {
      const budget = await createBudget();
      expect((await t.request('DELETE', `${BUDGETS}/${budget.id}`)).status).toBe(204);
      expectProblem(await record(budget.id, { amount: 1, currency: 'USD' }), 404);
      expectProblem(await record('00000000-0000-4000-8000-000000000000', { amount: 1, currency: 'USD' }), 404);
      expect((await rows(budget.id)).length).toBe(0);
    });

    it('an occurredAt in a past window counts there, not in the current window', async () => {
      const budget = await createBudget();
      const now = await status(budget.id);
      const currentStart = new Date(now.periodStart);
      const pastStart = new Date(Date.UTC(currentStart.getUTCFullYear(), currentStart.getUTCMonth() - 1, 1));
      const occurredAt = new Date(pastStart.getTime() + 10 * 86_400_000).toISOString();

      const res = await record(budget.id, { amount: '7.5', currency: 'USD', occurredAt });
      expect(res.status).toBe(201);
      expect(res.body.occurredAt).toBe(occurredAt);

      const after = await status(budget.id);
      expect(after.currentAmount).toBe(0);
      expect(after.usageCount).toBe(0);
      expect(after.periodStart).toBe(now.periodStart);
      const [cache] = await t.sql(
        `SELECT current_amount = 0 AS zero, usage_count::int AS n FROM budget_status_cache WHERE budget_id = $1`,
        [budget.id],
      );
      expect(cache).toEqual({ zero: true, n: 0 });

      const past = await t.request(
        'GET',
        `${BUDGETS}/${budget.id}/usage/summary?from=${pastStart.toISOString()}&to=${currentStart.toISOString()}`,
      );
      expect(past.status).toBe(200);
      expect(past.body).toEqual(expect.objectContaining({ total: 7.5, count: 1 }));
      const current = await t.request('GET', `${BUDGETS}/${budget.id}/usage/summary`);
      expect(current.body).toEqual(expect.objectContaining({ total: 0, count: 0, from: now.periodStart, to: now.periodEnd }));
      const [truth] = await t.sql(
        `SELECT trim_scale(current_amount)::text AS amount, usage_count::int AS n FROM calculate_budget_status($1, $2)`,
        [budget.id, occurredAt],
      );
      expect(truth).toEqual({ amount: '7.5', n: 1 });
    });
  });

  describe('history', () => {
    let budgetId: string;
    /** Records as created: newest-first order is computed from these. */
    const created: { id: string; occurredAt: string; modelId: string; source: string; userId: string }[] = [];
    const SPECS = [
      { occurredAt: '2026-03-01T00:00:00.000Z', modelId: 'gpt-4', source: 'relaycore', userId: 'u1', amount: 1 },
      { occurredAt: '2026-03-02T00:00:00.000Z', modelId: 'gpt-4o', source: 'relaycore', userId: 'u2', amount: 2 },
      { occurredAt: '2026-03-03T00:00:00.000Z', modelId: 'gpt-4', source: 'batch', userId: 'u1', amount: 3 },
      { occurredAt: '2026-03-03T00:00:00.000Z', modelId: 'claude', source: 'api', userId: 'u3', amount: 4 },
      { occurredAt: '2026-03-05T00:00:00.000Z', modelId: 'gpt-4', source: 'relaycore', userId: 'u2', amount: 5 },
    ];
    /** Newest first by occurredAt, then id (uuid order = lower-case hex order). */
    const newestFirst = <T extends { id: string; occurredAt: string }>(list: T[]) =>
      [...list].sort((a, b) => (a.occurredAt === b.occurredAt ? (a.id < b.id ? 1 : -1) : a.occurredAt < b.occurredAt ? 1 : -1));
    const history = async (query: string) => {
      const res = await t.request('GET', `${BUDGETS}/${budgetId}/usage${query}`);
      expect(res.status).toBe(200);
      return res.body as { data: { id: string; occurredAt: string }[]; nextCursor: string | null };
    };
    const ids = (list: { id: string }[]) => list.map((row) => row.id);

    beforeAll(async () => {
      budgetId = (await createBudget()).id;
      for (const spec of SPECS) {
        const res = await record(budgetId, { ...spec, currency: 'USD' });
        expect(res.status).toBe(201);
        created.push({ id: res.body.id, ...spec });
      }
    });

    it('newest first by occurredAt then id; limit 2 over 5 records pages 2/2/1 without duplicates, stably', async () => {
      const expected = ids(newestFirst(created));
      const all = await history('');
      expect(ids(all.data)).toEqual(expected);
      expect(all.nextCursor).toBeNull();

      const page1 = await history('?limit=2');
      expect(page1.data.length).toBe(2);
      expect(page1.nextCursor).toEqual(expect.any(String));
      // The same request answers the same page.
      expect(await history('?limit=2')).toEqual(page1);

      // A newer record arriving meanwhile does not shift the following pages.
      const intruder = await record(budgetId, { amount: 1, currency: 'USD', modelId: 'intruder' });
      expect(intruder.status).toBe(201);

      const page2 = await history(`?limit=2&cursor=${encodeURIComponent(page1.nextCursor!)}`);
      expect(page2.data.length).toBe(2);
      expect(page2.nextCursor).toEqual(expect.any(String));
      const page3 = await history(`?limit=2&cursor=${encodeURIComponent(page2.nextCursor!)}`);
      expect(page3.data.length).toBe(1);
      expect(page3.nextCursor).toBeNull();

      const walked = [...ids(page1.data), ...ids(page2.data), ...ids(page3.data)];
      expect(walked).toEqual(expected);
      expect(new Set(walked).size).toBe(5);
      expect(walked).not.toContain(intruder.body.id);
    });

    it('filters: from inclusive, to exclusive, modelId, source, userId, combined', async () => {
      const pick = (filter: (row: (typeof created)[number]) => boolean) => ids(newestFirst(created.filter(filter)));
      expect(ids((await history('?from=2026-03-02T00:00:00Z&to=2026-03-05T00:00:00Z')).data)).toEqual(
        pick((row) => row.occurredAt >= '2026-03-02T00:00:00.000Z' && row.occurredAt < '2026-03-05T00:00:00.000Z'),
      );
      expect(ids((await history('?from=2026-03-02T00:00:00Z&to=2026-03-05T00:00:00Z')).data).length).toBe(3);
      expect(ids((await history('?to=2026-03-06T00:00:00Z&modelId=gpt-4')).data)).toEqual(pick((row) => row.modelId === 'gpt-4'));
      expect(ids((await history('?to=2026-03-06T00:00:00Z&source=relaycore')).data)).toEqual(
        pick((row) => row.source === 'relaycore'),
      );
      expect(ids((await history('?userId=u1')).data)).toEqual(pick((row) => row.userId === 'u1'));
      expect(ids((await history('?from=2026-03-03T00:00:00Z&modelId=gpt-4&to=2026-03-06T00:00:00Z')).data)).toEqual(
        pick((row) => row.modelId === 'gpt-4' && row.occurredAt >= '2026-03-03T00:00:00.000Z'),
      );
      expect((await history('?from=2026-03-06T00:00:00Z&to=2026-03-07T00:00:00Z')).data).toEqual([]);
    });

    it('includeDescendants adds the usage of child budgets', async () => {
      const parent = await createBudget();
      const child = await createBudget({ parentId: parent.id, amount: 500 });
      const grandchild = await createBudget({ parentId: child.id, amount: 100 });
      const own = await record(parent.id, { amount: 1, currency: 'USD', occurredAt: '2026-01-01T00:00:00Z' });
      const ofChild = await record(child.id, { amount: 2, currency: 'USD', occurredAt: '2026-01-02T00:00:00Z' });
      const ofGrandchild = await record(grandchild.id, { amount: 3, currency: 'USD', occurredAt: '2026-01-03T00:00:00Z' });
      const list = async (id: string, query = '') => ids((await t.request('GET', `${BUDGETS}/${id}/usage${query}`)).body.data);
      expect(await list(parent.id)).toEqual([own.body.id]);
      expect(await list(parent.id, '?includeDescendants=false')).toEqual([own.body.id]);
      expect(await list(parent.id, '?includeDescendants=true')).toEqual([ofGrandchild.body.id, ofChild.body.id, own.body.id]);
      expect(await list(child.id, '?includeDescendants=true')).toEqual([ofGrandchild.body.id, ofChild.body.id]);
      expect(await list(child.id)).toEqual([ofChild.body.id]);
    });
  });

  describe('summary', () => {
    it('total, count and breakdowns by model, source, user and day for the current window (and for from/to)', async () => {
      const budget = await createBudget();
      pinClock('2026-03-20T12:00:00Z');
      const entries = [
        { amount: '10.5', modelId: 'gpt-4', source: 'relaycore', userId: 'u1', occurredAt: '2026-03-02T01:00:00Z' },
        { amount: '0.25', modelId: 'gpt-4', source: 'relaycore', userId: 'u2', occurredAt: '2026-03-02T23:59:59Z' },
        { amount: '3', modelId: 'claude', source: 'batch', userId: 'u1', occurredAt: '2026-03-05T12:00:00Z' },
        { amount: '1.125', modelId: 'gpt-4o', source: 'relaycore', occurredAt: '2026-03-19T00:00:00Z' },
        // The previous window: not in the default summary.
        { amount: '100', modelId: 'gpt-4', source: 'relaycore', userId: 'u1', occurredAt: '2026-02-27T00:00:00Z' },
      ];
      for (const entry of entries) expect((await record(budget.id, { ...entry, currency: 'USD' })).status).toBe(201);

      const res = await t.request('GET', `${BUDGETS}/${budget.id}/usage/summary`);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({
        budgetId: budget.id,
        currency: 'USD',
        from: '2026-03-01T00:00:00.000Z',
        to: '2026-04-01T00:00:00.000Z',
        total: 14.875,
        count: 4,
        byModel: [
          { key: 'gpt-4', amount: 10.75, count: 2 },
          { key: 'claude', amount: 3, count: 1 },
          { key: 'gpt-4o', amount: 1.125, count: 1 },
        ],
        bySource: [
          { key: 'relaycore', amount: 11.875, count: 3 },
          { key: 'batch', amount: 3, count: 1 },
        ],
        byUser: [
          { key: 'u1', amount: 13.5, count: 2 },
          { key: null, amount: 1.125, count: 1 },
          { key: 'u2', amount: 0.25, count: 1 },
        ],
        byDay: [
          { key: '2026-03-02', amount: 10.75, count: 2 },
          { key: '2026-03-05', amount: 3, count: 1 },
          { key: '2026-03-19', amount: 1.125, count: 1 },
        ],
        byTag: [{ key: null, amount: 14.875, count: 4 }],
      });

      const february = await t.request(
        'GET',
        `${BUDGETS}/${budget.id}/usage/summary?from=2026-02-01T00:00:00Z&to=2026-03-01T00:00:00Z`,
      );
      expect(february.body).toEqual(
        expect.objectContaining({
          from: '2026-02-01T00:00:00.000Z',
          to: '2026-03-01T00:00:00.000Z',
          total: 100,
          count: 1,
          byModel: [{ key: 'gpt-4', amount: 100, count: 1 }],
          byDay: [{ key: '2026-02-27', amount: 100, count: 1 }],
        }),
      );
    });
  });

  describe('status (BudgetStatusInfo)', () => {
    const expectTypes = (s: Record<string, unknown>) => {
      expect(typeof s.budgetId).toBe('string');
      for (const field of ['currentAmount', 'limit', 'percentUsed', 'remaining', 'overage', 'daysRemaining', 'burnRate',
        'projectedTotal', 'reservedAmount', 'usageCount']) {
        expect([field, typeof s[field]]).toEqual([field, 'number']);
      }
      expect(Number.isInteger(s.daysRemaining)).toBe(true);
      expect(Number.isInteger(s.usageCount)).toBe(true);
      expect(s.currency).toMatch(/^[A-Z]{3}$/);
      expect(['normal', 'warning', 'critical', 'exceeded']).toContain(s.status);
      expect(Array.isArray(s.activeAlerts)).toBe(true);
      expect(s.lastUpdated).toMatch(ISO);
      expect(s.periodStart).toMatch(ISO);
      expect(s.periodEnd).toMatch(ISO);
      expect(typeof s.active).toBe('boolean');
    };

    it('every field, exact, at 0 %, 50 %, 80 %, 95 %, 100 % and 150 % of the limit', async () => {
      // Window [2026-03-01, 2026-04-01); now is 10.5 days in, 20.5 days left.
      pinClock('2026-03-11T12:00:00Z');
      const budget = await createBudget({ amount: 1000 });
      const steps = [
        { add: 0, current: 0, percent: 0, remaining: 1000, overage: 0, burn: 0, projected: 0, label: 'normal' },
        { add: 500, current: 500, percent: 50, remaining: 500, overage: 0, burn: 47.619047619, projected: 1476.1904761905, label: 'normal' },
        { add: 300, current: 800, percent: 80, remaining: 200, overage: 0, burn: 76.1904761905, projected: 2361.9047619048, label: 'warning' },
        { add: 150, current: 950, percent: 95, remaining: 50, overage: 0, burn: 90.4761904762, projected: 2804.7619047619, label: 'critical' },
        { add: 50, current: 1000, percent: 100, remaining: 0, overage: 0, burn: 95.2380952381, projected: 2952.380952381, label: 'exceeded' },
        { add: 500, current: 1500, percent: 150, remaining: 0, overage: 500, burn: 142.8571428571, projected: 4428.5714285714, label: 'exceeded' },
      ];
      let count = 0;
      for (const step of steps) {
        if (step.add > 0) {
          expect((await record(budget.id, { amount: step.add, currency: 'USD' })).status).toBe(201);
          count += 1;
        }
        const s = await status(budget.id);
        expectTypes(s);
        expect([step.percent, s]).toEqual([
          step.percent,
          {
            budgetId: budget.id,
            currentAmount: step.current,
            limit: 1000,
            currency: 'USD',
            percentUsed: step.percent,
            remaining: step.remaining,
            overage: step.overage,
            daysRemaining: 21,
            burnRate: step.burn,
            projectedTotal: step.projected,
            status: step.label,
            activeAlerts: [],
            periodStart: '2026-03-01T00:00:00.000Z',
            periodEnd: '2026-04-01T00:00:00.000Z',
            active: true,
            reservedAmount: 0,
            usageCount: count,
            lastUpdated: expect.stringMatching(ISO),
          },
        ]);
      }
    });

    it('percentUsed rounds to 2 decimals; burn rate uses at least one elapsed hour', async () => {
      pinClock('2026-03-01T00:30:00Z');
      const budget = await createBudget({ amount: 3 });
      expect((await record(budget.id, { amount: 1, currency: 'USD' })).status).toBe(201);
      const s = await status(budget.id);
      expect(s.percentUsed).toBe(33.33);
      // elapsed = max(30 min, 1 h) = 1/24 day; 30 days 23.5 h left.
      expect(s.burnRate).toBe(24);
      expect(s.daysRemaining).toBe(31);
      expect(s.projectedTotal).toBe(1 + 24 * (30 + 23.5 / 24));
    });

    it('refresh-cache answers 200 with the status, rebuilt from the ledger', async () => {
      const budget = await createBudget();
      expect((await record(budget.id, { amount: '12.34', currency: 'USD' })).status).toBe(201);
      expect((await record(budget.id, { amount: '0.66', currency: 'USD' })).status).toBe(201);
      await t.sql(`UPDATE budget_status_cache SET current_amount = 999, usage_count = 99 WHERE budget_id = $1`, [budget.id]);
      const res = await t.request('POST', `${BUDGETS}/${budget.id}/refresh-cache`);
      expect(res.status).toBe(200);
      expectTypes(res.body);
      expect(res.body).toEqual(expect.objectContaining({ budgetId: budget.id, currentAmount: 13, usageCount: 2, percentUsed: 1.3 }));
      const [cache] = await t.sql(
        `SELECT trim_scale(current_amount)::text AS amount, usage_count::int AS n FROM budget_status_cache WHERE budget_id = $1`,
        [budget.id],
      );
      expect(cache).toEqual({ amount: '13', n: 2 });
      expectProblem(await t.request('POST', `${BUDGETS}/00000000-0000-4000-8000-000000000000/refresh-cache`), 404);
    });
  });

  describe("the seed's in-process API (BudgetTrackerService)", () => {
    it('recordUsage(budgetId, usageRequest), getBudgetStatus(budgetId), checkBudgetConstraints(budgetId, estimatedCost)', async () => {
      const budgetId = (await createBudget({ amount: 100 })).id;
      const budgetTracker = t.app.get(BudgetTrackerService);

      const usageRequest = {
        amount: 25.5,
        currency: 'USD',
        source: 'relaycore',
        description: 'GPT-4 API usage',
        metadata: { requestId: 'req-789', modelId: 'gpt-4', userId: 'user-456', teamId: 'team-123' },
      };
      const usageRecord = await budgetTracker.recordUsage(budgetId, usageRequest);
      expect(usageRecord).toEqual(
        expect.objectContaining({
          id: expect.any(String),
          budgetId,
          amount: 25.5,
          currency: 'USD',
          requestId: 'req-789',
          modelId: 'gpt-4',
          userId: 'user-456',
          teamId: 'team-123',
        }),
      );
      // The same call again is a replay of the same record.
      expect((await budgetTracker.recordUsage(budgetId, usageRequest)).id).toBe(usageRecord.id);

      const budgetStatus = await budgetTracker.getBudgetStatus(budgetId);
      expect(budgetStatus).toEqual(
        expect.objectContaining({ budgetId, currentAmount: 25.5, limit: 100, percentUsed: 25.5, remaining: 74.5, usageCount: 1, status: 'normal' }),
      );

      const allowed = (await budgetTracker.checkBudgetConstraints(budgetId, 10)) as Record<string, any>;
      expect(allowed.canProceed).toBe(true);
      expect(Array.isArray(allowed.suggestedActions)).toBe(true);

      const constraintCheck = (await budgetTracker.checkBudgetConstraints(budgetId, 80)) as Record<string, any>;
      expect(constraintCheck.canProceed).toBe(false);
      expect(constraintCheck.reason).toEqual(expect.any(String));
      expect(constraintCheck.reason).toMatch(/100/);
      expect(constraintCheck.suggestedActions.length).toBeGreaterThan(0);
      expect(constraintCheck.suggestedActions.map((a: { type: string }) => a.type)).toEqual(
        expect.arrayContaining(['reduce-request', 'wait-for-next-period']),
      );
    });
  });
});
