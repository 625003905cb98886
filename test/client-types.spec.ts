import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import {
  createBudgetApi,
  type CreateBudgetRequest,
  type IntegrationCheckRequest,
  type IntegrationUsageRequest,
  type RecordUsageRequest,
} from '../clients/typescript';
import { SEED_CREATE_BUDGET_EXAMPLE, SEED_RECORD_USAGE_EXAMPLE } from './setup/seed-examples';
import { createTestApp, type TestApp } from './setup/test-app';

/**
 * The typed client's request types take the seed's examples as written. These assignments are
 * the test: `tsc --noEmit` (the first step of `npm test`) fails when a field the examples leave
 * out (enforcement, timezone, thresholds… which have a `default`) comes out required, as it does
 * with openapi-typescript's default options.
 */
const seedCreateBudget: CreateBudgetRequest = SEED_CREATE_BUDGET_EXAMPLE;
const seedRecordUsage: RecordUsageRequest = SEED_RECORD_USAGE_EXAMPLE;
/** RelayCore's check and usage, with only the fields they require (reserve has a default). */
const minimalCheck: IntegrationCheckRequest = { estimatedCost: 0.25, currency: 'USD' };
const minimalUsage: IntegrationUsageRequest = { amount: 0.25, currency: 'USD', requestId: 'req-1' };

// The types are not loose: a required field stays required, an unknown value is refused.
// @ts-expect-error name is required
const withoutName: CreateBudgetRequest = { ...SEED_CREATE_BUDGET_EXAMPLE, name: undefined };
// @ts-expect-error period is one of the SPEC's periods
const unknownPeriod: CreateBudgetRequest = { ...SEED_CREATE_BUDGET_EXAMPLE, period: 'hourly' };

const ROOT = resolve(__dirname, '..');
const run = promisify(execFile);

describe('clients/typescript', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await createTestApp({ listen: true });
  });

  afterAll(async () => {
    await t.close();
  });

  it('schema.ts is what openapi-typescript makes of the committed openapi.json (npm run client:generate)', async () => {
    const cli = join(ROOT, 'node_modules/openapi-typescript/bin/cli.js');
    const args = ['openapi.json', '-o', 'clients/typescript/schema.ts', '--default-non-nullable=false', '--check'];
    await expect(run(process.execPath, [cli, ...args], { cwd: ROOT })).resolves.toBeDefined();
  });

  it("sends the seed's examples through the generated client and the service takes them", async () => {
    const api = createBudgetApi({ baseUrl: t.baseUrl!, apiKey: t.keys.admin });
    const created = await api.POST('/api/v1/budgets', { body: seedCreateBudget });
    expect(created.response.status).toBe(201);
    expect(created.data).toEqual(expect.objectContaining({ name: seedCreateBudget.name, enforcement: 'hard', timezone: 'UTC' }));
    const recorded = await api.POST('/api/v1/budgets/{id}/usage', {
      params: { path: { id: created.data!.id } },
      body: { ...seedRecordUsage, occurredAt: '2025-01-15T12:00:00Z' },
    });
    expect(recorded.response.status).toBe(201);
    expect(recorded.data).toEqual(expect.objectContaining({ amount: seedRecordUsage.amount, requestId: 'req-789' }));
  });

  it('the minimal RelayCore requests are accepted as typed', async () => {
    const admin = createBudgetApi({ baseUrl: t.baseUrl!, apiKey: t.keys.admin });
    const budget = await admin.POST('/api/v1/budgets', { body: { ...seedCreateBudget, name: 'Minimal requests', scopeId: 'team-minimal' } });
    expect(budget.response.status).toBe(201);
    const api = createBudgetApi({ baseUrl: t.baseUrl!, apiKey: t.keys.service });
    const check = await api.POST('/api/v1/integration/check-constraints', { body: { ...minimalCheck, teamId: 'team-minimal' } });
    expect(check.response.status).toBe(200);
    expect(check.data?.canProceed).toBe(true);
    const usage = await api.POST('/api/v1/integration/usage', { body: { ...minimalUsage, teamId: 'team-minimal' } });
    expect(usage.response.status).toBe(201);
    expect(usage.data?.records).toEqual([expect.objectContaining({ budgetId: budget.data!.id, requestId: 'req-1' })]);
    expect([withoutName.name, unknownPeriod.period]).toEqual([undefined, 'hourly']);
  });
});
