import { Clock } from '../src/common/clock';
import { UsageEvents } from '../src/usage/usage.events';
import { budgetMaker, checkBudget, recordUsage } from './setup/budgets';
import { createTestApp, type TestApp } from './setup/test-app';
import { expectProblem } from './setup/problem';

/**
 * SPEC §3 (the decision ladder through HTTP), §2 "Alerts" (exactly once per budget, alert and
 * window, under concurrency), §5/§10 alerts and the RelayCore integration endpoints: issue 4
 * acceptance 2 and 3, plus representative ladder cases end to end.
 */

const API = '/api/v1';
const BUDGETS = `${API}/budgets`;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';

interface Budget {
  id: string;
  name: string;
  parentId: string | null;
}

const makeBudget = budgetMaker(() => t, 'Constraint');
let t: TestApp;

describe('Constraint checks, alerts and the integration (HTTP)', () => {
  const createBudget = (patch: Record<string, unknown> = {}) => makeBudget<Budget>(patch);

  const record = (budgetId: string, amount: number | string, extra: Record<string, unknown> = {}) =>
    recordUsage(t, budgetId, amount, extra);
  const check = (budgetId: string, body: Record<string, unknown>) => checkBudget(t, budgetId, body);

  const status = async (budgetId: string) => {
    const res = await t.request('GET', `${BUDGETS}/${budgetId}/status`);
    expect(res.status).toBe(200);
    return res.body;
  };

  /** Sends over real HTTP (keep-alive), as a RelayCore instance would. */
  const httpPost = async (path: string, body: unknown, key = t.keys.service) => {
    const res = await fetch(`${t.baseUrl}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as any };
  };

  const historyRows = (budgetId: string) =>
    t.sql(
      `SELECT id, alert_id, alert_type, threshold::text AS threshold, period_start, percent_used::numeric AS percent_used,
              amount::numeric AS amount
       FROM budget_alert_history WHERE budget_id = $1 ORDER BY triggered_at`,
      [budgetId],
    );

  beforeAll(async () => {
    t = await createTestApp({ listen: true });
  });

  afterEach(() => {
    jest.restoreAllMocks();
  });

  afterAll(async () => {
    await t.close();
  });

  describe('the ladder, end to end', () => {
    it('block-all: a request reaching the alert is refused; below it proceeds', async () => {
      const budget = await createBudget({ alerts: [{ id: 'stop', threshold: 50, actions: ['block-all'] }] });
      const below = await check(budget.id, { estimatedCost: 10 });
      expect(below.canProceed).toBe(true);
      const res = await check(budget.id, { estimatedCost: 60 });
      expect(res).toEqual(
        expect.objectContaining({ budgetId: budget.id, canProceed: false, requiresApproval: false, estimatedCost: 60, percentUsedAfter: 60 }),
      );
      expect(res.reason).toMatch(/50%/);
      expect(res.reason).toMatch(/block/i);
      expect(res.blockedBy).toEqual(expect.objectContaining({ budgetId: budget.id, remaining: 100 }));
      expect(res.suggestedModel).toBeUndefined();
    });

    it('require-approval: refused with requiresApproval and a request-approval suggestion', async () => {
      const budget = await createBudget({ alerts: [{ id: 'ask', threshold: 50, actions: ['require-approval'] }] });
      const res = await check(budget.id, { estimatedCost: 60 });
      expect(res).toEqual(expect.objectContaining({ canProceed: false, requiresApproval: true }));
      expect(res.reason).toMatch(/approval/i);
      expect(res.suggestedActions.map((a: { type: string }) => a.type)).toContain('request-approval');
    });

    it('restrict-models: a restricted model is refused with the downgrade as suggestedModel; the cheaper one proceeds', async () => {
      const budget = await createBudget({
        alerts: [{ id: 'restrict', threshold: 50, actions: ['restrict-models'] }],
        modelPolicy: { restrictedModels: ['gpt-4'], downgrades: { 'gpt-4': 'gpt-4o-mini' } },
      });
      await record(budget.id, 60);
      const refused = await check(budget.id, { estimatedCost: 1, modelId: 'gpt-4' });
      expect(refused).toEqual(expect.objectContaining({ canProceed: false, requiresApproval: false, suggestedModel: 'gpt-4o-mini' }));
      expect(refused.reason).toMatch(/gpt-4\b/);
      expect(refused.reason).toMatch(/gpt-4o-mini/);
      const cheaper = await check(budget.id, { estimatedCost: 1, modelId: 'gpt-4o-mini' });
      expect(cheaper.canProceed).toBe(true);
      expect(cheaper.suggestedModel).toBeUndefined();
    });

    it('hard limit: refused; the reason names limit, spend and estimate; blockedBy and resetsAt say which budget and when', async () => {
      const budget = await createBudget({ name: 'Hard Limit Budget' });
      await record(budget.id, 90);
      const { periodEnd } = await status(budget.id);
      const res = await check(budget.id, { estimatedCost: 20 });
      expect(res).toEqual(
        expect.objectContaining({
          budgetId: budget.id,
          canProceed: false,
          rule: 'hard-limit',
          requiresApproval: false,
          estimatedCost: 20,
          currentAmount: 90,
          reservedAmount: 0,
          limit: 100,
          remaining: 10,
          percentUsedAfter: 110,
          status: 'critical',
          resetsAt: periodEnd,
          blockedBy: { budgetId: budget.id, name: 'Hard Limit Budget', remaining: 10, resetsAt: periodEnd },
        }),
      );
      expect(res.reason).toMatch(/100 USD/);
      expect(res.reason).toMatch(/90 USD/);
      expect(res.reason).toMatch(/20 USD/);
      expect(res.reason).toContain(periodEnd);
      expect(res.suggestedActions).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ type: 'reduce-request', maxEstimatedCost: 10 }),
          expect.objectContaining({ type: 'wait-for-next-period', resetsAt: periodEnd }),
        ]),
      );
      // Exactly at the limit is not over it.
      expect((await check(budget.id, { estimatedCost: 10 })).canProceed).toBe(true);
      expect((await check(budget.id, { estimatedCost: '10.0000000001' })).canProceed).toBe(false);
    });

    it('soft limit: over the limit still proceeds, and reports the figures', async () => {
      const budget = await createBudget({ enforcement: 'soft' });
      await record(budget.id, 90);
      const res = await check(budget.id, { estimatedCost: 20 });
      expect(res).toEqual(expect.objectContaining({ canProceed: true, requiresApproval: false, percentUsedAfter: 110, remaining: 10 }));
      expect(res.blockedBy).toBeUndefined();
    });

    it('an inactive budget (not started yet, or ended) proceeds and says why', async () => {
      const future = await createBudget({ startDate: '2031-01-01T00:00:00Z' });
      const notYet = await check(future.id, { estimatedCost: 1000 });
      expect(notYet).toEqual(expect.objectContaining({ canProceed: true, active: false, requiresApproval: false }));
      expect(notYet.reason).toMatch(/not active/i);
      const ended = await createBudget({ startDate: '2025-01-01T00:00:00Z', endDate: '2025-03-01T00:00:00Z' });
      const over = await check(ended.id, { estimatedCost: 1000 });
      expect(over).toEqual(expect.objectContaining({ canProceed: true, active: false }));
      expect(over.reason).toMatch(/not active/i);
    });

    it("an ancestor over its limit blocks a child's check and is named as blockedBy", async () => {
      const parent = await createBudget({ name: 'Parent Org Budget', scopeType: 'organization' });
      const child = await createBudget({ parentId: parent.id, amount: 50 });
      const sibling = await createBudget({ parentId: parent.id, amount: 100 });
      await record(sibling.id, 95);
      const res = await check(child.id, { estimatedCost: 10 });
      expect(res.budgetId).toBe(child.id);
      expect(res.canProceed).toBe(false);
      expect(res.blockedBy).toEqual(expect.objectContaining({ budgetId: parent.id, name: 'Parent Org Budget', remaining: 5 }));
      expect(res.reason).toMatch(/Parent Org Budget/);
      // The child's own figures.
      expect(res).toEqual(expect.objectContaining({ currentAmount: 0, limit: 50, remaining: 50 }));
      expect((await check(child.id, { estimatedCost: 5 })).canProceed).toBe(true);
    });

    it('auto-downgrade proceeds with a suggestedModel; notify never changes the answer', async () => {
      const downgrade = await createBudget({
        alerts: [{ threshold: 50, actions: ['auto-downgrade'] }],
        modelPolicy: { downgrades: { 'gpt-4': 'gpt-4o-mini' } },
      });
      const res = await check(downgrade.id, { estimatedCost: 60, modelId: 'gpt-4' });
      expect(res).toEqual(expect.objectContaining({ canProceed: true, suggestedModel: 'gpt-4o-mini' }));
      const notify = await createBudget({ alerts: [{ threshold: 10, actions: ['notify'] }] });
      const allowed = await check(notify.id, { estimatedCost: 60, modelId: 'gpt-4' });
      expect(allowed).toEqual(expect.objectContaining({ canProceed: true, requiresApproval: false }));
      expect(allowed.suggestedModel).toBeUndefined();
    });

    it('unknown budget → 404; invalid estimate → 400', async () => {
      expectProblem(await t.request('POST', `${BUDGETS}/${UNKNOWN_ID}/check-constraints`, { estimatedCost: 1 }), 404);
      const budget = await createBudget();
      expectProblem(await t.request('POST', `${BUDGETS}/${budget.id}/check-constraints`, { estimatedCost: -1 }), 400);
    });
  });

  describe('alerts, exactly once', () => {
    const crossConcurrently = async (budgetId: string) => {
      // 50 × 2 = 100 % of the limit: the 40th write crosses 80 %, whichever it is.
      const results = await Promise.all(
        Array.from({ length: 50 }, () => httpPost(`${BUDGETS}/${budgetId}/usage`, { amount: 2, currency: 'USD' })),
      );
      expect(results.filter((r) => r.status !== 201)).toEqual([]);
    };

    it('50 concurrent usages crossing 80 % → one history row; the next window crossing again → one more', async () => {
      const budget = await createBudget({
        alerts: [{ id: 'eighty', threshold: 80, actions: ['notify'], notificationChannels: ['email'] }],
      });
      const announce = jest.spyOn(t.app.get(UsageEvents), 'announce');
      await crossConcurrently(budget.id);
      const first = await historyRows(budget.id);
      expect(first.length).toBe(1);
      expect(first[0]).toEqual(expect.objectContaining({ alert_id: 'eighty', alert_type: 'actual', threshold: '80' }));
      expect(Number(first[0].percent_used)).toBeGreaterThanOrEqual(80);
      expect(Number(first[0].amount)).toBeGreaterThanOrEqual(80);
      expect(announce).toHaveBeenCalledTimes(1);
      const before = await status(budget.id);
      expect(before.currentAmount).toBe(100);
      expect(first[0].period_start.toISOString()).toBe(before.periodStart);

      // Into the next window: the same alert may fire once more, for that window.
      const fakeNow = new Date(new Date(before.periodEnd).getTime() + 3_600_000);
      jest.spyOn(t.app.get(Clock), 'now').mockImplementation(() => new Date(fakeNow));
      await crossConcurrently(budget.id);
      const after = await historyRows(budget.id);
      expect(after.length).toBe(2);
      expect(after[1].period_start.toISOString()).toBe(before.periodEnd);
      expect(announce).toHaveBeenCalledTimes(2);
      expect((await status(budget.id)).currentAmount).toBe(100);
    });

    it('without a fake clock: usage in a window the cache row has not rolled into yet still fires the alert', async () => {
      // The state every cache row is in when a new window begins and nobody has read the status yet:
      // the row still holds the previous window. Reproduced by rewinding the row's window.
      const budget = await createBudget({ alerts: [{ id: 'eighty', threshold: 80, actions: ['notify'] }] });
      const { periodStart } = await status(budget.id);
      await t.sql(
        `UPDATE budget_status_cache SET period_end = period_start, period_start = period_start - interval '1 month',
                current_amount = 0, usage_count = 0 WHERE budget_id = $1`,
        [budget.id],
      );
      await crossConcurrently(budget.id);
      expect((await historyRows(budget.id)).map((row) => row.period_start.toISOString())).toEqual([periodStart]);
      expect((await status(budget.id)).currentAmount).toBe(100);
    });

    it('the next window crossing again after a read (the check-then-record path) → exactly one more row', async () => {
      const budget = await createBudget({ alerts: [{ id: 'eighty', threshold: 80, actions: ['notify'] }] });
      await crossConcurrently(budget.id);
      const { periodEnd } = await status(budget.id);
      jest.spyOn(t.app.get(Clock), 'now').mockImplementation(() => new Date(new Date(periodEnd).getTime() + 3_600_000));
      expect((await check(budget.id, { estimatedCost: 1 })).currentAmount).toBe(0);
      await crossConcurrently(budget.id);
      const rows = await historyRows(budget.id);
      expect(rows.length).toBe(2);
      expect(rows.map((row) => row.period_start.toISOString())).toEqual([expect.any(String), periodEnd]);
    });

    it('GET alerts (current window; ?all=true), acknowledge (who, when, note), activeAlerts in status, 404 for an unknown id', async () => {
      const budget = await createBudget({
        alerts: [
          { id: 'half', threshold: 50, actions: ['notify'], notificationChannels: ['slack'] },
          { id: 'ninety', threshold: 90, actions: ['notify'] },
        ],
      });
      await record(budget.id, 60);
      const current = await t.request('GET', `${BUDGETS}/${budget.id}/alerts`);
      expect(current.status).toBe(200);
      const s = await status(budget.id);
      expect(current.body).toEqual([
        {
          id: expect.any(String),
          budgetId: budget.id,
          alertId: 'half',
          threshold: 50,
          type: 'actual',
          periodStart: s.periodStart,
          triggeredAt: expect.stringMatching(ISO),
          percentUsed: 60,
          amount: 60,
          actions: ['notify'],
          notificationChannels: ['slack'],
          usageRecordId: expect.any(String),
          acknowledgedAt: null,
          acknowledgedBy: null,
          note: null,
        },
      ]);
      const historyId = current.body[0].id;
      expect(s.activeAlerts).toEqual([
        expect.objectContaining({ id: historyId, alertId: 'half', threshold: 50, type: 'actual', percentUsed: 60, amount: 60, acknowledged: false }),
      ]);

      // An alert from an earlier window: listed with ?all=true only.
      await t.sql(
        `INSERT INTO budget_alert_history (budget_id, alert_id, threshold, alert_type, period_start, percent_used, amount, actions)
         VALUES ($1, 'half', 50, 'actual', $2::timestamptz - interval '1 month', 55, 55, '["notify"]')`,
        [budget.id, s.periodStart],
      );
      expect((await t.request('GET', `${BUDGETS}/${budget.id}/alerts`)).body.length).toBe(1);
      const all = await t.request('GET', `${BUDGETS}/${budget.id}/alerts?all=true`);
      expect(all.status).toBe(200);
      expect(all.body.length).toBe(2);

      const before = Date.now();
      const ack = await t.request(
        'POST',
        `${BUDGETS}/${budget.id}/alerts/${historyId}/acknowledge`,
        { note: 'Raised with the team lead.' },
        { authorization: `Bearer ${t.keys.service}` },
      );
      expect(ack.status).toBe(200);
      expect(ack.body).toEqual(
        expect.objectContaining({ id: historyId, acknowledgedBy: 'test-service', note: 'Raised with the team lead.', acknowledgedAt: expect.stringMatching(ISO) }),
      );
      expect(Math.abs(new Date(ack.body.acknowledgedAt).getTime() - before)).toBeLessThan(60_000);
      const acknowledged = (await status(budget.id)).activeAlerts[0];
      expect(acknowledged).toEqual(
        expect.objectContaining({ id: historyId, acknowledged: true, acknowledgedBy: 'test-service', acknowledgedAt: ack.body.acknowledgedAt }),
      );

      // Admin may acknowledge too (with no body); a viewer may not.
      const other = all.body.find((row: { id: string }) => row.id !== historyId);
      const byAdmin = await t.request('POST', `${BUDGETS}/${budget.id}/alerts/${other.id}/acknowledge`);
      expect(byAdmin.status).toBe(200);
      expect(byAdmin.body.acknowledgedBy).toBe('test-admin');
      const byViewer = await t.request('POST', `${BUDGETS}/${budget.id}/alerts/${historyId}/acknowledge`, {}, {
        authorization: `Bearer ${t.keys.viewer}`,
      });
      expectProblem(byViewer, 403);

      expectProblem(await t.request('POST', `${BUDGETS}/${budget.id}/alerts/${UNKNOWN_ID}/acknowledge`, {}), 404);
      // A history id of another budget is unknown on this one.
      const stranger = await createBudget();
      expectProblem(await t.request('POST', `${BUDGETS}/${stranger.id}/alerts/${historyId}/acknowledge`, {}), 404);
    });

    it('a forecast alert fires when projectedTotal / limit reaches its threshold (before the actual spend does)', async () => {
      // A 10-day window that began a day ago: the projection is about 10 × the spend.
      const budget = await createBudget({
        amount: 1000,
        period: 'custom',
        customPeriodDays: 10,
        startDate: new Date(Date.now() - 86_400_000).toISOString(),
        alerts: [
          { id: 'forecast-100', threshold: 100, type: 'forecast', actions: ['notify'] },
          { id: 'actual-50', threshold: 50, actions: ['notify'] },
        ],
      });
      await record(budget.id, 50);
      const low = await status(budget.id);
      expect(low.projectedTotal).toBeLessThan(1000);
      expect(await historyRows(budget.id)).toEqual([]);

      await record(budget.id, 60);
      const high = await status(budget.id);
      expect(high.projectedTotal / high.limit).toBeGreaterThanOrEqual(1);
      expect(high.percentUsed).toBe(11);
      const rows = await historyRows(budget.id);
      expect(rows.map((row) => [row.alert_id, row.alert_type])).toEqual([['forecast-100', 'forecast']]);
      expect(high.activeAlerts).toEqual([expect.objectContaining({ alertId: 'forecast-100', type: 'forecast' })]);
    });
  });

  describe('integration (RelayCore)', () => {
    let team: Budget;
    let user: Budget;
    let project: Budget;
    const scopes = { userId: 'int-user-1', teamId: 'int-team-1', projectId: 'int-proj-1' };
    const usage = { ...scopes, amount: '12.345', currency: 'USD', requestId: 'int-req-1', modelId: 'gpt-4' };

    beforeAll(async () => {
      team = await createBudget({ name: 'Integration Team', scopeType: 'team', scopeId: 'int-team-1', amount: 1000 });
      user = await createBudget({ name: 'Integration User', scopeType: 'user', scopeId: 'int-user-1', amount: 500, parentId: team.id });
      project = await createBudget({ name: 'Integration Project', scopeType: 'project', scopeId: 'int-proj-1', amount: 20 });
    });

    it('one POST /integration/usage → user, team and project each rise by the amount exactly once', async () => {
      const res = await httpPost(`${API}/integration/usage`, usage);
      expect(res.status).toBe(201);
      expect(res.body.replayed).toBe(false);
      expect(res.body.requestId).toBe('int-req-1');
      // One ledger row for the request (SPEC §12.2), naming every budget it matched across both trees.
      expect(res.body.records).toHaveLength(1);
      expect([...res.body.records[0].matchedBudgetIds].sort()).toEqual([user.id, team.id, project.id].sort());
      expect(res.body.records[0]).toEqual(
        expect.objectContaining({ amount: 12.345, userId: 'int-user-1', teamId: 'int-team-1', projectId: 'int-proj-1' }),
      );
      for (const budget of [user, team, project]) {
        const s = await status(budget.id);
        expect([budget.name, s.currentAmount, s.usageCount]).toEqual([budget.name, 12.345, 1]);
      }
      const [rows] = await t.sql(`SELECT count(*)::int AS n FROM budget_usage_records WHERE request_id = 'int-req-1'`);
      expect(rows.n).toBe(1);
    });

    it('a replay → 200 + Idempotent-Replayed, the same records, nothing changes; another body with that requestId → 409', async () => {
      const first = await t.request('GET', `${BUDGETS}/${team.id}/status`);
      const replay = await t.request('POST', `${API}/integration/usage`, usage, { authorization: `Bearer ${t.keys.service}` });
      expect(replay.status).toBe(200);
      expect(replay.headers['idempotent-replayed']).toBe('true');
      expect(replay.body.replayed).toBe(true);
      const [stored] = await t.sql(`SELECT array_agg(id::text ORDER BY id) AS ids FROM budget_usage_records WHERE request_id = 'int-req-1'`);
      expect(replay.body.records.map((r: { id: string }) => r.id).sort()).toEqual(stored.ids);
      for (const budget of [user, team, project]) {
        const s = await status(budget.id);
        expect([budget.name, s.currentAmount, s.usageCount]).toEqual([budget.name, 12.345, 1]);
      }
      expect((await status(team.id)).currentAmount).toBe(first.body.currentAmount);
      expectProblem(
        await t.request('POST', `${API}/integration/usage`, { ...usage, amount: '13' }, { authorization: `Bearer ${t.keys.service}` }),
        409,
      );
      expect((await status(project.id)).currentAmount).toBe(12.345);
    });

    it('a replay after the most specific budget was deleted changes nothing (the team is not charged again)', async () => {
      const idemTeam = await createBudget({ scopeType: 'team', scopeId: 'idem-team', amount: 1000 });
      const idemUser = await createBudget({ scopeType: 'user', scopeId: 'idem-user', amount: 100, parentId: idemTeam.id });
      const body = { userId: 'idem-user', teamId: 'idem-team', amount: 5, currency: 'USD', requestId: 'idem-del-1' };
      const first = await t.request('POST', `${API}/integration/usage`, body);
      expect(first.status).toBe(201);
      expect(first.body.records.map((r: { budgetId: string }) => r.budgetId)).toEqual([idemUser.id]);
      expect((await status(idemTeam.id)).currentAmount).toBe(5);

      // The user budget goes away; its usage still counts in the team (SPEC §10). RelayCore retries.
      expect((await t.request('DELETE', `${BUDGETS}/${idemUser.id}`)).status).toBe(204);
      expect((await status(idemTeam.id)).currentAmount).toBe(5);
      const replay = await t.request('POST', `${API}/integration/usage`, body);
      expect(replay.status).toBe(200);
      expect(replay.headers['idempotent-replayed']).toBe('true');
      expect((await status(idemTeam.id)).currentAmount).toBe(5);
      const [rows] = await t.sql(`SELECT count(*)::int AS n FROM budget_usage_records WHERE request_id = 'idem-del-1'`);
      expect(rows.n).toBe(1);
    });

    it('a replay after a more specific budget was created changes nothing (the team is not charged again)', async () => {
      const idemTeam = await createBudget({ scopeType: 'team', scopeId: 'idem-team-2', amount: 1000 });
      const body = { userId: 'idem-user-2', teamId: 'idem-team-2', amount: 7, currency: 'USD', requestId: 'idem-new-1' };
      expect((await t.request('POST', `${API}/integration/usage`, body)).status).toBe(201);
      expect((await status(idemTeam.id)).currentAmount).toBe(7);
      await createBudget({ scopeType: 'user', scopeId: 'idem-user-2', amount: 100, parentId: idemTeam.id });
      const replay = await t.request('POST', `${API}/integration/usage`, body);
      expect(replay.status).toBe(200);
      expect((await status(idemTeam.id)).currentAmount).toBe(7);
    });

    it('check-constraints: only the project budget blocks → canProceed false, naming the project budget', async () => {
      const res = await t.request('POST', `${API}/integration/check-constraints`, { ...scopes, estimatedCost: 10, currency: 'USD' });
      expect(res.status).toBe(200);
      const body = res.body;
      expect(body.canProceed).toBe(false);
      expect(body.rule).toBe('hard-limit');
      expect(body.blockedBy).toEqual(expect.objectContaining({ budgetId: project.id, name: 'Integration Project', remaining: 7.655 }));
      expect(body.reason).toMatch(/Integration Project/);
      expect(body.reason).toMatch(/20 USD/);
      const byBudget = new Map(body.results.map((r: { budgetId: string; canProceed: boolean }) => [r.budgetId, r.canProceed]));
      expect(byBudget).toEqual(new Map([[user.id, true], [team.id, true], [project.id, false]]));

      const fits = await t.request('POST', `${API}/integration/check-constraints`, { ...scopes, estimatedCost: 5, currency: 'USD' });
      expect(fits.body.canProceed).toBe(true);
      expect(fits.body.blockedBy).toBeUndefined();
    });

    it('one suggestedModel acceptable to every budget', async () => {
      await createBudget({
        scopeType: 'team',
        scopeId: 'sm-team',
        amount: 1000,
        alerts: [{ threshold: 1, actions: ['restrict-models'] }],
        modelPolicy: { restrictedModels: ['gpt-4'], downgrades: { 'gpt-4': 'gpt-4o' } },
      });
      await createBudget({
        scopeType: 'project',
        scopeId: 'sm-proj',
        amount: 1000,
        alerts: [{ threshold: 1, actions: ['restrict-models'] }],
        modelPolicy: { restrictedModels: ['gpt-4o'], downgrades: { 'gpt-4o': 'gpt-4o-mini' } },
      });
      const body = { teamId: 'sm-team', projectId: 'sm-proj', estimatedCost: 20, currency: 'USD' };
      const res = await t.request('POST', `${API}/integration/check-constraints`, { ...body, modelId: 'gpt-4' });
      expect(res.status).toBe(200);
      expect(res.body.canProceed).toBe(false);
      expect(res.body.suggestedModel).toBe('gpt-4o-mini');
      const retried = await t.request('POST', `${API}/integration/check-constraints`, { ...body, modelId: 'gpt-4o-mini' });
      expect(retried.body.canProceed).toBe(true);
      const middle = await t.request('POST', `${API}/integration/check-constraints`, { ...body, modelId: 'gpt-4o' });
      expect(middle.body.canProceed).toBe(false);
      expect(middle.body.suggestedModel).toBe('gpt-4o-mini');
    });

    it('currency mismatch → 422; no scopes → 400 (checks and usage)', async () => {
      expectProblem(await t.request('POST', `${API}/integration/check-constraints`, { ...scopes, estimatedCost: 1, currency: 'EUR' }), 422);
      expectProblem(await t.request('POST', `${API}/integration/usage`, { ...usage, requestId: 'int-eur', currency: 'EUR' }), 422);
      expectProblem(await t.request('POST', `${API}/integration/check-constraints`, { estimatedCost: 1, currency: 'USD' }), 400);
      expectProblem(await t.request('POST', `${API}/integration/usage`, { amount: 1, currency: 'USD', requestId: 'int-none' }), 400);
      const [rows] = await t.sql(`SELECT count(*)::int AS n FROM budget_usage_records WHERE request_id IN ('int-eur', 'int-none')`);
      expect(rows.n).toBe(0);
    });

    it('GET /integration/summary lists each applicable budget with its status', async () => {
      const res = await t.request('GET', `${API}/integration/summary?userId=int-user-1&teamId=int-team-1&projectId=int-proj-1`);
      expect(res.status).toBe(200);
      const byId = new Map(res.body.budgets.map((b: { budgetId: string }) => [b.budgetId, b]));
      expect(res.body.budgets.length).toBe(3);
      expect(byId.get(user.id)).toEqual(
        expect.objectContaining({ scopeType: 'user', scopeId: 'int-user-1', parentId: team.id, name: 'Integration User' }),
      );
      expect(byId.get(team.id)).toEqual(expect.objectContaining({ scopeType: 'team', scopeId: 'int-team-1', parentId: null }));
      expect(byId.get(project.id)).toEqual(expect.objectContaining({ scopeType: 'project', scopeId: 'int-proj-1' }));
      for (const budget of [user, team, project]) {
        const entry = byId.get(budget.id) as { status: Record<string, unknown> };
        expect(entry.status).toEqual(expect.objectContaining({ budgetId: budget.id, currentAmount: 12.345, usageCount: 1, currency: 'USD' }));
      }
      expect((byId.get(project.id) as { status: { percentUsed: number } }).status.percentUsed).toBe(61.73);
      // Only the user named: its chain (user, team).
      const userOnly = await t.request('GET', `${API}/integration/summary?userId=int-user-1`);
      expect(userOnly.body.budgets.map((b: { budgetId: string }) => b.budgetId).sort()).toEqual([user.id, team.id].sort());
      expectProblem(await t.request('GET', `${API}/integration/summary`), 400);
    });
  });
});
