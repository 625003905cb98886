/**
 * Walks through the seed's three usage examples in-process, with readable output:
 *   npx ts-node src/demo/budget-demo.ts      (or: npm run demo)
 * Uses DATABASE_URL when set; otherwise a throwaway embedded PostgreSQL.
 */
import 'reflect-metadata';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp } from '../app.setup';
import { loadConfig } from '../config/configuration';
import { startEmbeddedDatabase, type EmbeddedDatabase } from '../database/embedded-database';
import { runMigrations } from '../database/migrate';
import { BudgetIntegrationService, BudgetRegistryService, BudgetTrackerService } from '../types/budget';
import { SEED_CREATE_BUDGET_EXAMPLE, SEED_RECORD_USAGE_EXAMPLE } from './seed-examples';

const line = (title: string) => console.log(`\n── ${title} ${'─'.repeat(Math.max(0, 70 - title.length))}`);

async function main(): Promise<void> {
  let embedded: EmbeddedDatabase | undefined;
  let dataDir: string | undefined;
  let databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl) {
    dataDir = mkdtempSync(join(tmpdir(), 'budget-demo-'));
    chmodSync(dataDir, 0o755); // PostgreSQL runs as its own user when we are root
    embedded = await startEmbeddedDatabase({ dataDir: join(dataDir, 'pg'), port: 0, database: 'budget_demo', persistent: false });
    databaseUrl = embedded.url;
  }
  await runMigrations(databaseUrl);
  const app = await createApp({ ...loadConfig({ NODE_ENV: 'test' }), databaseUrl });
  await app.init();
  try {
    const budgetRegistry = app.get(BudgetRegistryService);
    const budgetTracker = app.get(BudgetTrackerService);
    const integration = app.get(BudgetIntegrationService);

    line('1. Creating a budget (the seed example)');
    const budgetRequest = SEED_CREATE_BUDGET_EXAMPLE;
    const budget = await budgetRegistry.createBudget(budgetRequest, 'user-123');
    const budgetId = budget.id;
    console.log(`Created "${budget.name}" (${budget.id}): ${budget.amount} ${budget.currency} per ${budget.period}, created by ${budget.createdBy}`);
    const updated = await budgetRegistry.updateBudget(budgetId, {
      modelPolicy: { restrictedModels: ['gpt-4'], downgrades: { 'gpt-4': 'gpt-4o-mini' } },
    });
    console.log(`Model policy added (version ${updated.version}): gpt-4 is restricted past 80 %, downgrade to gpt-4o-mini`);

    line('2. Recording usage (the seed example)');
    const usageRequest = SEED_RECORD_USAGE_EXAMPLE;
    const usageRecord = await budgetTracker.recordUsage(budgetId, usageRequest);
    console.log(`Recorded ${usageRecord.amount} ${usageRecord.currency} for ${usageRecord.modelId} (request ${usageRecord.requestId})`);
    const replay = await budgetTracker.recordUsage(budgetId, usageRequest);
    console.log(`Sent again with the same requestId: same record ${replay.id === usageRecord.id ? '(counted once)' : '(NEW RECORD?!)'}`);

    line('3. Checking constraints (the seed example)');
    let estimatedCost = 100;
    let constraintCheck = await budgetTracker.checkBudgetConstraints(budgetId, estimatedCost);
    console.log(`Estimate ${estimatedCost} USD → canProceed ${constraintCheck.canProceed}, ${constraintCheck.percentUsedAfter} % used after`);

    line('4. Spending past the 80 % alert');
    await budgetTracker.recordUsage(budgetId, { amount: 4000, currency: 'USD', source: 'relaycore', modelId: 'gpt-4' });
    const status = await budgetTracker.getBudgetStatus(budgetId);
    console.log(`Status: ${status.currentAmount} of ${status.limit} ${status.currency} (${status.percentUsed} %, ${status.status}), ` +
      `${status.daysRemaining} days left, burn ${status.burnRate}/day, projected ${status.projectedTotal}`);
    for (const alert of status.activeAlerts) {
      console.log(`Alert ${alert.threshold} % triggered at ${alert.triggeredAt} (${alert.actions.join(', ')})`);
    }

    line('5. A blocked check with its suggested model');
    constraintCheck = await budgetTracker.checkBudgetConstraints(budgetId, 10, { modelId: 'gpt-4' });
    if (!constraintCheck.canProceed) {
      console.log('Request blocked:', constraintCheck.reason);
      console.log('Suggested actions:', constraintCheck.suggestedActions.map((action) => action.type).join(', '));
      console.log('Suggested model:', constraintCheck.suggestedModel);
    }
    estimatedCost = 2000;
    constraintCheck = await budgetTracker.checkBudgetConstraints(budgetId, estimatedCost, { modelId: 'gpt-4o-mini' });
    if (!constraintCheck.canProceed) {
      console.log('Request blocked:', constraintCheck.reason);
      console.log('Suggested actions:', constraintCheck.suggestedActions.map((action) => action.type).join(', '));
    }

    line('6. RelayCore: one multi-scope check and one usage for an AI request');
    const check = await integration.checkConstraints({ teamId: 'team-engineering-ai', userId: 'user-456', estimatedCost: 1, currency: 'USD', modelId: 'gpt-4o-mini' });
    console.log(`Integration check → canProceed ${check.canProceed} over ${check.results.length} budget(s)`);
    const recorded = await integration.recordUsage({ teamId: 'team-engineering-ai', userId: 'user-456', amount: 0.42, currency: 'USD', modelId: 'gpt-4o-mini', requestId: 'req-790' });
    console.log(`Integration usage → ${recorded.records.length} record(s), replayed ${recorded.replayed}`);
    const final = await budgetTracker.getBudgetStatus(budgetId);
    console.log(`Final: ${final.currentAmount} ${final.currency} in ${final.usageCount} records, status ${final.status}`);
    console.log('\nDemo complete.');
  } finally {
    await app.close();
    await embedded?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error('Demo failed:', error);
  process.exit(1);
});
