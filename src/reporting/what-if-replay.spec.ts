import type { BudgetAlertConfig } from '../budget/budget.types';
import { WindowReplay, type ProposedSettings, type ReplayBudget } from './what-if-replay';

const budget: ReplayBudget = {
  budgetId: '00000000-0000-4000-8000-000000000001',
  name: 'Replay',
  scopeType: 'team',
  scopeId: 'team-replay',
  parentId: null,
  currency: 'USD',
  warningThreshold: 75,
  criticalThreshold: 90,
};
const periodStart = new Date('2026-03-01T00:00:00Z');
const periodEnd = new Date('2026-03-31T00:00:00Z');
const day = (n: number) => new Date(periodStart.getTime() + n * 86_400_000);

/** The hand-built history: amount, model, day of the window. */
const HISTORY: [number, string, number][] = [
  [30, 'gpt-4', 1],
  [25, 'gpt-4', 2],
  [30, 'gpt-4', 3],
  [10, 'claude', 4],
  [5, 'claude', 5],
  [4, 'gpt-4', 6],
  [20, 'other', 7],
];

const alert = (id: string, threshold: number, actions: BudgetAlertConfig['actions'], type: BudgetAlertConfig['type'] = 'actual'): BudgetAlertConfig => ({
  id, threshold, type, actions, notificationChannels: [],
});

function replay(settings: Partial<ProposedSettings>) {
  const window = new WindowReplay(
    budget,
    { limit: '100', enforcement: 'hard', alerts: [], modelPolicy: null, ...settings },
    periodStart,
    periodEnd,
  );
  const rules = HISTORY.map(([amount, modelId, n]) => window.add({ amount: String(amount), modelId, occurredAt: day(n) }).rule);
  const result = window.result();
  return { result, rules, table: { ...result, spent: result.spent.toFixed(), recordedSpent: result.recordedSpent.toFixed(), wouldBlockAmount: result.wouldBlockAmount.toFixed() } };
}

describe('WindowReplay (hand-computed tables)', () => {
  it('a lower hard limit: blocked usage is not added, so a later small one still fits', () => {
    // 30 → 30; 25 → 55; 30 → 85 > 60 blocked; 10 → 65 blocked; 5 → 60 fits; 4 → 64 blocked; 20 → 80 blocked.
    const { table, rules } = replay({ limit: '60' });
    expect(rules).toEqual(['allowed', 'allowed', 'hard-limit', 'hard-limit', 'allowed', 'hard-limit', 'hard-limit']);
    expect(table).toEqual(
      expect.objectContaining({
        usageCount: 7,
        recordedSpent: '124',
        spent: '60',
        wouldBlockCount: 4,
        wouldBlockAmount: '64',
        firstBlockAt: day(3),
        wouldDowngradeCount: 0,
        wouldRequireApprovalCount: 0,
        alertsThatWouldFire: [],
      }),
    );
  });

  it('soft enforcement never blocks on the limit itself', () => {
    const { table } = replay({ limit: '60', enforcement: 'soft' });
    expect(table).toEqual(expect.objectContaining({ spent: '124', wouldBlockCount: 0, firstBlockAt: null }));
  });

  it('notify, auto-downgrade and require-approval alerts with a downgrade policy', () => {
    const { table, rules } = replay({
      alerts: [alert('a50', 50, ['notify']), alert('a80', 80, ['auto-downgrade']), alert('a90', 90, ['require-approval'])],
      modelPolicy: { restrictedModels: [], downgrades: { 'gpt-4': 'gpt-4o-mini' } },
    });
    // 30 → 30; 25 → 55 (a50 fires); 30 gpt-4 → 85: downgraded, added (a80 fires); 10 → 95: approval;
    // 5 → 90: approval; 4 gpt-4 → 89: downgraded, added; 20 → 109: approval (before the hard limit).
    expect(rules).toEqual(['allowed', 'allowed', 'auto-downgrade', 'require-approval', 'require-approval', 'auto-downgrade', 'require-approval']);
    expect(table).toEqual(
      expect.objectContaining({
        spent: '89',
        wouldBlockCount: 0,
        wouldDowngradeCount: 2,
        wouldRequireApprovalCount: 3,
        alertsThatWouldFire: [
          { alertId: 'a50', threshold: 50, type: 'actual', actions: ['notify'], firedAt: day(2), percentUsed: 55 },
          { alertId: 'a80', threshold: 80, type: 'actual', actions: ['auto-downgrade'], firedAt: day(3), percentUsed: 85 },
        ],
      }),
    );
  });

  it('block-all at 50 %: every usage that would reach it is refused, smaller ones later still pass', () => {
    // 30 → 30; 25 → 55 blocked; 30 → 60 blocked; 10 → 40; 5 → 45; 4 → 49; 20 → 69 blocked.
    const { table } = replay({ alerts: [alert('stop', 50, ['block-all'])] });
    expect(table).toEqual(
      expect.objectContaining({ spent: '49', wouldBlockCount: 3, wouldBlockAmount: '75', firstBlockAt: day(2), alertsThatWouldFire: [] }),
    );
  });

  it('restrict-models refuses the restricted model only', () => {
    const { table, rules } = replay({
      alerts: [alert('r', 50, ['restrict-models'])],
      modelPolicy: { restrictedModels: ['gpt-4'], downgrades: {} },
    });
    // 30 → 30; 25 gpt-4 → 55 refused; 30 gpt-4 → 60 refused; 10 claude → 40; 5 claude → 45; 4 gpt-4 → 49; 20 other → 69 (not restricted).
    expect(rules).toEqual(['allowed', 'restrict-models', 'restrict-models', 'allowed', 'allowed', 'allowed', 'allowed']);
    expect(table).toEqual(expect.objectContaining({ spent: '69', wouldBlockCount: 2, wouldBlockAmount: '55' }));
  });

  it('a forecast alert fires on the status projection at the usage instant', () => {
    const window = new WindowReplay(
      budget,
      { limit: '100', enforcement: 'hard', alerts: [alert('f', 100, ['notify'], 'forecast'), alert('x', 100, ['notify'])], modelPolicy: null },
      periodStart,
      periodEnd,
    );
    // 10 after 3 days of a 30-day window: 10 + 10/3 · 27 = 100 projected.
    window.add({ amount: '10', modelId: null, occurredAt: day(3) });
    expect(window.result().alertsThatWouldFire).toEqual([
      { alertId: 'f', threshold: 100, type: 'forecast', actions: ['notify'], firedAt: day(3), percentUsed: 10 },
    ]);
  });
});
