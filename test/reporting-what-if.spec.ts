import { BudgetRegistryService } from '../src/budget/budget-registry.service';
import { Clock } from '../src/common/clock';
import { WindowReplay } from '../src/reporting/what-if-replay';
import { budgetMaker, checkBudget, recordUsage, recordUsages } from './setup/budgets';
import { expectProblem } from './setup/problem';
import { createTestApp, type TestApp } from './setup/test-app';

const NOW = new Date('2026-03-10T12:30:00Z');
const day = (n: number) => new Date(Date.parse('2026-03-01T00:00:00Z') + n * 86_400_000);

/** The hand-built history of the current window: amount, model, day. */
const HISTORY: [number, string, number][] = [
  [30, 'gpt-4', 1],
  [25, 'gpt-4', 2],
  [30, 'gpt-4', 3],
  [10, 'claude', 4],
  [5, 'claude', 5],
  [4, 'gpt-4', 6],
  [20, 'other', 7],
];

describe('Reports: what-if replay', () => {
  let t: TestApp;
  const createBudget = budgetMaker(() => t, 'WhatIf');

  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(() => t.close());

  describe('on a hand-built history (clock pinned)', () => {
    let budgetId: string;
    const whatIf = (body: unknown, key = t.keys.viewer) => t.request('POST', `/api/v1/budgets/${budgetId}/what-if`, body, { 'x-api-key': key });

    beforeAll(async () => {
      jest.spyOn(t.app.get(Clock), 'now').mockImplementation(() => new Date(NOW));
      // A soft budget of 200 (nothing of this history was blocked when it was recorded), with a
      // February window of 3 records before it.
      const budget = await createBudget({ amount: 200, enforcement: 'soft', startDate: '2026-02-01T00:00:00Z' });
      budgetId = budget.id;
      await recordUsages(t, budgetId, [
        { amount: 50, occurredAt: new Date('2026-02-03T00:00:00Z'), modelId: 'gpt-4' },
        { amount: 50, occurredAt: new Date('2026-02-04T00:00:00Z'), modelId: 'gpt-4' },
        { amount: 50, occurredAt: new Date('2026-02-05T00:00:00Z'), modelId: 'gpt-4' },
        ...HISTORY.map(([amount, modelId, n]) => ({ amount, modelId, occurredAt: day(n) })),
      ]);
    });
    afterAll(() => jest.restoreAllMocks());

    it('a lower hard limit: the table computed by hand', async () => {
      // 30 → 30; 25 → 55; 30 → 85 > 60 blocked; 10 → 65 blocked; 5 → 60 fits; 4 → 64 blocked; 20 → 80 blocked.
      const res = await whatIf({ amount: 60, enforcement: 'hard' });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({
        budgetId,
        currency: 'USD',
        settings: { amount: 60, enforcement: 'hard', alerts: [], modelPolicy: null },
        windows: [
          {
            periodStart: '2026-03-01T00:00:00.000Z',
            periodEnd: '2026-04-01T00:00:00.000Z',
            usageCount: 7,
            recordedSpent: 124,
            spent: 60,
            wouldBlockCount: 4,
            wouldBlockAmount: 64,
            firstBlockAt: day(3).toISOString(),
            wouldDowngradeCount: 0,
            wouldRequireApprovalCount: 0,
            alertsThatWouldFire: [],
          },
        ],
      });
    });

    it('alerts with downgrade and approval actions over two windows, newest first', async () => {
      const res = await whatIf({
        amount: '100',
        windows: 2,
        alerts: [
          { id: 'half', threshold: 50, actions: ['notify'] },
          { id: 'eighty', threshold: 80, actions: ['auto-downgrade'] },
          { id: 'ninety', threshold: 90, actions: ['require-approval'] },
        ],
        modelPolicy: { downgrades: { 'gpt-4': 'gpt-4o-mini' } },
      });
      expect(res.status).toBe(200);
      const [march, february] = res.body.windows;
      // March: 30; 25 → 55 (half fires); 30 gpt-4 → 85 downgraded (eighty fires); 10 → 95 approval;
      // 5 → 90 approval; 4 gpt-4 → 89 downgraded; 20 → 109 approval.
      expect(march).toEqual(
        expect.objectContaining({
          spent: 89,
          wouldBlockCount: 0,
          wouldDowngradeCount: 2,
          wouldRequireApprovalCount: 3,
          alertsThatWouldFire: [
            { alertId: 'half', threshold: 50, type: 'actual', actions: ['notify'], firedAt: day(2).toISOString(), percentUsed: 55 },
            { alertId: 'eighty', threshold: 80, type: 'actual', actions: ['auto-downgrade'], firedAt: day(3).toISOString(), percentUsed: 85 },
          ],
        }),
      );
      // February: 50 → 50 (half fires); 50 → 100 and 50 → 100 reach ninety: approval (above the downgrade in the ladder).
      expect(february).toEqual(
        expect.objectContaining({
          periodStart: '2026-02-01T00:00:00.000Z',
          periodEnd: '2026-03-01T00:00:00.000Z',
          usageCount: 3,
          recordedSpent: 150,
          spent: 50,
          wouldRequireApprovalCount: 2,
          alertsThatWouldFire: [expect.objectContaining({ alertId: 'half', percentUsed: 50 })],
        }),
      );
      expect(res.body.settings.modelPolicy).toEqual({ restrictedModels: [], downgrades: { 'gpt-4': 'gpt-4o-mini' } });
    });

    it('with nothing proposed it replays the budget as it is, and changes nothing', async () => {
      const before = await t.request('GET', `/api/v1/budgets/${budgetId}`);
      const ledger = await t.sql(`SELECT count(*)::int AS n FROM budget_usage_records WHERE budget_id = $1`, [budgetId]);
      const res = await whatIf({});
      expect(res.status).toBe(200);
      expect(res.body.settings).toEqual({ amount: 200, enforcement: 'soft', alerts: [], modelPolicy: null });
      expect(res.body.windows).toHaveLength(1);
      expect(res.body.windows[0]).toEqual(expect.objectContaining({ spent: 124, recordedSpent: 124, wouldBlockCount: 0 }));
      const after = await t.request('GET', `/api/v1/budgets/${budgetId}`);
      expect(after.body.version).toBe(before.body.version);
      expect(await t.sql(`SELECT count(*)::int AS n FROM budget_usage_records WHERE budget_id = $1`, [budgetId])).toEqual(ledger);
    });

    it('bad proposals are a 400 naming each field, as a budget update names them', async () => {
      const res = await whatIf({ amount: -5, enforcement: 'maybe', windows: 13, alerts: [{ threshold: 0, actions: ['explode'] }], modelPolicy: 'x', extra: 1 });
      expectProblem(res, 400);
      const fields = new Set(res.body.errors.map((e: { field: string }) => e.field));
      for (const field of ['amount', 'enforcement', 'windows', 'alerts.0.threshold', 'alerts.0.actions', 'modelPolicy', 'extra']) {
        expect(fields).toContain(field);
      }
      const duplicate = await whatIf({ alerts: [{ id: 'a', threshold: 10, actions: ['notify'] }, { id: 'a', threshold: 20, actions: ['notify'] }] });
      expectProblem(duplicate, 400);
      expect(duplicate.body.errors).toEqual([{ field: 'alerts.1.id', message: 'must be unique within the budget' }]);
      expectProblem(await t.request('POST', '/api/v1/budgets/00000000-0000-4000-8000-000000000000/what-if', {}), 404);
    });
  });

  it('the live check and the replay agree on every recorded request when the settings are unchanged', async () => {
    jest.restoreAllMocks();
    const budget = await createBudget({
      amount: 100,
      alerts: [
        { threshold: 50, actions: ['notify'] },
        { threshold: 70, actions: ['auto-downgrade'] },
        { threshold: 95, actions: ['block-all'] },
      ],
      modelPolicy: { downgrades: { 'gpt-4': 'gpt-4o-mini', claude: 'claude-haiku' } },
    });
    const models = ['gpt-4', 'claude', 'mistral'];
    let downgraded = 0;
    let recorded = 0;
    let refused = 0;
    /** The live answer to each request that went through, in order. */
    const liveRules: string[] = [];
    for (let i = 0; i < 40; i += 1) {
      const amount = ((i * 7) % 9) + 0.5;
      const modelId = models[i % 3];
      const check = await checkBudget(t, budget.id, { estimatedCost: amount, modelId });
      if (!check.canProceed) {
        refused += 1;
        continue;
      }
      if (check.suggestedModel) downgraded += 1;
      liveRules.push(check.suggestedModel ? 'auto-downgrade' : 'allowed');
      await recordUsage(t, budget.id, amount, { modelId, occurredAt: new Date(Date.now() - 60_000 + i).toISOString() });
      recorded += 1;
    }
    expect(refused).toBeGreaterThan(0);
    expect(downgraded).toBeGreaterThan(0);
    const res = await t.request('POST', `/api/v1/budgets/${budget.id}/what-if`, {});
    const status = await t.request('GET', `/api/v1/budgets/${budget.id}/status`);
    expect(res.body.windows[0]).toEqual(
      expect.objectContaining({
        usageCount: recorded,
        spent: status.body.currentAmount,
        recordedSpent: status.body.currentAmount,
        wouldBlockCount: 0,
        wouldRequireApprovalCount: 0,
        wouldDowngradeCount: downgraded,
      }),
    );

    // Request by request: the replay's decision for each recorded usage is the live one.
    const stored = await t.app.get(BudgetRegistryService).getRecord(budget.id);
    const replay = new WindowReplay(
      { ...stored, budgetId: stored.id },
      { limit: stored.amount, enforcement: stored.enforcement, alerts: stored.alerts, modelPolicy: stored.modelPolicy },
      new Date(status.body.periodStart),
      new Date(status.body.periodEnd),
    );
    const rows = await t.sql(
      `SELECT amount::text AS amount, model_id AS "modelId", occurred_at AS "occurredAt" FROM budget_usage_records
       WHERE budget_id = $1 ORDER BY occurred_at, id`,
      [budget.id],
    );
    expect(rows.map((row) => replay.add(row).rule)).toEqual(liveRules);
  });

  it('more records than WHAT_IF_MAX_ROWS is a 422 that says how many windows fit', async () => {
    const small = await createTestApp({ config: { whatIfMaxRows: 5 } });
    try {
      jest.spyOn(small.app.get(Clock), 'now').mockImplementation(() => new Date(NOW));
      const res = await small.request('POST', '/api/v1/budgets', {
        name: 'Busy', scopeType: 'team', scopeId: 'busy', amount: 100, currency: 'USD', period: 'monthly', startDate: '2026-02-01T00:00:00Z',
      });
      const id = res.body.id;
      await recordUsages(small, id, [
        ...[1, 2, 3].map((n) => ({ amount: 1, occurredAt: new Date(Date.parse('2026-02-01T00:00:00Z') + n * 86_400_000) })),
        ...[1, 2, 3, 4].map((n) => ({ amount: 1, occurredAt: day(n) })),
      ]);
      expect((await small.request('POST', `/api/v1/budgets/${id}/what-if`, {})).status).toBe(200);
      const tooMany = await small.request('POST', `/api/v1/budgets/${id}/what-if`, { windows: 2 });
      expectProblem(tooMany, 422);
      expect(tooMany.body.code).toBe('WHAT_IF_TOO_LARGE');
      expect(tooMany.body.detail).toMatch(/more than 5 usage records.*windows=1/);
    } finally {
      await small.close();
    }
  });
});
