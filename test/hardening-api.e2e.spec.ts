import { mapPostgresError } from '../src/common/errors/postgres-errors';
import { expectProblem } from './setup/problem';
import { budgetMaker, checkBudget, recordUsage } from './setup/budgets';
import { createTestApp, type TestApp, type TestResponse } from './setup/test-app';

/**
 * Issue 11, the answers found by probing the service from outside (SPEC §3, §6, §10, §12.1):
 * wrong decisions after a budget changed, instants with large offsets, odd bodies that made 500s,
 * weak ETags, lone surrogates, and the OpenAPI document's servers.
 */

const API = '/api/v1';
const BUDGETS = `${API}/budgets`;

const fieldsOf = (res: TestResponse): string[] => (res.body?.errors ?? []).map((e: { field: string }) => e.field);

const cursorOf = (key: unknown[]) => Buffer.from(JSON.stringify(key)).toString('base64url');

const makeBudget = budgetMaker(() => t, 'Hardening API');
let t: TestApp;

describe('hardening: wrong answers and 500s found by probing (issue 11)', () => {
  const createBudget = (patch: Record<string, unknown> = {}) =>
    makeBudget<{ id: string; scopeId: string; version: number; startDate: string; endDate: string | null }>(patch);

  const record = (budgetId: string, amount: number | string, extra: Record<string, unknown> = {}) =>
    recordUsage(t, budgetId, amount, extra);
  const check = (budgetId: string, body: Record<string, unknown>) => checkBudget(t, budgetId, body);

  beforeAll(async () => {
    t = await createTestApp();
  });

  afterAll(async () => {
    await t.close();
  });

  describe('1. the alerts a check considers are those whose current threshold is reached', () => {
    it('a fired block-all alert stops blocking once the limit is raised past it', async () => {
      const budget = await createBudget({ alerts: [{ id: 'stop-all', threshold: 100, actions: ['block-all'] }] });
      await record(budget.id, 100);
      const blocked = await check(budget.id, { estimatedCost: 1 });
      expect(blocked).toEqual(expect.objectContaining({ canProceed: false, rule: 'block-all' }));

      expect((await t.request('PUT', `${BUDGETS}/${budget.id}`, { amount: 1000 })).status).toBe(200);
      const status = (await t.request('GET', `${BUDGETS}/${budget.id}/status`)).body;
      expect(status).toEqual(expect.objectContaining({ percentUsed: 10, status: 'normal' }));
      const after = await check(budget.id, { estimatedCost: 1 });
      expect(after).toEqual(expect.objectContaining({ canProceed: true, rule: 'allowed', percentUsedAfter: 10.1 }));
      expect(after.reason).toBeUndefined();
    });

    it("a fired require-approval alert stops applying once its threshold is raised past the spend", async () => {
      const budget = await createBudget({ alerts: [{ id: 'ask', threshold: 50, actions: ['require-approval'] }] });
      await record(budget.id, 60);
      expect(await check(budget.id, { estimatedCost: 1 })).toEqual(expect.objectContaining({ canProceed: false, requiresApproval: true }));

      const raised = await t.request('PUT', `${BUDGETS}/${budget.id}`, { alerts: [{ id: 'ask', threshold: 80, actions: ['require-approval'] }] });
      expect(raised.status).toBe(200);
      expect(await check(budget.id, { estimatedCost: 1 })).toEqual(
        expect.objectContaining({ canProceed: true, requiresApproval: false, rule: 'allowed' }),
      );
      // Reaching the new threshold applies it again.
      expect(await check(budget.id, { estimatedCost: 20 })).toEqual(expect.objectContaining({ canProceed: false, requiresApproval: true }));
    });
  });

  describe('2. auto-downgrade is one step', () => {
    it('gpt-4 → gpt-4o → gpt-4o-mini: suggestedModel, reason and suggestedActions all name gpt-4o', async () => {
      const budget = await createBudget({
        alerts: [{ threshold: 50, actions: ['auto-downgrade'] }],
        modelPolicy: { downgrades: { 'gpt-4': 'gpt-4o', 'gpt-4o': 'gpt-4o-mini' } },
      });
      await record(budget.id, 60);
      const res = await check(budget.id, { estimatedCost: 1, modelId: 'gpt-4' });
      expect(res).toEqual(expect.objectContaining({ canProceed: true, rule: 'auto-downgrade', suggestedModel: 'gpt-4o' }));
      expect(res.reason).toMatch(/downgrade gpt-4 to gpt-4o\b(?!-)/);
      expect(res.suggestedActions).toEqual([expect.objectContaining({ type: 'auto-downgrade', model: 'gpt-4o' })]);
      // The same one step on the integration endpoint.
      const integration = await t.request('POST', `${API}/integration/check-constraints`, {
        teamId: budget.scopeId, estimatedCost: 1, currency: 'USD', modelId: 'gpt-4',
      });
      expect(integration.status).toBe(200);
      expect(integration.body.suggestedModel).toBe('gpt-4o');
      expect(integration.body.suggestedActions).toEqual([expect.objectContaining({ type: 'auto-downgrade', model: 'gpt-4o' })]);
    });

    it('integration: when another budget restricts the downgrade, every part of the answer names the model all accept', async () => {
      await createBudget({
        scopeType: 'team', scopeId: 'hard-dg-team', amount: 1000,
        alerts: [{ threshold: 1, actions: ['restrict-models'] }],
        modelPolicy: { restrictedModels: ['gpt-4'], downgrades: { 'gpt-4': 'gpt-4o' } },
      });
      await createBudget({
        scopeType: 'project', scopeId: 'hard-dg-proj', amount: 1000,
        alerts: [{ threshold: 1, actions: ['restrict-models'] }],
        modelPolicy: { restrictedModels: ['gpt-4o'], downgrades: { 'gpt-4o': 'gpt-4o-mini' } },
      });
      const res = await t.request('POST', `${API}/integration/check-constraints`, {
        teamId: 'hard-dg-team', projectId: 'hard-dg-proj', estimatedCost: 20, currency: 'USD', modelId: 'gpt-4',
      });
      expect(res.status).toBe(200);
      expect(res.body.canProceed).toBe(false);
      expect(res.body.suggestedModel).toBe('gpt-4o-mini');
      expect(res.body.reason).toMatch(/gpt-4o-mini/);
      const named = res.body.suggestedActions.filter((a: { model?: string }) => a.model).map((a: { model: string }) => a.model);
      expect(named.length).toBeGreaterThan(0);
      expect(new Set(named)).toEqual(new Set(['gpt-4o-mini']));
    });
  });

  describe('4. integration checks ignore budgets that are not active', () => {
    it('an ended user budget in another currency is no 422: the check answers and the usage is recorded', async () => {
      const team = await createBudget({ scopeType: 'team', scopeId: 'hard-cur-team', amount: 1000 });
      const ended = await createBudget({
        scopeType: 'user', scopeId: 'hard-cur-user', currency: 'EUR', amount: 50,
        startDate: '2024-01-01T00:00:00Z', endDate: '2024-06-01T00:00:00Z',
      });
      const scopes = { userId: 'hard-cur-user', teamId: 'hard-cur-team' };
      const checked = await t.request('POST', `${API}/integration/check-constraints`, { ...scopes, estimatedCost: 5, currency: 'USD' });
      expect(checked.status).toBe(200);
      expect(checked.body.canProceed).toBe(true);
      const byId = new Map(checked.body.results.map((r: { budgetId: string; rule: string }) => [r.budgetId, r.rule]));
      expect(byId.get(team.id)).toBe('allowed');
      expect([undefined, 'inactive']).toContain(byId.get(ended.id));

      const used = await t.request('POST', `${API}/integration/usage`, { ...scopes, amount: 5, currency: 'USD', requestId: 'hard-cur-1' });
      expect(used.status).toBe(201);
      expect(used.body.records.map((r: { budgetId: string }) => r.budgetId)).toEqual([team.id]);
    });

    it("an ended budget's active parent, reached only through it, does not count either", async () => {
      const parent = await createBudget({ scopeType: 'organization', scopeId: 'hard-cur-org', currency: 'EUR', amount: 1000 });
      await createBudget({
        scopeType: 'user', scopeId: 'hard-cur-user-2', currency: 'EUR', amount: 50, parentId: parent.id,
        startDate: '2024-01-01T00:00:00Z', endDate: '2024-06-01T00:00:00Z',
      });
      await createBudget({ scopeType: 'team', scopeId: 'hard-cur-team-2', amount: 1000 });
      const scopes = { userId: 'hard-cur-user-2', teamId: 'hard-cur-team-2' };
      const checked = await t.request('POST', `${API}/integration/check-constraints`, { ...scopes, estimatedCost: 5, currency: 'USD' });
      expect(checked.status).toBe(200);
      expect(checked.body.results.map((r: { budgetId: string }) => r.budgetId)).not.toContain(parent.id);
      const used = await t.request('POST', `${API}/integration/usage`, { ...scopes, amount: 5, currency: 'USD', requestId: 'hard-cur-2' });
      expect(used.status).toBe(201);
    });

    it('an active budget in another currency is still a 422', async () => {
      await createBudget({ scopeType: 'user', scopeId: 'hard-cur-user-3', currency: 'EUR', amount: 50 });
      expectProblem(
        await t.request('POST', `${API}/integration/check-constraints`, { userId: 'hard-cur-user-3', estimatedCost: 5, currency: 'USD' }),
        422,
      );
    });
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

  describe('10. small ones', () => {
    it('b. PUT {warningThreshold: 95} against a stored critical 90 names warningThreshold; the opposite names criticalThreshold', async () => {
      const budget = await createBudget();
      const warning = await t.request('PUT', `${BUDGETS}/${budget.id}`, { warningThreshold: 95 });
      expectProblem(warning, 400);
      expect(fieldsOf(warning)).toEqual(['warningThreshold']);
      const critical = await t.request('PUT', `${BUDGETS}/${budget.id}`, { criticalThreshold: 70 });
      expectProblem(critical, 400);
      expect(fieldsOf(critical)).toEqual(['criticalThreshold']);
      // A create that gives only one threshold conflicts with the other's default: the given one is named.
      const created = await t.request('POST', BUDGETS, {
        name: 'Threshold budget', scopeType: 'team', scopeId: 'hard-thr', amount: 10, currency: 'USD', period: 'monthly',
        startDate: '2025-01-01T00:00:00Z', warningThreshold: 95,
      });
      expectProblem(created, 400);
      expect(fieldsOf(created)).toEqual(['warningThreshold']);
      expect((await t.request('GET', `${BUDGETS}/${budget.id}`)).body).toEqual(
        expect.objectContaining({ warningThreshold: 75, criticalThreshold: 90, version: 1 }),
      );
    });

    it('c. a weak ETag in If-Match is refused with 412 and changes nothing', async () => {
      const budget = await createBudget();
      for (const weak of ['W/"1"', ' W/"1" ']) {
        expectProblem(await t.request('PUT', `${BUDGETS}/${budget.id}`, { amount: 50 }, { 'if-match': weak }), 412);
      }
      expect((await t.request('GET', `${BUDGETS}/${budget.id}`)).body).toEqual(expect.objectContaining({ amount: 100, version: 1 }));
      expect((await t.request('PUT', `${BUDGETS}/${budget.id}`, { amount: 50 }, { 'if-match': '"1"' })).status).toBe(200);
    });

    describe('d. a lone UTF-16 surrogate is refused with 400 naming the field, nothing stored', () => {
      const budgetBody = {
        name: 'Surrogate budget', scopeType: 'team', scopeId: 'hard-sur', amount: 10, currency: 'USD', period: 'monthly',
        startDate: '2025-01-01T00:00:00Z',
      };
      it.each([
        ['name (high surrogate)', { name: 'x\ud800y' }, 'name'],
        ['description (low surrogate)', { description: '\udc00' }, 'description'],
        ['a notification channel of an alert', { alerts: [{ threshold: 50, actions: ['notify'], notificationChannels: ['email', 'sl\ud83dck'] }] }, 'alerts.0.notificationChannels'],
        ['a metadata value, nested', { metadata: { a: { b: ['\ud800'] } } }, 'metadata'],
        ['a metadata key', { metadata: { 'k\udfff': 1 } }, 'metadata'],
        ['a downgrade target', { modelPolicy: { downgrades: { 'gpt-4': 'gpt\ud800' } } }, 'modelPolicy.downgrades.gpt-4'],
      ])('POST /budgets with %s', async (_title, patch, field) => {
        const res = await t.request('POST', BUDGETS, { ...budgetBody, ...patch });
        expectProblem(res, 400);
        expect(fieldsOf(res)).toEqual([field]);
      });

      it('a well-formed pair (an emoji) is fine and stored as sent', async () => {
        const res = await t.request('POST', BUDGETS, { ...budgetBody, scopeId: 'hard-sur-ok', name: 'Budget 😀' });
        expect(res.status).toBe(201);
        expect(res.body.name).toBe('Budget 😀');
      });

      it('usage, batch records and integration bodies too', async () => {
        const budget = await createBudget();
        const single = await t.request('POST', `${BUDGETS}/${budget.id}/usage`, { amount: 1, currency: 'USD', description: '\ud800' });
        expectProblem(single, 400);
        expect(fieldsOf(single)).toEqual(['description']);
        const batch = await t.request('POST', `${BUDGETS}/${budget.id}/usage/batch`, {
          records: [{ amount: 1, currency: 'USD' }, { amount: 1, currency: 'USD', source: 'a\udc00' }],
        });
        expectProblem(batch, 400);
        expect(fieldsOf(batch)).toEqual(['records.1.source']);
        const integration = await t.request('POST', `${API}/integration/usage`, {
          teamId: budget.scopeId, amount: 1, currency: 'USD', requestId: 'r\ud800',
        });
        expectProblem(integration, 400);
        expect(fieldsOf(integration)).toEqual(['requestId']);
        const [stored] = await t.sql(`SELECT count(*)::int AS n FROM budget_usage_records WHERE budget_id = $1`, [budget.id]);
        expect(stored.n).toBe(0);
      });
    });
  });

  describe('instants with any RFC 3339 offset are normalised to UTC (§12.1), never a 500', () => {
    it('startDate and endDate at +16:00 and -23:59 are stored and answered in UTC', async () => {
      const created = await t.request('POST', BUDGETS, {
        name: 'Offset budget', scopeType: 'team', scopeId: 'hard-offset', amount: 10, currency: 'USD', period: 'monthly',
        startDate: '2026-01-01T00:00:00+16:00', endDate: '2026-06-01T00:00:00-23:59',
      });
      expect(created.status).toBe(201);
      expect(created.body.startDate).toBe('2025-12-31T08:00:00.000Z');
      expect(created.body.endDate).toBe('2026-06-01T23:59:00.000Z');
      const updated = await t.request('PUT', `${BUDGETS}/${created.body.id}`, { startDate: '2026-02-01T00:00:00.5+23:59' });
      expect(updated.status).toBe(200);
      expect(updated.body.startDate).toBe('2026-01-31T00:01:00.500Z');
      // Every window of this UTC monthly budget starts at the anchor's time of day.
      const status = await t.request('GET', `${BUDGETS}/${created.body.id}/status`);
      expect(status.status).toBe(200);
      expect(status.body.periodStart).toMatch(/T00:01:00\.500Z$/);
    });

    it('occurredAt at +16:00 is recorded in UTC; history and summary accept from/to at +16:00', async () => {
      const budget = await createBudget();
      const recorded = await record(budget.id, 2, { occurredAt: '2025-03-10T00:00:00+16:00' });
      expect(recorded.occurredAt).toBe('2025-03-09T08:00:00.000Z');

      const history = await t.request('GET', `${BUDGETS}/${budget.id}/usage?from=${encodeURIComponent('2025-03-09T23:59:00+16:00')}&to=${encodeURIComponent('2025-03-10T00:01:00+16:00')}`);
      expect(history.status).toBe(200);
      expect(history.body.data.map((r: { id: string }) => r.id)).toEqual([recorded.id]);

      const summary = await t.request('GET', `${BUDGETS}/${budget.id}/usage/summary?from=${encodeURIComponent('2025-03-01T00:00:00+16:00')}&to=${encodeURIComponent('2025-04-01T00:00:00-16:00')}`);
      expect(summary.status).toBe(200);
      expect(summary.body).toEqual(expect.objectContaining({ from: '2025-02-28T08:00:00.000Z', to: '2025-04-01T16:00:00.000Z', total: 2, count: 1 }));

      const integration = await t.request('POST', `${API}/integration/usage`, {
        teamId: budget.scopeId, amount: 1, currency: 'USD', requestId: 'hard-offset-1', occurredAt: '2025-03-11T00:00:00+16:00',
      });
      expect(integration.status).toBe(201);
      expect(integration.body.records[0].occurredAt).toBe('2025-03-10T08:00:00.000Z');
    });

    it.each([
      ['an offset of 24 hours', '2026-01-01T00:00:00+24:00'],
      ['an offset with 60 minutes', '2026-01-01T00:00:00+10:60'],
      ['a UTC instant before year 1', '0001-01-01T00:00:00+16:00'],
      ['a UTC instant after year 9999', '9999-12-31T23:00:00-16:00'],
      ['no zone', '2026-01-01T00:00:00'],
    ])('%s → 400 naming the field (startDate, endDate, occurredAt, from, to)', async (_title, instant) => {
      const budget = await createBudget();
      const create = await t.request('POST', BUDGETS, {
        name: 'Bad instant', scopeType: 'team', scopeId: 'hard-bad-instant', amount: 1, currency: 'USD', period: 'monthly', startDate: instant,
      });
      expectProblem(create, 400);
      expect(fieldsOf(create)).toEqual(['startDate']);
      const update = await t.request('PUT', `${BUDGETS}/${budget.id}`, { endDate: instant });
      expectProblem(update, 400);
      expect(fieldsOf(update)).toEqual(['endDate']);
      const usage = await t.request('POST', `${BUDGETS}/${budget.id}/usage`, { amount: 1, currency: 'USD', occurredAt: instant });
      expectProblem(usage, 400);
      expect(fieldsOf(usage)).toEqual(['occurredAt']);
      const history = await t.request('GET', `${BUDGETS}/${budget.id}/usage?from=${encodeURIComponent(instant)}`);
      expectProblem(history, 400);
      expect(fieldsOf(history)).toEqual(['from']);
      const summary = await t.request('GET', `${BUDGETS}/${budget.id}/usage/summary?to=${encodeURIComponent(instant)}`);
      expectProblem(summary, 400);
      expect(fieldsOf(summary)).toEqual(['to']);
    });

    it('a cursor carrying an instant at +16:00 is normalised; a malformed one is a 400 naming cursor', async () => {
      const budget = await createBudget();
      const [a] = [await record(budget.id, 1, { occurredAt: '2025-02-01T00:00:00Z' }), await record(budget.id, 1, { occurredAt: '2025-01-15T00:00:00Z' })];
      // Just after the first record in UTC, written at +16:00: the page below it is the second record.
      const tampered = cursorOf(['2025-02-01T16:00:00.000001+16:00', 'ffffffff-ffff-4fff-bfff-ffffffffffff']);
      const page = await t.request('GET', `${BUDGETS}/${budget.id}/usage?cursor=${tampered}`);
      expect(page.status).toBe(200);
      expect(page.body.data.map((r: { id: string }) => r.id)[0]).toBe(a.id);

      const list = await t.request('GET', `${BUDGETS}?cursor=${cursorOf(['2026-01-01T00:00:00+16:00', '00000000-0000-4000-8000-000000000000'])}`);
      expect(list.status).toBe(200);

      const id = '00000000-0000-4000-8000-000000000000';
      const malformed = [
        ['2026-01-01T00:00:00+24:00', id], ['2026-13-01T00:00:00Z', id], ['0001-01-01T00:00:00+01:00', id], ['banana', id],
        ['2026-01-01T00:00:00Z', 'not-a-uuid'],
      ];
      for (const key of malformed) {
        const res = await t.request('GET', `${BUDGETS}/${budget.id}/usage?cursor=${cursorOf(key)}`);
        expectProblem(res, 400);
        expect(fieldsOf(res)).toEqual(['cursor']);
        const budgets = await t.request('GET', `${BUDGETS}?cursor=${cursorOf(key)}`);
        expectProblem(budgets, 400);
        expect(fieldsOf(budgets)).toEqual(['cursor']);
      }
    });

    it('SQLSTATE 22009 (and the rest of the date/time family) maps to 400, not 500', () => {
      for (const code of ['22009', '22007', '22008']) {
        const mapped = mapPostgresError({ code, message: 'time zone displacement out of range' });
        expect(mapped?.status).toBe(400);
      }
    });
  });

  describe('odd bodies that made 500s', () => {
    it.each([
      ['an array', [{ amount: 1, currency: 'USD' }]],
      ['a string', 'record'],
      ['a number', 7],
      ['null', null],
    ])('POST usage/batch whose records[0] is %s → 400 naming records.0', async (_title, first) => {
      const budget = await createBudget();
      const res = await t.request('POST', `${BUDGETS}/${budget.id}/usage/batch`, { records: [first, { amount: 1, currency: 'USD' }] });
      expectProblem(res, 400);
      expect(res.body.errors).toEqual([{ field: 'records.0', message: 'must be a JSON object' }]);
      const [stored] = await t.sql(`SELECT count(*)::int AS n FROM budget_usage_records WHERE budget_id = $1`, [budget.id]);
      expect(stored.n).toBe(0);
    });

    it.each([' 5 ', '5 ', '\t5', '5\n', ''])('a padded or empty decimal string %j is a 400 naming the field, on every decimal input', async (padded) => {
      const budget = await createBudget();
      const checked = await t.request('POST', `${BUDGETS}/${budget.id}/check-constraints`, { estimatedCost: padded });
      expectProblem(checked, 400);
      expect(fieldsOf(checked)).toEqual(['estimatedCost']);
      const integration = await t.request('POST', `${API}/integration/check-constraints`, { teamId: budget.scopeId, estimatedCost: padded, currency: 'USD' });
      expectProblem(integration, 400);
      expect(fieldsOf(integration)).toEqual(['estimatedCost']);
      const usage = await t.request('POST', `${BUDGETS}/${budget.id}/usage`, { amount: padded, currency: 'USD' });
      expectProblem(usage, 400);
      expect(fieldsOf(usage)).toEqual(['amount']);
      const update = await t.request('PUT', `${BUDGETS}/${budget.id}`, { amount: padded });
      expectProblem(update, 400);
      expect(fieldsOf(update)).toEqual(['amount']);
    });

    it('the same values unpadded are accepted', async () => {
      const budget = await createBudget();
      expect(await check(budget.id, { estimatedCost: '5' })).toEqual(expect.objectContaining({ estimatedCost: 5 }));
      expect((await record(budget.id, '5')).amount).toBe(5);
    });
  });

  describe('OpenAPI', () => {
    it('/docs-json names a server', async () => {
      const res = await t.request('GET', '/docs-json');
      expect(res.status).toBe(200);
      expect(Array.isArray(res.body.servers)).toBe(true);
      expect(res.body.servers.length).toBeGreaterThan(0);
      for (const server of res.body.servers) expect(server.url).toMatch(/^(\/|https?:\/\/)/);
    });
  });

  describe('malformed JSON', () => {
    it.each([['{', 'not valid JSON'], ['nul', 'not valid JSON'], ['', 'empty']])('body %j → 400 MALFORMED_JSON', async (payload) => {
      const res = await t.app.inject({
        method: 'POST',
        url: BUDGETS,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${t.keys.admin}` },
        payload,
      });
      const answer = { status: res.statusCode, headers: res.headers as Record<string, string>, body: res.json() };
      expectProblem(answer, 400);
      expect(answer.body.code).toBe('MALFORMED_JSON');
    });
  });
});
