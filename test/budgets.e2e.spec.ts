import { SEED_CREATE_BUDGET_EXAMPLE } from './setup/seed-examples';
import { BudgetRegistryService } from '../src/budget/budget-registry.service';
import { DomainError } from '../src/common/errors/domain-error';
import { createTestApp, type TestApp, type TestResponse } from './setup/test-app';
import { expectProblem } from './setup/problem';

/** SPEC §5 Budgets, §6 errors, §10 lists and ETags: the Budget endpoints through the real pipeline. */

const BUDGETS = '/api/v1/budgets';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const UNKNOWN_ID = '0b6d3f0e-9a51-4c55-8f39-6f7d2b1f4e21';

const base = (patch: Record<string, unknown> = {}) => ({
  name: 'Budget',
  scopeType: 'team',
  scopeId: 'team-default',
  amount: 1000,
  currency: 'USD',
  period: 'monthly',
  startDate: '2025-01-01T00:00:00Z',
  ...patch,
});


describe('Budgets API', () => {
  let t: TestApp;

  const create = async (patch: Record<string, unknown> = {}) => {
    const res = await t.request('POST', BUDGETS, base(patch));
    expect(res.status).toBe(201);
    return res.body;
  };

  beforeAll(async () => {
    t = await createTestApp();
  });

  afterAll(async () => {
    await t.close();
  });

  describe('the seed CreateBudgetRequest example', () => {
    let created: TestResponse;

    beforeAll(async () => {
      created = await t.request('POST', BUDGETS, SEED_CREATE_BUDGET_EXAMPLE);
    });

    it('→ 201 with every field and the defaults', () => {
      expect(created.status).toBe(201);
      expect(String(created.headers['content-type'])).toMatch(/^application\/json/);
      expect(created.body).toEqual(
        expect.objectContaining({
          id: expect.stringMatching(UUID),
          name: 'Q1 2025 AI Development Budget',
          description: 'Budget for AI development activities',
          scopeType: 'team',
          scopeId: 'team-engineering-ai',
          parentId: null,
          amount: 5000,
          currency: 'USD',
          period: 'quarterly',
          customPeriodDays: null,
          startDate: '2025-01-01T00:00:00.000Z',
          endDate: null,
          recurring: true,
          timezone: 'UTC',
          enforcement: 'hard',
          warningThreshold: 75,
          criticalThreshold: 90,
          alerts: [
            {
              id: expect.any(String),
              threshold: 80,
              type: 'actual',
              actions: ['notify', 'restrict-models'],
              notificationChannels: ['email', 'slack'],
            },
          ],
          modelPolicy: null,
          metadata: null,
          // SPEC §5: the name of the API key that created it (the harness sends the key "test-admin").
          createdBy: 'test-admin',
          createdAt: expect.stringMatching(ISO),
          updatedAt: expect.stringMatching(ISO),
          version: 1,
        }),
      );
      expect(created.body.alerts[0].id.length).toBeGreaterThan(0);
    });

    it('answers with ETag "1"', () => {
      expect(created.headers.etag).toBe('"1"');
    });

    it('GET returns the same budget and ETag', async () => {
      const res = await t.request('GET', `${BUDGETS}/${created.body.id}`);
      expect(res.status).toBe(200);
      expect(res.body).toEqual(created.body);
      expect(res.headers.etag).toBe('"1"');
    });

    it('is stored with the generated alert id', async () => {
      const [row] = await t.sql('SELECT alerts, amount::numeric = 5000 AS exact FROM budget_definitions WHERE id = $1', [
        created.body.id,
      ]);
      expect(row.exact).toBe(true);
      expect(row.alerts[0].id).toBe(created.body.alerts[0].id);
    });
  });

  it('keeps a client-chosen alert id and defaults the alert type', async () => {
    const budget = await create({ alerts: [{ id: 'eighty-percent', threshold: 80, actions: ['notify'] }] });
    expect(budget.alerts).toEqual([
      { id: 'eighty-percent', threshold: 80, type: 'actual', actions: ['notify'], notificationChannels: [] },
    ]);
  });

  it('stores every optional field as sent', async () => {
    const budget = await create({
      description: null,
      period: 'custom',
      customPeriodDays: 10,
      endDate: '2026-01-01T00:00:00+01:00',
      recurring: false,
      timezone: 'Europe/Berlin',
      enforcement: 'soft',
      warningThreshold: 50.5,
      criticalThreshold: 80.25,
      alerts: [{ threshold: 120, type: 'forecast', actions: ['auto-downgrade'], notificationChannels: ['webhook'] }],
      modelPolicy: { restrictedModels: ['gpt-4'], downgrades: { 'gpt-4': 'gpt-4o-mini' } },
      metadata: { costCenter: 'cc-42', tags: ['ai'] },
    });
    expect(budget).toEqual(
      expect.objectContaining({
        description: null,
        period: 'custom',
        customPeriodDays: 10,
        endDate: '2025-12-31T23:00:00.000Z',
        recurring: false,
        timezone: 'Europe/Berlin',
        enforcement: 'soft',
        warningThreshold: 50.5,
        criticalThreshold: 80.25,
        modelPolicy: { restrictedModels: ['gpt-4'], downgrades: { 'gpt-4': 'gpt-4o-mini' } },
        metadata: { costCenter: 'cc-42', tags: ['ai'] },
      }),
    );
    expect(budget.alerts[0]).toEqual(
      expect.objectContaining({ threshold: 120, type: 'forecast', actions: ['auto-downgrade'], notificationChannels: ['webhook'] }),
    );
  });

  describe('PUT /budgets/:id', () => {
    it('applies a partial update, keeps the other fields and increments version', async () => {
      const before = await create({ name: 'Before', description: 'kept', scopeId: 'team-put' });
      const res = await t.request('PUT', `${BUDGETS}/${before.id}`, { name: 'After', amount: '1500.25' });
      expect(res.status).toBe(200);
      expect(res.headers.etag).toBe('"2"');
      const { name, amount, version, updatedAt, ...rest } = res.body;
      expect({ name, amount, version }).toEqual({ name: 'After', amount: 1500.25, version: 2 });
      const { name: _n, amount: _a, version: _v, updatedAt: oldUpdatedAt, ...oldRest } = before;
      expect(rest).toEqual(oldRest);
      expect(Date.parse(updatedAt)).toBeGreaterThanOrEqual(Date.parse(oldUpdatedAt));
      const get = await t.request('GET', `${BUDGETS}/${before.id}`);
      expect(get.body).toEqual(res.body);
      expect(get.headers.etag).toBe('"2"');
    });

    it('switches to a custom period and back, clearing customPeriodDays', async () => {
      const budget = await create();
      const custom = await t.request('PUT', `${BUDGETS}/${budget.id}`, { period: 'custom', customPeriodDays: 14 });
      expect(custom.status).toBe(200);
      expect(custom.body).toEqual(expect.objectContaining({ period: 'custom', customPeriodDays: 14, version: 2 }));
      const monthly = await t.request('PUT', `${BUDGETS}/${budget.id}`, { period: 'monthly' });
      expect(monthly.status).toBe(200);
      expect(monthly.body).toEqual(expect.objectContaining({ period: 'monthly', customPeriodDays: null, version: 3 }));
    });

    it('clears nullable fields with null', async () => {
      const budget = await create({ description: 'x', endDate: '2026-01-01T00:00:00Z', metadata: { a: 1 }, modelPolicy: { restrictedModels: ['m'] } });
      const res = await t.request('PUT', `${BUDGETS}/${budget.id}`, { description: null, endDate: null, metadata: null, modelPolicy: null });
      expect(res.status).toBe(200);
      expect(res.body).toEqual(expect.objectContaining({ description: null, endDate: null, metadata: null, modelPolicy: null }));
    });

    it('If-Match: stale → 412, current ETag → 200, bare version → 200, * → 200, garbage → 400', async () => {
      const budget = await create({ scopeId: 'team-if-match' });
      const url = `${BUDGETS}/${budget.id}`;
      expect((await t.request('PUT', url, { amount: 900 })).body.version).toBe(2);

      const stale = await t.request('PUT', url, { amount: 800 }, { 'if-match': '"1"' });
      expectProblem(stale, 412);
      expect(stale.body.detail).toMatch(/2/);
      expect((await t.request('GET', url)).body).toEqual(expect.objectContaining({ amount: 900, version: 2 }));

      const current = await t.request('PUT', url, { amount: 800 }, { 'if-match': '"2"' });
      expect(current.status).toBe(200);
      expect(current.body).toEqual(expect.objectContaining({ amount: 800, version: 3 }));
      expect(current.headers.etag).toBe('"3"');

      const bare = await t.request('PUT', url, { amount: 700 }, { 'if-match': '3' });
      expect(bare.status).toBe(200);
      expect(bare.body.version).toBe(4);

      const staleBare = await t.request('PUT', url, { amount: 600 }, { 'if-match': '3' });
      expectProblem(staleBare, 412);

      const any = await t.request('PUT', url, { amount: 600 }, { 'if-match': '*' });
      expect(any.status).toBe(200);
      expect(any.body.version).toBe(5);

      for (const garbage of ['banana', '"v5"', '5.0', '-5', '"5"x']) {
        const bad = await t.request('PUT', url, { amount: 500 }, { 'if-match': garbage });
        expectProblem(bad, 400);
      }
      expect((await t.request('GET', url)).body).toEqual(expect.objectContaining({ amount: 600, version: 5 }));
    });

    it('If-Match on an unknown budget → 404', async () => {
      expectProblem(await t.request('PUT', `${BUDGETS}/${UNKNOWN_ID}`, { amount: 5 }, { 'if-match': '"1"' }), 404);
    });

    it('unknown id → 404, invalid uuid → 400', async () => {
      expectProblem(await t.request('PUT', `${BUDGETS}/${UNKNOWN_ID}`, { name: 'x' }), 404);
      const bad = await t.request('PUT', `${BUDGETS}/not-a-uuid`, { name: 'x' });
      expectProblem(bad, 400);
      expect(bad.body.errors.map((e: { field: string }) => e.field)).toContain('id');
    });
  });

  describe('DELETE /budgets/:id', () => {
    it('→ 204, then GET 404, PUT 404, absent from lists; the row is kept (soft delete)', async () => {
      const budget = await create({ scopeId: 'team-delete' });
      const url = `${BUDGETS}/${budget.id}`;
      const del = await t.request('DELETE', url);
      expect(del.status).toBe(204);
      expect(del.body).toBeUndefined();

      expectProblem(await t.request('GET', url), 404);
      expectProblem(await t.request('PUT', url, { name: 'ghost' }), 404);
      const list = await t.request('GET', `${BUDGETS}?scopeId=team-delete`);
      expect(list.body.data).toEqual([]);
      const all = await t.request('GET', `${BUDGETS}?limit=500`);
      expect(all.body.data.map((b: { id: string }) => b.id)).not.toContain(budget.id);
      expect((await t.request('GET', `${BUDGETS}/scope/team/team-delete`)).body).toEqual([]);

      const [row] = await t.sql('SELECT deleted_at IS NOT NULL AS deleted FROM budget_definitions WHERE id = $1', [budget.id]);
      expect(row.deleted).toBe(true);
    });

    it('DELETE of an already deleted budget → 404', async () => {
      const budget = await create({ scopeId: 'team-delete-twice' });
      expect((await t.request('DELETE', `${BUDGETS}/${budget.id}`)).status).toBe(204);
      expectProblem(await t.request('DELETE', `${BUDGETS}/${budget.id}`), 404);
    });

    it('DELETE of an unknown id → 404', async () => {
      expectProblem(await t.request('DELETE', `${BUDGETS}/${UNKNOWN_ID}`), 404);
    });

    it('DELETE with an invalid uuid → 400', async () => {
      expectProblem(await t.request('DELETE', `${BUDGETS}/123`), 400);
    });

    it('with live children → 409; once the child is deleted → 204', async () => {
      const parent = await create({ scopeType: 'organization', scopeId: 'org-delete' });
      const child = await create({ scopeId: 'team-delete-child', parentId: parent.id, amount: 10 });
      const refused = await t.request('DELETE', `${BUDGETS}/${parent.id}`);
      expectProblem(refused, 409);
      expect((await t.request('GET', `${BUDGETS}/${parent.id}`)).status).toBe(200);
      expect((await t.request('DELETE', `${BUDGETS}/${child.id}`)).status).toBe(204);
      expect((await t.request('DELETE', `${BUDGETS}/${parent.id}`)).status).toBe(204);
    });
  });

  describe('GET /budgets', () => {
    it('filters by scopeType, scopeId and parentId', async () => {
      const org = await create({ scopeType: 'organization', scopeId: 'org-filter', amount: 5000 });
      const teamA = await create({ scopeType: 'team', scopeId: 'team-filter-a', parentId: org.id });
      const teamB = await create({ scopeType: 'team', scopeId: 'team-filter-b', parentId: org.id });
      const user = await create({ scopeType: 'user', scopeId: 'team-filter-a', parentId: teamA.id, amount: 10 });

      const ids = (res: TestResponse) => res.body.data.map((b: { id: string }) => b.id).sort();
      const byScopeId = await t.request('GET', `${BUDGETS}?scopeId=team-filter-a`);
      expect(byScopeId.status).toBe(200);
      expect(ids(byScopeId)).toEqual([teamA.id, user.id].sort());
      expect(ids(await t.request('GET', `${BUDGETS}?scopeType=team&scopeId=team-filter-a`))).toEqual([teamA.id]);
      expect(ids(await t.request('GET', `${BUDGETS}?parentId=${org.id}`))).toEqual([teamA.id, teamB.id].sort());
      expect(ids(await t.request('GET', `${BUDGETS}?parentId=${teamA.id}&scopeType=user`))).toEqual([user.id]);
      const users = await t.request('GET', `${BUDGETS}?scopeType=user&limit=500`);
      expect(users.body.data.every((b: { scopeType: string }) => b.scopeType === 'user')).toBe(true);
      expect(ids(await t.request('GET', `${BUDGETS}?parentId=${UNKNOWN_ID}`))).toEqual([]);
    });

    it('bad filters → 400', async () => {
      expectProblem(await t.request('GET', `${BUDGETS}?scopeType=galaxy`), 400);
      expectProblem(await t.request('GET', `${BUDGETS}?parentId=nope`), 400);
      expectProblem(await t.request('GET', `${BUDGETS}?scopeId=${encodeURIComponent('has space')}`), 400);
      expectProblem(await t.request('GET', `${BUDGETS}?color=red`), 400);
    });

    it('pages with a cursor: 7 budgets, limit 3 → 3 + 3 + 1, no duplicates, nextCursor null at the end', async () => {
      const created: string[] = [];
      for (let i = 0; i < 7; i++) created.push((await create({ name: `Page ${i}`, scopeId: 'team-pages' })).id);

      const seen: string[] = [];
      const sizes: number[] = [];
      let cursor: string | null = null;
      do {
        const query: string = `${BUDGETS}?scopeId=team-pages&limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
        const page: TestResponse = await t.request('GET', query);
        expect(page.status).toBe(200);
        expect(Object.keys(page.body).sort()).toEqual(['data', 'nextCursor']);
        sizes.push(page.body.data.length);
        seen.push(...page.body.data.map((b: { id: string }) => b.id));
        cursor = page.body.nextCursor;
      } while (cursor !== null && sizes.length < 10);
      expect(sizes).toEqual([3, 3, 1]);
      expect(new Set(seen).size).toBe(7);
      expect(seen).toEqual(created);
    });

    it('pages correctly through budgets created in the same instant (ties broken by id)', async () => {
      await t.sql(
        `INSERT INTO budget_definitions (name, scope_type, scope_id, amount, currency, period, start_date, created_by)
         SELECT 'Tie ' || g, 'project', 'project-ties', 10, 'USD', 'daily', '2025-01-01Z', 'sql' FROM generate_series(1, 5) g`,
      );
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const query: string = `${BUDGETS}?scopeId=project-ties&limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
        const page: TestResponse = await t.request('GET', query);
        expect(page.status).toBe(200);
        seen.push(...page.body.data.map((b: { id: string }) => b.id));
        cursor = page.body.nextCursor;
        pages++;
      } while (cursor !== null && pages < 10);
      expect(pages).toBe(3);
      expect(new Set(seen).size).toBe(5);
      expect(seen).toEqual([...seen].sort());
    });

    it('defaults to 50 per page', async () => {
      for (let i = 0; i < 51; i++) {
        await t.sql(
          `INSERT INTO budget_definitions (name, scope_type, scope_id, amount, currency, period, start_date, created_by)
           VALUES ('Many', 'user', 'user-many', 10, 'USD', 'daily', '2025-01-01Z', 'sql')`,
        );
      }
      const page = await t.request('GET', `${BUDGETS}?scopeId=user-many`);
      expect(page.body.data).toHaveLength(50);
      expect(page.body.nextCursor).toEqual(expect.any(String));
    });

    it.each([
      ['a garbage cursor', 'cursor=not-a-cursor'],
      ['a cursor of the wrong shape', `cursor=${Buffer.from(JSON.stringify({ a: 1 })).toString('base64url')}`],
      ['a well-formed cursor with a bad timestamp', `cursor=${Buffer.from(JSON.stringify(['not-a-time', UNKNOWN_ID])).toString('base64url')}`],
      ['a well-formed cursor with a bad id', `cursor=${Buffer.from(JSON.stringify(['2025-01-01T00:00:00Z', 'x'])).toString('base64url')}`],
      ['limit 0', 'limit=0'],
      ['limit 501', 'limit=501'],
      ['limit -1', 'limit=-1'],
      ['limit 2.5', 'limit=2.5'],
      ['limit abc', 'limit=abc'],
    ])('%s → 400', async (_title, query) => {
      expectProblem(await t.request('GET', `${BUDGETS}?${query}`), 400);
    });

    it('a well-formed cursor with a NUL character → 400', async () => {
      const cursor = Buffer.from(JSON.stringify(['2025-01-01T00:00:00Z\u0000', UNKNOWN_ID])).toString('base64url');
      expectProblem(await t.request('GET', `${BUDGETS}?cursor=${cursor}`), 400);
    });

    it('limit 1 and 500 are accepted', async () => {
      expect((await t.request('GET', `${BUDGETS}?limit=1`)).body.data).toHaveLength(1);
      expect((await t.request('GET', `${BUDGETS}?limit=500`)).status).toBe(200);
    });
  });

  describe('GET /budgets/scope/:type/:id', () => {
    it('lists the live budgets of exactly that scope', async () => {
      const a = await create({ scopeType: 'project', scopeId: 'proj-scope', name: 'A' });
      const b = await create({ scopeType: 'project', scopeId: 'proj-scope', name: 'B' });
      await create({ scopeType: 'user', scopeId: 'proj-scope' });
      await create({ scopeType: 'project', scopeId: 'proj-scope-2' });
      const deleted = await create({ scopeType: 'project', scopeId: 'proj-scope' });
      await t.request('DELETE', `${BUDGETS}/${deleted.id}`);

      const res = await t.request('GET', `${BUDGETS}/scope/project/proj-scope`);
      expect(res.status).toBe(200);
      expect(res.body.map((x: { id: string }) => x.id)).toEqual([a.id, b.id]);
      expect(res.body[0]).toEqual(a);
    });

    it('an unknown scope → 200 []', async () => {
      const res = await t.request('GET', `${BUDGETS}/scope/team/nobody-here`);
      expect(res.status).toBe(200);
      expect(res.body).toEqual([]);
    });

    it('an invalid scope type or id → 400', async () => {
      expectProblem(await t.request('GET', `${BUDGETS}/scope/galaxy/x`), 400);
      expectProblem(await t.request('GET', `${BUDGETS}/scope/team/${encodeURIComponent('a b')}`), 400);
    });
  });

  describe('GET /budgets/:id', () => {
    it('unknown id → 404 problem+json', async () => {
      const res = await t.request('GET', `${BUDGETS}/${UNKNOWN_ID}`);
      expectProblem(res, 404);
      expect(res.body.instance).toBe(`${BUDGETS}/${UNKNOWN_ID}`);
    });

    it('invalid uuid → 400 naming id', async () => {
      const res = await t.request('GET', `${BUDGETS}/12345`);
      expectProblem(res, 400);
      expect(res.body.errors.map((e: { field: string }) => e.field)).toContain('id');
    });
  });

  describe('request errors are problem+json', () => {
    it('malformed JSON → 400', async () => {
      const res = await t.request('POST', BUDGETS, '{"name": "x",', { 'content-type': 'application/json' });
      expectProblem(res, 400);
      expect(await t.sql('SELECT 1 FROM budget_definitions WHERE name = $1', ['x'])).toHaveLength(0);
    });

    it('malformed JSON on PUT → 400', async () => {
      const budget = await create();
      expectProblem(await t.request('PUT', `${BUDGETS}/${budget.id}`, '{nope', { 'content-type': 'application/json' }), 400);
    });

    it('an empty JSON body → 400', async () => {
      expectProblem(await t.request('POST', BUDGETS, '', { 'content-type': 'application/json' }), 400);
    });

    it.each(['null', '[]', '"budget"', '42'])('a JSON body that is not an object (%s) → 400', async (payload) => {
      expectProblem(await t.request('POST', BUDGETS, payload, { 'content-type': 'application/json' }), 400);
    });

    it('text/plain body → 415', async () => {
      expectProblem(await t.request('POST', BUDGETS, JSON.stringify(base()), { 'content-type': 'text/plain' }), 415);
    });

    it('form body → 415', async () => {
      expectProblem(await t.request('POST', BUDGETS, 'name=x', { 'content-type': 'application/x-www-form-urlencoded' }), 415);
    });

    it('body over 1 MiB → 413', async () => {
      const huge = JSON.stringify(base({ description: 'd'.repeat(1024 * 1024 + 10) }));
      expectProblem(await t.request('POST', BUDGETS, huge, { 'content-type': 'application/json' }), 413);
    });

    it('unknown route → 404', async () => {
      expectProblem(await t.request('GET', '/api/v1/nothing-here'), 404);
      expectProblem(await t.request('GET', '/budgets'), 404);
      expectProblem(await t.request('POST', `${BUDGETS}/${UNKNOWN_ID}/nothing`, {}), 404);
    });
  });

  describe('in-process API (SPEC §11)', () => {
    let registry: BudgetRegistryService;

    beforeAll(() => {
      registry = t.app.get(BudgetRegistryService);
    });

    it('createBudget(plainObject, actor) works as the seed writes it', async () => {
      const budget = await registry.createBudget({ ...SEED_CREATE_BUDGET_EXAMPLE } as never, 'user-123');
      expect(budget).toEqual(
        expect.objectContaining({
          id: expect.stringMatching(UUID),
          name: 'Q1 2025 AI Development Budget',
          createdBy: 'user-123',
          timezone: 'UTC',
          enforcement: 'hard',
          warningThreshold: 75,
          criticalThreshold: 90,
          version: 1,
        }),
      );
      expect(budget.alerts[0]).toEqual(expect.objectContaining({ id: expect.any(String), type: 'actual' }));
      expect((await registry.getBudget(budget.id)).createdBy).toBe('user-123');
    });

    it('an invalid plain object throws a DomainError with status 400 and stores nothing', async () => {
      const [{ n: before }] = await t.sql('SELECT count(*)::int AS n FROM budget_definitions');
      const attempt = registry.createBudget({ ...SEED_CREATE_BUDGET_EXAMPLE, amount: -5, currency: 'usd', extra: 1 } as never, 'user-123');
      await expect(attempt).rejects.toBeInstanceOf(DomainError);
      const error = (await attempt.catch((e: unknown) => e)) as DomainError;
      expect(error.status).toBe(400);
      expect(error.errors?.map((e) => e.field)).toEqual(expect.arrayContaining(['amount', 'currency', 'extra']));
      const [{ n: after }] = await t.sql('SELECT count(*)::int AS n FROM budget_definitions');
      expect(after).toBe(before);
    });

    it('updateBudget, listBudgetsForScope, getBudgetHierarchy and deleteBudget work in-process', async () => {
      const budget = await registry.createBudget({ ...base({ scopeId: 'team-in-process' }) } as never, 'user-123');
      const updated = await registry.updateBudget(budget.id, { amount: '250.5' } as never);
      expect(updated).toEqual(expect.objectContaining({ amount: 250.5, version: 2 }));
      await expect(registry.updateBudget(budget.id, { amount: 1 } as never, { ifMatch: '"1"' })).rejects.toMatchObject({ status: 412 });
      expect((await registry.listBudgetsForScope('team', 'team-in-process')).map((b) => b.id)).toEqual([budget.id]);
      const hierarchy = await registry.getBudgetHierarchy('team', 'team-in-process');
      expect(hierarchy.budgets.map((f) => f.budget.id)).toEqual([budget.id]);
      await registry.deleteBudget(budget.id);
      await expect(registry.getBudget(budget.id)).rejects.toMatchObject({ status: 404 });
    });

    it('deleteBudget of an already deleted budget throws 404 in-process', async () => {
      const budget = await registry.createBudget({ ...base({ scopeId: 'team-in-process-3' }) } as never, 'user-123');
      await registry.deleteBudget(budget.id);
      await expect(registry.deleteBudget(budget.id)).rejects.toMatchObject({ status: 404 });
    });

    it('an invalid update in-process throws 400 and changes nothing', async () => {
      const budget = await registry.createBudget({ ...base({ scopeId: 'team-in-process-2' }) } as never, 'user-123');
      await expect(registry.updateBudget(budget.id, { name: null } as never)).rejects.toMatchObject({ status: 400 });
      await expect(registry.updateBudget(budget.id, { period: 'hourly' } as never)).rejects.toMatchObject({ status: 400 });
      expect((await registry.getBudget(budget.id)).version).toBe(1);
    });
  });
});
