/**
 * The seed's "Test Coverage" list, written the way the seed's examples call the service:
 *   npm test -- budget-management.test.ts
 * Budget Registry CRUD, Budget Tracker recording and status, Budget Integration multi-scope
 * checks, errors and edge cases, and database connection failures with a real PostgreSQL made
 * unreachable (stopped), then brought back.
 */
import { DomainError } from '../src/common/errors/domain-error';
import {
  BudgetHierarchyViewService, BudgetIntegrationService, BudgetRegistryService, BudgetTrackerService, type CreateBudgetRequest,
  type RecordUsageRequest,
} from '../src/types/budget';
import { startFaultDatabase, type FaultDatabase } from './faults.support';
import { createTestApp, type TestApp } from './setup/test-app';
import { SEED_CREATE_BUDGET_EXAMPLE, SEED_RECORD_USAGE_EXAMPLE } from './setup/seed-examples';

const budgetRequest: CreateBudgetRequest = SEED_CREATE_BUDGET_EXAMPLE;
const usageRequest: RecordUsageRequest = SEED_RECORD_USAGE_EXAMPLE;

describe('Budget management (the seed\'s test coverage)', () => {
  let t: TestApp;
  let budgetRegistry: BudgetRegistryService;
  let budgetTracker: BudgetTrackerService;
  let integration: BudgetIntegrationService;

  beforeAll(async () => {
    t = await createTestApp();
    budgetRegistry = t.app.get(BudgetRegistryService);
    budgetTracker = t.app.get(BudgetTrackerService);
    integration = t.app.get(BudgetIntegrationService);
  });
  afterAll(() => t.close());

  describe('Budget Registry CRUD operations', () => {
    it('creates, reads, updates, lists and deletes a budget', async () => {
      const budget = await budgetRegistry.createBudget({ ...budgetRequest, scopeId: 'team-crud' }, 'user-123');
      expect(budget).toMatchObject({ name: budgetRequest.name, amount: 5000, currency: 'USD', createdBy: 'user-123', version: 1 });
      expect(budget.alerts[0]).toMatchObject({ threshold: 80, type: 'actual', actions: ['notify', 'restrict-models'] });

      expect(await budgetRegistry.getBudget(budget.id)).toEqual(budget);
      const updated = await budgetRegistry.updateBudget(budget.id, { amount: 6000, description: null });
      expect(updated).toMatchObject({ amount: 6000, description: null, version: 2 });
      expect((await budgetRegistry.listBudgetsForScope('team', 'team-crud')).map((b) => b.id)).toEqual([budget.id]);

      await budgetRegistry.deleteBudget(budget.id);
      await expect(budgetRegistry.getBudget(budget.id)).rejects.toMatchObject({ status: 404, code: 'BUDGET_NOT_FOUND' });
      expect(await budgetRegistry.listBudgetsForScope('team', 'team-crud')).toEqual([]);
    });

    it('builds hierarchies: a child under its parent, shown in the hierarchy with status', async () => {
      const org = await budgetRegistry.createBudget({ ...budgetRequest, scopeType: 'organization', scopeId: 'org-h', amount: 10000 }, 'user-123');
      const team = await budgetRegistry.createBudget({ ...budgetRequest, scopeId: 'team-h', parentId: org.id }, 'user-123');
      const hierarchy = await budgetRegistry.getBudgetHierarchy('team', 'team-h');
      expect(hierarchy.budgets).toHaveLength(1);
      expect(hierarchy.budgets[0].ancestors.map((node) => node.id)).toEqual([org.id]);
      expect(hierarchy.budgets[0].subtree.id).toBe(team.id);
      // The view with statuses (GET /budgets/hierarchy/:type/:id) lives above the Usage module.
      const withStatus = await t.app.get(BudgetHierarchyViewService).getHierarchyWithStatus('team', 'team-h');
      expect(withStatus.budgets[0].budget.status).toMatchObject({ budgetId: team.id, currentAmount: 0, status: 'normal' });
    });
  });

  describe('Budget Tracker usage recording and status calculation', () => {
    it('records the seed usage once, lifting metadata, and reports the status', async () => {
      const budget = await budgetRegistry.createBudget({ ...budgetRequest, scopeId: 'team-tracker' }, 'user-123');
      const budgetId = budget.id;
      const usageRecord = await budgetTracker.recordUsage(budgetId, usageRequest);
      expect(usageRecord).toMatchObject({ amount: 25.5, requestId: 'req-789', modelId: 'gpt-4', userId: 'user-456', teamId: 'team-123' });
      const replay = await budgetTracker.recordUsage(budgetId, usageRequest);
      expect(replay.id).toBe(usageRecord.id);

      await budgetTracker.recordUsage(budgetId, { amount: '3974.5', currency: 'USD' });
      const status = await budgetTracker.getBudgetStatus(budgetId);
      expect(status).toMatchObject({
        budgetId, currentAmount: 4000, limit: 5000, currency: 'USD', percentUsed: 80, remaining: 1000, overage: 0,
        status: 'warning', usageCount: 2, active: true, reservedAmount: 0,
      });
      expect(status.activeAlerts.map((alert) => alert.threshold)).toEqual([80]);
      expect(status.daysRemaining).toBeGreaterThan(0);
      expect(status.projectedTotal).toBeGreaterThanOrEqual(status.currentAmount);

      const history = await budgetTracker.getUsageHistory(budgetId);
      expect(history.data.map((record) => record.amount)).toEqual([3974.5, 25.5]);
      const summary = await budgetTracker.getUsageSummary(budgetId);
      expect(summary).toMatchObject({ total: 4000, count: 2 });
      expect(await budgetTracker.refreshCache(budgetId)).toMatchObject({ currentAmount: 4000, usageCount: 2 });
    });

    it('checks constraints the way the seed does', async () => {
      const budget = await budgetRegistry.createBudget(
        { ...budgetRequest, scopeId: 'team-check', modelPolicy: { restrictedModels: ['gpt-4'], downgrades: { 'gpt-4': 'gpt-4o-mini' } } },
        'user-123',
      );
      const budgetId = budget.id;
      expect(await budgetTracker.checkBudgetConstraints(budgetId, 100)).toMatchObject({ canProceed: true, remaining: 5000 });

      await budgetTracker.recordUsage(budgetId, { amount: 4100, currency: 'USD' });
      const restricted = await budgetTracker.checkBudgetConstraints(budgetId, 10, { modelId: 'gpt-4' });
      expect(restricted).toMatchObject({ canProceed: false, suggestedModel: 'gpt-4o-mini' });
      expect(restricted.reason).toMatch(/restricts model gpt-4/);

      const constraintCheck = await budgetTracker.checkBudgetConstraints(budgetId, 2000);
      expect(constraintCheck.canProceed).toBe(false);
      expect(constraintCheck.reason).toMatch(/hard limit of 5000 USD.*4100 USD spent.*estimated 2000 USD/);
      expect(constraintCheck.suggestedActions.map((action) => action.type)).toEqual(
        expect.arrayContaining(['reduce-request', 'wait-for-next-period']),
      );
    });
  });

  describe('Budget Integration multi-scope constraint checking', () => {
    it('decides every budget of the scopes together and records the request once, counted on every budget it matches', async () => {
      const team = await budgetRegistry.createBudget({ ...budgetRequest, scopeId: 'team-int', amount: 100 }, 'user-123');
      const user = await budgetRegistry.createBudget(
        { ...budgetRequest, scopeType: 'user', scopeId: 'user-int', amount: 50, parentId: team.id, alerts: [] }, 'user-123');
      const project = await budgetRegistry.createBudget(
        { ...budgetRequest, scopeType: 'project', scopeId: 'project-int', amount: 10, alerts: [] }, 'user-123');
      const scopes = { teamId: 'team-int', userId: 'user-int', projectId: 'project-int' };

      const allowed = await integration.checkConstraints({ ...scopes, estimatedCost: 5, currency: 'USD' });
      expect(allowed.canProceed).toBe(true);
      expect(allowed.results.map((result) => result.budgetId).sort()).toEqual([team.id, user.id, project.id].sort());

      const recorded = await integration.recordUsage({ ...scopes, amount: 8, currency: 'USD', requestId: 'req-int-1' });
      expect(recorded.records).toHaveLength(1);
      expect([...recorded.records[0].matchedBudgetIds].sort()).toEqual([team.id, user.id, project.id].sort());
      expect((await budgetTracker.getBudgetStatus(project.id)).currentAmount).toBe(8);
      expect((await budgetTracker.getBudgetStatus(team.id)).currentAmount).toBe(8);

      const blocked = await integration.checkConstraints({ ...scopes, estimatedCost: 5, currency: 'USD' });
      expect(blocked).toMatchObject({ canProceed: false, blockedBy: { budgetId: project.id } });
      expect(blocked.reason).toMatch(/project project-int/);
    });
  });

  describe('Error handling and edge cases', () => {
    it('refuses invalid input with every bad field named, and stores nothing', async () => {
      const before = await t.sql('SELECT count(*)::int AS n FROM budget_definitions');
      const error = await budgetRegistry
        .createBudget({ ...budgetRequest, amount: -5, currency: 'usd', period: 'sometimes' } as never, 'user-123')
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(DomainError);
      expect((error as DomainError).status).toBe(400);
      expect((error as DomainError).errors?.map((e) => e.field).sort()).toEqual(['amount', 'currency', 'period']);
      expect(await t.sql('SELECT count(*)::int AS n FROM budget_definitions')).toEqual(before);
    });

    it('answers the business rules: unknown budget, currency mismatch, reused idempotency key', async () => {
      const budget = await budgetRegistry.createBudget({ ...budgetRequest, scopeId: 'team-edge' }, 'user-123');
      await expect(budgetTracker.getBudgetStatus('00000000-0000-4000-8000-000000000000')).rejects.toMatchObject({ code: 'RB404' });
      await expect(budgetTracker.recordUsage(budget.id, { amount: 1, currency: 'EUR' })).rejects.toMatchObject({ code: 'RB422' });
      await budgetTracker.recordUsage(budget.id, { amount: 1, currency: 'USD', requestId: 'once' });
      await expect(budgetTracker.recordUsage(budget.id, { amount: 2, currency: 'USD', requestId: 'once' })).rejects.toMatchObject({
        code: 'RB409',
      });
    });

    it('over HTTP every error is problem+json', async () => {
      const res = await t.request('POST', '/api/v1/budgets', '{"name":', { 'content-type': 'application/json' });
      expect(res.status).toBe(400);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body).toMatchObject({ status: 400, type: expect.any(String), title: expect.any(String), instance: '/api/v1/budgets' });
    });
  });
});

describe('Database connection failures (a real PostgreSQL stopped, then restarted)', () => {
  let database: FaultDatabase;
  let t: TestApp;

  beforeAll(async () => {
    database = await startFaultDatabase('seed_outage');
    t = await createTestApp({ databaseUrl: database.url, config: { connectionTimeoutMs: 1000 } });
  });

  afterAll(async () => {
    await t?.close().catch(() => undefined);
    await database?.destroy();
  });

  it('answers 503 problem+json with Retry-After while the database is down, and recovers by itself', async () => {
    const budget = (await t.request('POST', '/api/v1/budgets', { ...budgetRequest, scopeId: 'team-outage' })).body;
    await database.stop();

    const started = Date.now();
    const down = await t.request('GET', `/api/v1/budgets/${budget.id}/status`);
    const elapsed = Date.now() - started;
    expect(down.status).toBe(503);
    expect(down.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(down.headers['retry-after']).toBeDefined();
    expect(JSON.stringify(down.body)).not.toMatch(/ECONNREFUSED|postgres|stack/i);
    expect(elapsed).toBeLessThan(5000);
    const write = await t.request('POST', `/api/v1/budgets/${budget.id}/usage`, { amount: 1, currency: 'USD' });
    expect(write.status).toBe(503);

    await database.start();
    let recovered = false;
    for (let attempt = 0; attempt < 50 && !recovered; attempt += 1) {
      recovered = (await t.request('GET', `/api/v1/budgets/${budget.id}/status`)).status === 200;
      if (!recovered) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(recovered).toBe(true);
    const after = await t.request('POST', `/api/v1/budgets/${budget.id}/usage`, { amount: 1, currency: 'USD' });
    expect(after.status).toBe(201);
    expect((await t.request('GET', `/api/v1/budgets/${budget.id}/status`)).body).toMatchObject({ currentAmount: 1, usageCount: 1 });
  });
});
