import { expectCacheMatchesLedger } from './setup/ledger-checks';
import { expectProblem } from './setup/problem';
import { createTestApp, type TestApp, type TestResponse } from './setup/test-app';

/**
 * Issue 13 (SPEC §12.2): a usage counts toward every budget it matches — by scope, by model, by
 * tag, for customers too — and every ancestor of any of them, each budget exactly once, with one
 * ledger row per request.
 */

const API = '/api/v1';

/** A problem+json answer with this status and stable code. */
function expectCode(res: TestResponse, status: number, code: string) {
  expectProblem(res, status);
  expect(res.body.code).toBe(code);
}

describe('Attribution: every matching budget, each once', () => {
  let t: TestApp;
  let seq = 0;

  const create = async (body: Record<string, unknown>) => {
    seq += 1;
    const res = await t.request('POST', `${API}/budgets`, {
      name: `Attribution ${seq}`,
      amount: 1000,
      currency: 'USD',
      period: 'monthly',
      startDate: '2025-01-01T00:00:00Z',
      ...body,
    });
    expect(res.status).toBe(201);
    return res.body as { id: string; filter: unknown };
  };
  const status = async (id: string) => (await t.request('GET', `${API}/budgets/${id}/status`)).body;
  const integrationUsage = (body: Record<string, unknown>) =>
    t.request('POST', `${API}/integration/usage`, { currency: 'USD', ...body });
  const integrationCheck = (body: Record<string, unknown>) =>
    t.request('POST', `${API}/integration/check-constraints`, { currency: 'USD', ...body });

  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  describe('the issue example: org → team → user and org → project', () => {
    let org: { id: string };
    let team: { id: string };
    let user: { id: string };
    let project: { id: string };

    beforeAll(async () => {
      org = await create({ scopeType: 'organization', scopeId: 'attr-org', amount: 1000 });
      team = await create({ scopeType: 'team', scopeId: 'attr-team', parentId: org.id, amount: 500 });
      user = await create({ scopeType: 'user', scopeId: 'attr-user', parentId: team.id, amount: 100 });
      project = await create({ scopeType: 'project', scopeId: 'attr-project', parentId: org.id, amount: 10, enforcement: 'hard' });
    });

    it('counts three usages of 8 on the user and the project, and once on the org above both', async () => {
      for (let n = 1; n <= 3; n += 1) {
        const res = await integrationUsage({
          requestId: `attr-example-${n}`, organizationId: 'attr-org', teamId: 'attr-team', userId: 'attr-user',
          projectId: 'attr-project', amount: 8,
        });
        expect(res.status).toBe(201);
        expect(res.body.records).toHaveLength(1);
        expect(new Set(res.body.records[0].matchedBudgetIds)).toEqual(new Set([org.id, team.id, user.id, project.id]));
      }
      expect((await status(project.id)).currentAmount).toBe(24);
      expect((await status(user.id)).currentAmount).toBe(24);
      expect((await status(team.id)).currentAmount).toBe(24);
      const orgStatus = await status(org.id);
      expect(orgStatus.currentAmount).toBe(24);
      expect(orgStatus.usageCount).toBe(3);
      const rows = await t.sql(`SELECT count(*)::int AS n FROM budget_usage_records WHERE request_id LIKE 'attr-example-%'`);
      expect(rows[0].n).toBe(3);
      await expectCacheMatchesLedger(t, [org.id, team.id, user.id, project.id]);
    });

    it('the project budget now refuses a check (it counted the 24)', async () => {
      const res = await integrationCheck({ organizationId: 'attr-org', userId: 'attr-user', projectId: 'attr-project', estimatedCost: 1 });
      expect(res.status).toBe(200);
      expect(res.body.canProceed).toBe(false);
      expect(res.body.blockedBy.budgetId).toBe(project.id);
    });

    it('history lists each request once, on the org (with descendants) and on the project', async () => {
      const onOrg = await t.request('GET', `${API}/budgets/${org.id}/usage?includeDescendants=true`);
      expect(onOrg.status).toBe(200);
      expect(onOrg.body.data.map((r: any) => r.requestId).sort()).toEqual(['attr-example-1', 'attr-example-2', 'attr-example-3']);
      const onProject = await t.request('GET', `${API}/budgets/${project.id}/usage`);
      expect(onProject.body.data).toHaveLength(3);
      const summary = await t.request('GET', `${API}/budgets/${org.id}/usage/summary`);
      expect(summary.body.total).toBe(24);
      expect(summary.body.count).toBe(3);
    });

    it('a replay after the tree changed answers the same record and counts nothing again', async () => {
      // A more specific budget appears and the project moves under the team: the retry replays.
      await create({ scopeType: 'customer', scopeId: 'attr-late-customer', parentId: org.id, amount: 50 });
      const moved = await t.request('PUT', `${API}/budgets/${project.id}`, { parentId: team.id });
      expect(moved.status).toBe(200);
      const replay = await integrationUsage({
        requestId: 'attr-example-1', organizationId: 'attr-org', teamId: 'attr-team', userId: 'attr-user',
        projectId: 'attr-project', amount: 8,
      });
      expect(replay.status).toBe(200);
      expect(replay.body.replayed).toBe(true);
      expect((await status(org.id)).currentAmount).toBe(24);
      // The team now holds the project too, and still counts each request once.
      expect((await status(team.id)).currentAmount).toBe(24);
      await expectCacheMatchesLedger(t, [org.id, team.id, user.id, project.id]);
    });

    it('the same request id with a different body is a conflict', async () => {
      const res = await integrationUsage({ requestId: 'attr-example-2', organizationId: 'attr-org', amount: 9 });
      expectCode(res, 409, 'IDEMPOTENCY_KEY_REUSED');
    });
  });

  describe('filters, customers and tags', () => {
    it('a model filter (prefix*) and a tags filter count only the requests they accept', async () => {
      const root = await create({ scopeType: 'organization', scopeId: 'filter-org', amount: 1000 });
      const gpt4o = await create({ scopeType: 'organization', scopeId: 'filter-org', amount: 100, filter: { models: ['gpt-4o*'] } });
      const prod = await create({ scopeType: 'customer', scopeId: 'filter-cust', amount: 100, filter: { tags: ['prod'] } });
      expect(gpt4o.filter).toEqual({ models: ['gpt-4o*'] });
      const send = (requestId: string, extra: Record<string, unknown>) =>
        integrationUsage({ requestId, organizationId: 'filter-org', customerId: 'filter-cust', amount: 2, ...extra });
      expect((await send('f-1', { modelId: 'gpt-4o-mini', tags: ['prod', 'chat'] })).status).toBe(201);
      expect((await send('f-2', { modelId: 'claude-3-5-sonnet', tags: ['prod'] })).status).toBe(201);
      expect((await send('f-3', { modelId: 'gpt-4o', tags: ['dev'] })).status).toBe(201);
      expect((await send('f-4', { tags: ['prod'] })).status).toBe(201); // no model: matches no models filter
      expect((await status(root.id)).currentAmount).toBe(8);
      expect((await status(gpt4o.id)).currentAmount).toBe(4);
      expect((await status(prod.id)).currentAmount).toBe(6);
      await expectCacheMatchesLedger(t, [root.id, gpt4o.id, prod.id]);

      const summary = await t.request('GET', `${API}/budgets/${root.id}/usage/summary`);
      const byTag = Object.fromEntries(summary.body.byTag.map((b: any) => [b.key, b.amount]));
      expect(byTag).toEqual({ prod: 6, chat: 2, dev: 2 });
      expect(summary.body.total).toBe(8);
      // The summary reads by the rule of budget_usage_rows(), which the reports read by: the same figures.
      for (const id of [root.id, gpt4o.id, prod.id]) {
        const own = (await t.request('GET', `${API}/budgets/${id}/usage/summary`)).body;
        const [rows] = await t.sql(
          `SELECT coalesce(sum(amount), 0)::float8 AS total, count(*)::int AS n FROM budget_usage_rows($1, $2, $3)`,
          [id, own.from, own.to],
        );
        expect({ id, total: own.total, count: own.count }).toEqual({ id, total: rows.total, count: rows.n });
      }
      const tagged = await t.request('GET', `${API}/budgets/${root.id}/usage?tag=prod`);
      expect(tagged.body.data.map((r: any) => r.requestId).sort()).toEqual(['f-1', 'f-2', 'f-4']);
      const customers = await t.request('GET', `${API}/budgets?scopeType=customer&scopeId=filter-cust`);
      expect(customers.status).toBe(200);
      expect(customers.body.data.map((b: any) => b.id)).toEqual([prod.id]);
    });

    it('a filter change applies from the next record on; the ledger is never rewritten', async () => {
      const budget = await create({ scopeType: 'project', scopeId: 'filter-change', amount: 100, filter: { tags: ['a'] } });
      expect((await integrationUsage({ requestId: 'fc-1', projectId: 'filter-change', amount: 3, tags: ['a'] })).status).toBe(201);
      const changed = await t.request('PUT', `${API}/budgets/${budget.id}`, { filter: { tags: ['b'] } });
      expect(changed.status).toBe(200);
      expect((await integrationUsage({ requestId: 'fc-2', projectId: 'filter-change', amount: 5, tags: ['a'] })).body.records).toEqual([]);
      expect((await integrationUsage({ requestId: 'fc-3', projectId: 'filter-change', amount: 7, tags: ['b'] })).status).toBe(201);
      expect((await status(budget.id)).currentAmount).toBe(10);
      const cleared = await t.request('PUT', `${API}/budgets/${budget.id}`, { filter: null });
      expect(cleared.body.filter).toBeNull();
      await expectCacheMatchesLedger(t, [budget.id]);
    });

    it('single-budget usage the filter refuses is 422 FILTER_MISMATCH and records nothing', async () => {
      const budget = await create({ scopeType: 'team', scopeId: 'filter-single', amount: 100, filter: { models: ['gpt-4o*'] } });
      const refused = await t.request('POST', `${API}/budgets/${budget.id}/usage`, { amount: 1, currency: 'USD', modelId: 'claude-3' });
      expectCode(refused, 422, 'FILTER_MISMATCH');
      const accepted = await t.request('POST', `${API}/budgets/${budget.id}/usage`, {
        amount: 1, currency: 'USD', modelId: 'gpt-4o', tags: ['x', 'x'], customerId: 'c-1',
      });
      expect(accepted.status).toBe(201);
      expect(accepted.body.tags).toEqual(['x']);
      expect(accepted.body.customerId).toBe('c-1');
      expect(accepted.body.matchedBudgetIds).toEqual([budget.id]);
      const batch = await t.request('POST', `${API}/budgets/${budget.id}/usage/batch`, {
        records: [{ amount: 1, currency: 'USD', modelId: 'gpt-4o-mini' }, { amount: 1, currency: 'USD', modelId: 'o1' }],
      });
      expect(batch.status).toBe(200);
      expect(batch.body.results.map((r: any) => r.status)).toEqual([201, 422]);
      expect(batch.body.results[1].error.code).toBe('FILTER_MISMATCH');
      expect((await status(budget.id)).currentAmount).toBe(2);
    });

    it('a single-budget check on a filtered budget ignores requests its filter refuses (rule filtered)', async () => {
      const budget = await create({ scopeType: 'team', scopeId: 'filter-check', amount: 1, enforcement: 'hard', filter: { models: ['gpt-4o*'] } });
      const other = await t.request('POST', `${API}/budgets/${budget.id}/check-constraints`, { estimatedCost: 5, modelId: 'claude-3', reserve: true });
      expect(other.status).toBe(200);
      expect(other.body).toMatchObject({ canProceed: true, rule: 'filtered' });
      expect(other.body.reservationId).toBeUndefined();
      const same = await t.request('POST', `${API}/budgets/${budget.id}/check-constraints`, { estimatedCost: 5, modelId: 'gpt-4o' });
      expect(same.body).toMatchObject({ canProceed: false, rule: 'hard-limit' });
    });

    it('a reservation holds on every matched budget of both branches, all or none', async () => {
      const org = await create({ scopeType: 'organization', scopeId: 'resv-org', amount: 100 });
      const user = await create({ scopeType: 'user', scopeId: 'resv-user', parentId: org.id, amount: 50, enforcement: 'hard' });
      const project = await create({ scopeType: 'project', scopeId: 'resv-project', parentId: org.id, amount: 5, enforcement: 'hard' });
      const held = await integrationCheck({ userId: 'resv-user', projectId: 'resv-project', estimatedCost: 4, reserve: true });
      expect(held.body.canProceed).toBe(true);
      const holds = await t.sql(`SELECT budget_id FROM budget_reservation_holds WHERE reservation_id = $1`, [held.body.reservationId]);
      expect(new Set(holds.map((h: any) => h.budget_id))).toEqual(new Set([org.id, user.id, project.id]));
      const refused = await integrationCheck({ userId: 'resv-user', projectId: 'resv-project', estimatedCost: 2, reserve: true });
      expect(refused.body.canProceed).toBe(false);
      expect(refused.body.blockedBy.budgetId).toBe(project.id);
      const settled = await integrationUsage({
        requestId: 'resv-1', userId: 'resv-user', projectId: 'resv-project', amount: 4, reservationId: held.body.reservationId,
      });
      expect(settled.status).toBe(201);
      expect((await status(org.id)).currentAmount).toBe(4);
      const left = await t.sql(`SELECT count(*)::int AS n FROM budget_reservation_holds WHERE reservation_id = $1`, [held.body.reservationId]);
      expect(left[0].n).toBe(0);
    });
  });

  describe('bad input', () => {
    it.each([
      [{ filter: { models: ['gpt-4o'], teams: ['x'] } }, 'filter.teams'],
      [{ filter: { models: [] } }, 'filter.models'],
      [{ filter: { models: ['gpt-*-mini'] } }, 'filter.models'],
      [{ filter: { models: ['*'] } }, 'filter.models'],
      [{ filter: { tags: Array.from({ length: 21 }, (_, i) => `t${i}`) } }, 'filter.tags'],
      [{ filter: { tags: ['x'.repeat(65)] } }, 'filter.tags'],
      [{ filter: 'gpt-4o' }, 'filter'],
    ])('a budget with %j is refused naming %s', async (patch, field) => {
      const before = await t.sql(`SELECT count(*)::int AS n FROM budget_definitions`);
      const res = await t.request('POST', `${API}/budgets`, {
        name: 'Bad filter', scopeType: 'team', scopeId: 'bad-filter', amount: 10, currency: 'USD', period: 'monthly',
        startDate: '2025-01-01T00:00:00Z', ...patch,
      });
      expectCode(res, 400, 'VALIDATION_FAILED');
      expect(JSON.stringify(res.body.errors)).toContain(field);
      expect((await t.sql(`SELECT count(*)::int AS n FROM budget_definitions`))[0].n).toBe(before[0].n);
    });

    it.each([
      [{ tags: Array.from({ length: 21 }, (_, i) => `t${i}`) }, 'tags'],
      [{ tags: ['y'.repeat(65)] }, 'tags'],
      [{ tags: [''] }, 'tags'],
      [{ tags: 'prod' }, 'tags'],
      [{ customerId: 'has space' }, 'customerId'],
    ])('integration usage with %j is refused naming %s', async (patch, field) => {
      const res = await integrationUsage({ requestId: 'bad-tags', organizationId: 'attr-org', amount: 1, ...patch });
      expectCode(res, 400, 'VALIDATION_FAILED');
      expect(JSON.stringify(res.body.errors)).toContain(field);
      const rows = await t.sql(`SELECT count(*)::int AS n FROM budget_usage_records WHERE request_id = 'bad-tags'`);
      expect(rows[0].n).toBe(0);
    });
  });
});
