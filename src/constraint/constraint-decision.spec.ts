import { Decimal } from '../common/money';
import type { AlertAction, BudgetAlertConfig, ModelPolicy } from '../budget/budget.types';
import {
  type BudgetCheckContext,
  type BudgetDecision,
  type SuggestedAction,
  consideredAlerts,
  decideBudget,
  decideTogether,
} from './constraint-decision';

/**
 * SPEC §3 "Constraint checks": the decision ladder as a table (issue 4, acceptance 1).
 * Every case asserts canProceed, the reason (its meaningful words), requiresApproval,
 * suggestedModel (or its absence) and the rule that answered.
 *
 * Time is pinned: NOW is mid-window; decideBudget reads the clock only to word the "inactive" reason.
 */

const NOW = new Date('2030-06-15T12:00:00.000Z');
const WINDOW_START = new Date('2030-06-01T00:00:00.000Z');
const WINDOW_END = new Date('2030-07-01T00:00:00.000Z');
const RESETS_AT = WINDOW_END.toISOString();

beforeAll(() => {
  jest.useFakeTimers({ now: NOW });
});
afterAll(() => {
  jest.useRealTimers();
});

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const POLICY: ModelPolicy = {
  restrictedModels: ['gpt-4', 'claude-opus'],
  downgrades: { 'gpt-4': 'gpt-4o', 'gpt-4o': 'gpt-4o-mini' },
};

function alert(id: string, threshold: number, actions: AlertAction[], type: 'actual' | 'forecast' = 'actual'): BudgetAlertConfig {
  return { id, threshold, type, actions, notificationChannels: ['email'] };
}

/** A hard, active, 100 USD team budget in the window [Jun 1, Jul 1) with nothing spent. */
function ctx(overrides: Partial<BudgetCheckContext> = {}): BudgetCheckContext {
  return {
    budgetId: 'b-team',
    name: 'Team AI',
    scopeType: 'team',
    scopeId: 'team-ml',
    parentId: null,
    limit: '100',
    currency: 'USD',
    enforcement: 'hard',
    warningThreshold: 75,
    criticalThreshold: 90,
    alerts: [],
    modelPolicy: POLICY,
    periodStart: WINDOW_START,
    periodEnd: WINDOW_END,
    active: true,
    currentAmount: '0',
    reservedAmount: '0',
    ...overrides,
  };
}

const esc = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** A regex that matches the literal text. */
const lit = (text: string) => new RegExp(esc(text));

const BUDGET = lit('Budget "Team AI" (team team-ml)');
const RESETS = lit(`resets at ${RESETS_AT}`);

interface DecisionCase {
  name: string;
  context: BudgetCheckContext;
  estimate: string;
  model?: string;
  canProceed: boolean;
  rule: BudgetDecision['rule'];
  requiresApproval: boolean;
  suggestedModel: string | undefined;
  /** Every regex must match the reason; null: no reason at all. */
  reason: RegExp[] | null;
  remaining?: number;
  percentUsedAfter?: number;
  status?: BudgetDecision['status'];
  /** Suggested actions that must be present (partial match each). */
  actions?: Array<Partial<SuggestedAction>>;
  /** Suggested action types that must be absent. */
  absentActions?: SuggestedAction['type'][];
}

const CASES: DecisionCase[] = [
  // --- baseline -------------------------------------------------------------------------------
  {
    name: 'well under the limit with no alerts: allowed, no reason',
    context: ctx({ currentAmount: '10' }),
    estimate: '5',
    model: 'gpt-4',
    canProceed: true, rule: 'allowed', requiresApproval: false, suggestedModel: undefined, reason: null,
    remaining: 90, percentUsedAfter: 15, status: 'normal',
  },

  // --- 1. inactive ----------------------------------------------------------------------------
  {
    name: 'inactive, before its start, estimate far over the limit: allowed, reason says it starts later',
    context: ctx({
      active: false,
      periodStart: new Date('2030-07-01T00:00:00.000Z'),
      periodEnd: new Date('2030-08-01T00:00:00.000Z'),
      alerts: [alert('a-block', 50, ['block-all'])],
    }),
    estimate: '500',
    canProceed: true, rule: 'inactive', requiresApproval: false, suggestedModel: undefined,
    reason: [BUDGET, /is not active/, lit('starts at 2030-07-01T00:00:00.000Z'), /does not constrain/],
  },
  {
    name: 'inactive, after its end, already over the limit and block-all reached: allowed, reason says it ended',
    context: ctx({
      active: false,
      periodStart: new Date('2030-05-01T00:00:00.000Z'),
      periodEnd: new Date('2030-06-01T00:00:00.000Z'),
      currentAmount: '150',
      alerts: [alert('a-block', 80, ['block-all'])],
    }),
    estimate: '10',
    model: 'gpt-4',
    canProceed: true, rule: 'inactive', requiresApproval: false, suggestedModel: undefined,
    reason: [BUDGET, /is not active/, lit('ended at 2030-06-01T00:00:00.000Z'), /does not constrain/],
  },

  // --- 2. block-all ---------------------------------------------------------------------------
  {
    name: 'block-all at 100 % (fired at 100 of 100) after the limit was raised to 1000 (100 + 1 = 10.1 %): not reached now, allowed',
    context: ctx({ limit: '1000', currentAmount: '100', alerts: [alert('a-block', 100, ['block-all'])] }),
    estimate: '1',
    canProceed: true, rule: 'allowed', requiresApproval: false, suggestedModel: undefined, reason: null,
    remaining: 900, percentUsedAfter: 10.1, status: 'normal',
  },
  {
    name: 'block-all at 80 % reached by this request (70 + 15 = 85 %): blocked',
    context: ctx({ currentAmount: '70', alerts: [alert('a-block', 80, ['block-all'])] }),
    estimate: '15',
    canProceed: false, rule: 'block-all', requiresApproval: false, suggestedModel: undefined,
    reason: [BUDGET, /80% alert/, /blocks all spending/, lit('70 USD spent'), lit('of 100 USD'), lit('remaining 30 USD'), RESETS],
    remaining: 30, percentUsedAfter: 85,
    actions: [{ type: 'wait-for-next-period', resetsAt: RESETS_AT }, { type: 'request-approval' }],
  },
  {
    name: 'block-all at 80 % reached exactly (after == threshold): blocked',
    context: ctx({ currentAmount: '79', alerts: [alert('a-block', 80, ['block-all'])] }),
    estimate: '1',
    canProceed: false, rule: 'block-all', requiresApproval: false, suggestedModel: undefined,
    reason: [BUDGET, /80% alert/, /blocks all spending/],
    percentUsedAfter: 80,
  },
  {
    name: 'forecast block-all at 80 % (fired on the projection), the request below it (40 + 1 = 41 %): not considered, allowed',
    context: ctx({
      currentAmount: '40',
      alerts: [alert('a-forecast-block', 80, ['block-all'], 'forecast')],
    }),
    estimate: '1',
    canProceed: true, rule: 'allowed', requiresApproval: false, suggestedModel: undefined, reason: null,
    percentUsedAfter: 41,
  },
  {
    name: 'block-all at 80 % not reached (70 + 5 = 75 %): allowed',
    context: ctx({ currentAmount: '70', alerts: [alert('a-block', 80, ['block-all'])] }),
    estimate: '5',
    canProceed: true, rule: 'allowed', requiresApproval: false, suggestedModel: undefined, reason: null,
    percentUsedAfter: 75, status: 'normal',
  },

  // --- 3. require-approval --------------------------------------------------------------------
  {
    name: 'require-approval at 90 % reached (85 + 10 = 95 %): blocked, requires approval',
    context: ctx({ currentAmount: '85', alerts: [alert('a-approve', 90, ['require-approval'])] }),
    estimate: '10',
    model: 'gpt-4o',
    canProceed: false, rule: 'require-approval', requiresApproval: true, suggestedModel: undefined,
    reason: [BUDGET, /90% alert/, /needs approval/, lit('85 USD spent'), lit('remaining 15 USD'), RESETS],
    remaining: 15, status: 'warning',
    actions: [{ type: 'request-approval' }, { type: 'wait-for-next-period', resetsAt: RESETS_AT }],
  },

  // --- 4. restrict-models ---------------------------------------------------------------------
  {
    name: 'restrict-models reached, restricted gpt-4 with a downgrade: blocked, suggests gpt-4o',
    context: ctx({ currentAmount: '60', alerts: [alert('a-restrict', 50, ['restrict-models'])] }),
    estimate: '5',
    model: 'gpt-4',
    canProceed: false, rule: 'restrict-models', requiresApproval: false, suggestedModel: 'gpt-4o',
    reason: [BUDGET, /50% alert/, /restricts model gpt-4;/, /use gpt-4o instead/, lit('60 USD spent'), RESETS],
    actions: [{ type: 'use-another-model', model: 'gpt-4o' }, { type: 'wait-for-next-period', resetsAt: RESETS_AT }],
  },
  {
    name: 'restrict-models reached, restricted claude-opus without a downgrade: blocked, no suggested model',
    context: ctx({ currentAmount: '60', alerts: [alert('a-restrict', 50, ['restrict-models'])] }),
    estimate: '5',
    model: 'claude-opus',
    canProceed: false, rule: 'restrict-models', requiresApproval: false, suggestedModel: undefined,
    reason: [BUDGET, /50% alert/, /restricts model claude-opus \(/, lit('60 USD spent'), RESETS],
    actions: [{ type: 'use-another-model' }],
  },
  {
    name: 'restrict-models reached, unrestricted gpt-4o-mini: allowed',
    context: ctx({ currentAmount: '60', alerts: [alert('a-restrict', 50, ['restrict-models'])] }),
    estimate: '5',
    model: 'gpt-4o-mini',
    canProceed: true, rule: 'allowed', requiresApproval: false, suggestedModel: undefined, reason: null,
  },
  {
    name: 'restrict-models reached, no modelId given: allowed',
    context: ctx({ currentAmount: '60', alerts: [alert('a-restrict', 50, ['restrict-models'])] }),
    estimate: '5',
    canProceed: true, rule: 'allowed', requiresApproval: false, suggestedModel: undefined, reason: null,
  },
  {
    name: 'restrict-models not reached (30 + 5 = 35 % < 50 %), restricted gpt-4: allowed',
    context: ctx({ currentAmount: '30', alerts: [alert('a-restrict', 50, ['restrict-models'])] }),
    estimate: '5',
    model: 'gpt-4',
    canProceed: true, rule: 'allowed', requiresApproval: false, suggestedModel: undefined, reason: null,
  },

  // --- 5. hard limit --------------------------------------------------------------------------
  {
    name: 'hard limit, exactly at the limit (60 + 40 == 100): allowed',
    context: ctx({ currentAmount: '60' }),
    estimate: '40',
    model: 'gpt-4o-mini',
    canProceed: true, rule: 'allowed', requiresApproval: false, suggestedModel: undefined, reason: null,
    remaining: 40, percentUsedAfter: 100, status: 'normal',
  },
  {
    name: 'hard limit, one unit over (60 + 41 = 101 > 100): blocked, names limit, spend, estimate, reset',
    context: ctx({ currentAmount: '60' }),
    estimate: '41',
    model: 'gpt-4o-mini',
    canProceed: false, rule: 'hard-limit', requiresApproval: false, suggestedModel: undefined,
    reason: [BUDGET, lit('would exceed its hard limit of 100 USD'), lit('60 USD spent'), lit('0 USD held'), lit('estimated 41 USD'), lit('Remaining 40 USD'), RESETS],
    remaining: 40, percentUsedAfter: 101,
    actions: [
      { type: 'reduce-request', maxEstimatedCost: 40 },
      { type: 'wait-for-next-period', resetsAt: RESETS_AT },
      { type: 'request-approval' },
    ],
    absentActions: ['auto-downgrade'],
  },
  {
    name: 'hard limit, one unit over on gpt-4 (has a downgrade): blocked, suggests gpt-4o and auto-downgrade',
    context: ctx({ currentAmount: '60', modelPolicy: { restrictedModels: [], downgrades: { 'gpt-4': 'gpt-4o' } } }),
    estimate: '41',
    model: 'gpt-4',
    canProceed: false, rule: 'hard-limit', requiresApproval: false, suggestedModel: 'gpt-4o',
    reason: [BUDGET, lit('hard limit of 100 USD'), lit('60 USD spent'), lit('estimated 41 USD')],
    actions: [{ type: 'auto-downgrade', model: 'gpt-4o' }, { type: 'reduce-request', maxEstimatedCost: 40 }],
  },
  {
    name: 'hard limit, reserved amounts count in after (60 spent + 30 held + 11 = 101): blocked, remaining 10',
    context: ctx({ currentAmount: '60', reservedAmount: '30' }),
    estimate: '11',
    canProceed: false, rule: 'hard-limit', requiresApproval: false, suggestedModel: undefined,
    reason: [lit('hard limit of 100 USD'), lit('60 USD spent'), lit('30 USD held'), lit('estimated 11 USD'), lit('Remaining 10 USD')],
    remaining: 10, percentUsedAfter: 101,
    actions: [{ type: 'reduce-request', maxEstimatedCost: 10 }, { type: 'wait-for-next-period', resetsAt: RESETS_AT }],
  },
  {
    name: 'hard limit, reserved amounts fill it exactly (60 + 30 + 10 == 100): allowed',
    context: ctx({ currentAmount: '60', reservedAmount: '30' }),
    estimate: '10',
    canProceed: true, rule: 'allowed', requiresApproval: false, suggestedModel: undefined, reason: null,
    remaining: 10, percentUsedAfter: 100,
  },
  {
    name: 'hard limit, already over (150 of 100): blocked, remaining 0 (never negative), no reduce-request',
    context: ctx({ currentAmount: '150' }),
    estimate: '1',
    canProceed: false, rule: 'hard-limit', requiresApproval: false, suggestedModel: undefined,
    reason: [lit('hard limit of 100 USD'), lit('150 USD spent'), lit('estimated 1 USD'), lit('Remaining 0 USD'), RESETS],
    remaining: 0, percentUsedAfter: 151, status: 'exceeded',
    actions: [{ type: 'wait-for-next-period', resetsAt: RESETS_AT }],
    absentActions: ['reduce-request'],
  },
  {
    name: 'soft enforcement already over the limit (120 + 10 of 100): allowed, status exceeded',
    context: ctx({ enforcement: 'soft', currentAmount: '120' }),
    estimate: '10',
    model: 'gpt-4',
    canProceed: true, rule: 'allowed', requiresApproval: false, suggestedModel: undefined, reason: null,
    remaining: 0, percentUsedAfter: 130, status: 'exceeded',
  },

  // --- 6. auto-downgrade ----------------------------------------------------------------------
  {
    name: 'auto-downgrade at 50 % reached (45 + 10 = 55 %) on gpt-4: allowed, suggests gpt-4o',
    context: ctx({ currentAmount: '45', alerts: [alert('a-down', 50, ['auto-downgrade'])] }),
    estimate: '10',
    model: 'gpt-4',
    canProceed: true, rule: 'auto-downgrade', requiresApproval: false, suggestedModel: 'gpt-4o',
    reason: [BUDGET, /50% alert/, /downgrade gpt-4 to gpt-4o/],
    actions: [{ type: 'auto-downgrade', model: 'gpt-4o' }],
  },
  {
    name: 'auto-downgrade at 50 % not reached (30 + 10 = 40 %): allowed, no suggestion',
    context: ctx({ currentAmount: '30', alerts: [alert('a-down', 50, ['auto-downgrade'])] }),
    estimate: '10',
    model: 'gpt-4',
    canProceed: true, rule: 'allowed', requiresApproval: false, suggestedModel: undefined, reason: null,
  },
  {
    name: 'auto-downgrade reached, model without a downgrade (mistral-large): allowed, no suggestion',
    context: ctx({ currentAmount: '60', alerts: [alert('a-down', 50, ['auto-downgrade'])] }),
    estimate: '10',
    model: 'mistral-large',
    canProceed: true, rule: 'allowed', requiresApproval: false, suggestedModel: undefined, reason: null,
  },
  {
    name: 'auto-downgrade reached, no modelId: allowed, no suggestion',
    context: ctx({ currentAmount: '60', alerts: [alert('a-down', 50, ['auto-downgrade'])] }),
    estimate: '10',
    canProceed: true, rule: 'allowed', requiresApproval: false, suggestedModel: undefined, reason: null,
  },

  // --- 7. notify ------------------------------------------------------------------------------
  {
    name: 'notify reached (60 + 10 = 70 % ≥ 50 %): no change, allowed without a reason',
    context: ctx({ currentAmount: '60', alerts: [alert('a-notify', 50, ['notify'])] }),
    estimate: '10',
    model: 'gpt-4',
    canProceed: true, rule: 'allowed', requiresApproval: false, suggestedModel: undefined, reason: null,
  },
  {
    name: 'notify reached and over the hard limit: notify changes nothing, hard limit blocks',
    context: ctx({ currentAmount: '95', alerts: [alert('a-notify', 50, ['notify'])] }),
    estimate: '10',
    canProceed: false, rule: 'hard-limit', requiresApproval: false, suggestedModel: undefined,
    reason: [lit('hard limit of 100 USD'), lit('95 USD spent'), lit('estimated 10 USD')],
  },

  // --- precedence -----------------------------------------------------------------------------
  {
    name: 'precedence: block-all over require-approval (both reached)',
    context: ctx({
      currentAmount: '85',
      alerts: [alert('a-approve', 80, ['require-approval']), alert('a-block', 90, ['block-all'])],
    }),
    estimate: '10',
    canProceed: false, rule: 'block-all', requiresApproval: false, suggestedModel: undefined,
    reason: [BUDGET, /90% alert/, /blocks all spending/],
  },
  {
    name: 'precedence: require-approval over restrict-models (both reached, restricted gpt-4)',
    context: ctx({
      currentAmount: '85',
      alerts: [alert('a-restrict', 50, ['restrict-models']), alert('a-approve', 80, ['require-approval'])],
    }),
    estimate: '5',
    model: 'gpt-4',
    canProceed: false, rule: 'require-approval', requiresApproval: true, suggestedModel: undefined,
    reason: [BUDGET, /80% alert/, /needs approval/],
  },
  {
    name: 'precedence: restrict-models over hard limit (restricted gpt-4, 95 + 10 > 100)',
    context: ctx({ currentAmount: '95', alerts: [alert('a-restrict', 50, ['restrict-models'])] }),
    estimate: '10',
    model: 'gpt-4',
    canProceed: false, rule: 'restrict-models', requiresApproval: false, suggestedModel: 'gpt-4o',
    reason: [BUDGET, /restricts model gpt-4;/, /use gpt-4o instead/],
  },
  {
    name: 'precedence: hard limit over auto-downgrade (auto-downgrade reached, 95 + 10 > 100)',
    context: ctx({ currentAmount: '95', alerts: [alert('a-down', 50, ['auto-downgrade'])] }),
    estimate: '10',
    model: 'gpt-4',
    canProceed: false, rule: 'hard-limit', requiresApproval: false, suggestedModel: 'gpt-4o',
    reason: [lit('hard limit of 100 USD'), lit('95 USD spent'), lit('estimated 10 USD')],
  },
  {
    name: 'precedence: one alert with several actions applies the strongest (block-all)',
    context: ctx({ currentAmount: '60', alerts: [alert('a-multi', 50, ['notify', 'auto-downgrade', 'restrict-models', 'block-all'])] }),
    estimate: '1',
    model: 'gpt-4',
    canProceed: false, rule: 'block-all', requiresApproval: false, suggestedModel: undefined,
    reason: [/50% alert/, /blocks all spending/],
  },

  // --- forecast alerts ------------------------------------------------------------------------
  {
    name: 'forecast require-approval at 80 %, not triggered and after below it (70 %): not considered, allowed',
    context: ctx({ currentAmount: '60', alerts: [alert('a-fc', 80, ['require-approval'], 'forecast')] }),
    estimate: '10',
    canProceed: true, rule: 'allowed', requiresApproval: false, suggestedModel: undefined, reason: null,
  },
  {
    name: 'forecast require-approval at 80 %, after reaches it (75 + 10 = 85 %): considered, needs approval',
    context: ctx({ currentAmount: '75', alerts: [alert('a-fc', 80, ['require-approval'], 'forecast')] }),
    estimate: '10',
    canProceed: false, rule: 'require-approval', requiresApproval: true, suggestedModel: undefined,
    reason: [/80% alert/, /needs approval/],
  },
  {
    name: 'forecast require-approval at 80 % (fired on the projection), after only 30 %: not considered, allowed',
    context: ctx({
      currentAmount: '20',
      alerts: [alert('a-fc', 80, ['require-approval'], 'forecast')],
    }),
    estimate: '10',
    canProceed: true, rule: 'allowed', requiresApproval: false, suggestedModel: undefined, reason: null,
  },
  {
    name: 'forecast block-all at 80 % not reached (20 + 10 = 30 %): allowed',
    context: ctx({
      currentAmount: '20',
      alerts: [alert('a-fc', 80, ['block-all'], 'forecast')],
    }),
    estimate: '10',
    canProceed: true, rule: 'allowed', requiresApproval: false, suggestedModel: undefined, reason: null,
  },

  // --- figures and exactness ------------------------------------------------------------------
  {
    name: 'limit 3, spent 2.6999: percentUsedAfter shows 90 but 89.99666… % reaches neither the 90 % alert nor critical',
    context: ctx({ limit: '3', currentAmount: '2.6999', alerts: [alert('a-approve', 90, ['require-approval'])] }),
    estimate: '0',
    canProceed: true, rule: 'allowed', requiresApproval: false, suggestedModel: undefined, reason: null,
    percentUsedAfter: 90, status: 'warning',
  },
  {
    name: 'percentUsedAfter is rounded to 2 decimals (1 of 3 → 33.33)',
    context: ctx({ limit: '3', currentAmount: '0' }),
    estimate: '1',
    canProceed: true, rule: 'allowed', requiresApproval: false, suggestedModel: undefined, reason: null,
    remaining: 3, percentUsedAfter: 33.33,
  },
  {
    name: 'percentUsedAfter is rounded to 2 decimals (2 of 3 → 66.67)',
    context: ctx({ limit: '3', currentAmount: '1' }),
    estimate: '1',
    canProceed: true, rule: 'allowed', requiresApproval: false, suggestedModel: undefined, reason: null,
    remaining: 2, percentUsedAfter: 66.67,
  },
  {
    name: 'decimal exactness: limit 0.3, spent 0.1, estimate 0.2 → after == limit: allowed',
    context: ctx({ limit: '0.3', currentAmount: '0.1' }),
    estimate: '0.2',
    canProceed: true, rule: 'allowed', requiresApproval: false, suggestedModel: undefined, reason: null,
    remaining: 0.2, percentUsedAfter: 100,
  },
  {
    name: 'decimal exactness: limit 0.3, spent 0.1, held 0.1, estimate 0.1 → after == limit: allowed',
    context: ctx({ limit: '0.3', currentAmount: '0.1', reservedAmount: '0.1' }),
    estimate: '0.1',
    canProceed: true, rule: 'allowed', requiresApproval: false, suggestedModel: undefined, reason: null,
    remaining: 0.1, percentUsedAfter: 100,
  },
  {
    name: 'decimal exactness: 10 fractional digits, one 1e-10 over the limit: blocked',
    context: ctx({ limit: '0.3', currentAmount: '0.1' }),
    estimate: '0.2000000001',
    canProceed: false, rule: 'hard-limit', requiresApproval: false, suggestedModel: undefined,
    reason: [lit('hard limit of 0.3 USD'), lit('0.1 USD spent'), lit('estimated 0.2000000001 USD'), lit('Remaining 0.2 USD')],
    remaining: 0.2,
    actions: [{ type: 'reduce-request', maxEstimatedCost: 0.2 }],
  },
];

describe('decideBudget: the SPEC §3 ladder', () => {
  it('has at least 24 named cases', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(24);
    expect(new Set(CASES.map((c) => c.name)).size).toBe(CASES.length);
  });

  it.each(CASES.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const decision = decideBudget(c.context, new Decimal(c.estimate), c.model);

    expect(decision.canProceed).toBe(c.canProceed);
    expect(decision.rule).toBe(c.rule);
    expect(decision.requiresApproval).toBe(c.requiresApproval);
    if (c.suggestedModel === undefined) expect(decision.suggestedModel).toBeUndefined();
    else expect(decision.suggestedModel).toBe(c.suggestedModel);

    if (c.reason === null) {
      expect(decision.reason).toBeUndefined();
    } else {
      expect(typeof decision.reason).toBe('string');
      for (const pattern of c.reason) expect(decision.reason).toMatch(pattern);
    }

    // Figures every decision carries.
    expect(decision.budgetId).toBe(c.context.budgetId);
    expect(decision.budgetName).toBe(c.context.name);
    expect(decision.resetsAt).toBe(c.context.periodEnd.toISOString());
    expect(decision.estimatedCost).toBe(Number(c.estimate));
    expect(decision.remaining).toBeGreaterThanOrEqual(0);
    if (c.remaining !== undefined) expect(decision.remaining).toBe(c.remaining);
    if (c.percentUsedAfter !== undefined) expect(decision.percentUsedAfter).toBe(c.percentUsedAfter);
    expect(decision.percentUsedAfter).toBe(Number(decision.percentUsedAfter.toFixed(2)));
    if (c.status !== undefined) expect(decision.status).toBe(c.status);

    for (const action of c.actions ?? []) {
      expect(decision.suggestedActions).toEqual(expect.arrayContaining([expect.objectContaining(action)]));
    }
    for (const type of c.absentActions ?? []) {
      expect(decision.suggestedActions.map((a) => a.type)).not.toContain(type);
    }
    // A blocked answer always tells the caller when the window resets.
    if (!decision.canProceed) {
      expect(decision.suggestedActions).toEqual(
        expect.arrayContaining([expect.objectContaining({ type: 'wait-for-next-period', resetsAt: RESETS_AT })]),
      );
    }
  });

  it('inactive wording follows the clock: the same future window "starts at", a past one "ended at"', () => {
    const future = ctx({ active: false, periodStart: new Date('2031-01-01T00:00:00.000Z'), periodEnd: new Date('2031-02-01T00:00:00.000Z') });
    const past = ctx({ active: false, periodStart: new Date('2029-01-01T00:00:00.000Z'), periodEnd: new Date('2029-02-01T00:00:00.000Z') });
    expect(decideBudget(future, new Decimal(1), undefined).reason).toMatch(lit('starts at 2031-01-01T00:00:00.000Z'));
    expect(decideBudget(past, new Decimal(1), undefined).reason).toMatch(lit('ended at 2029-02-01T00:00:00.000Z'));
  });

  it('alertActions lists the actions of the considered alerts only', () => {
    const context = ctx({
      currentAmount: '60',
      alerts: [alert('a-notify', 50, ['notify']), alert('a-block', 90, ['block-all']), alert('a-down', 60, ['auto-downgrade'])],
    });
    const decision = decideBudget(context, new Decimal(5), 'gpt-4');
    expect(decision.alertActions.sort()).toEqual(['auto-downgrade', 'notify']);
  });
});

describe('consideredAlerts', () => {
  const alerts = [
    alert('a50', 50, ['notify']),
    alert('a80', 80, ['block-all']),
    alert('f90', 90, ['require-approval'], 'forecast'),
    alert('f120', 120, ['require-approval'], 'forecast'),
  ];

  it('takes alerts whose threshold is ≤ the percent after the request', () => {
    expect(consideredAlerts(ctx({ alerts }), new Decimal(80)).map((a) => a.id)).toEqual(['a50', 'a80']);
    expect(consideredAlerts(ctx({ alerts }), new Decimal('79.99')).map((a) => a.id)).toEqual(['a50']);
  });

  it('only the percent decides, for forecast alerts too: 10 % considers none, 120 % all', () => {
    expect(consideredAlerts(ctx({ alerts }), new Decimal(10)).map((a) => a.id)).toEqual([]);
    expect(consideredAlerts(ctx({ alerts }), new Decimal(120)).map((a) => a.id)).toEqual(['a50', 'a80', 'f90', 'f120']);
  });

  it('the exact percent decides: 89.9999999999 % does not reach a 90 % alert', () => {
    expect(consideredAlerts(ctx({ alerts }), new Decimal('89.9999999999')).map((a) => a.id)).toEqual(['a50', 'a80']);
  });

  it('a forecast alert not reached is not considered', () => {
    expect(consideredAlerts(ctx({ alerts }), new Decimal(89)).map((a) => a.id)).toEqual(['a50', 'a80']);
  });
});

// ---------------------------------------------------------------------------------------------
// decideTogether: several budgets decided together
// ---------------------------------------------------------------------------------------------

describe('decideTogether', () => {
  const decideAll = (contexts: BudgetCheckContext[], estimate: string, model?: string) =>
    decideTogether(contexts, new Decimal(estimate), model);

  const user = (overrides: Partial<BudgetCheckContext> = {}) =>
    ctx({ budgetId: 'b-user', name: 'Alice', scopeType: 'user', scopeId: 'alice', parentId: 'b-team', modelPolicy: null, ...overrides });
  const team = (overrides: Partial<BudgetCheckContext> = {}) =>
    ctx({ budgetId: 'b-team', name: 'Team AI', scopeType: 'team', scopeId: 'team-ml', modelPolicy: null, ...overrides });
  const project = (overrides: Partial<BudgetCheckContext> = {}) =>
    ctx({ budgetId: 'b-project', name: 'Project Atlas', scopeType: 'project', scopeId: 'atlas', modelPolicy: null, ...overrides });

  it('all budgets allow: canProceed, no approval, no block, no reason, no suggestion', () => {
    const { combined } = decideAll([user({ currentAmount: '10' }), team({ currentAmount: '20' }), project()], '5', 'gpt-4');
    expect(combined.canProceed).toBe(true);
    expect(combined.requiresApproval).toBe(false);
    expect(combined.blockedBy).toBeUndefined();
    expect(combined.reason).toBeUndefined();
    expect(combined.suggestedModel).toBeUndefined();
  });

  it('one budget blocks: canProceed false, blockedBy names it, the reason is its reason', () => {
    const { decisions, combined } = decideAll([user({ currentAmount: '10' }), team(), project({ currentAmount: '98' })], '5', 'gpt-4o');
    expect(combined.canProceed).toBe(false);
    expect(combined.requiresApproval).toBe(false);
    expect(combined.blockedBy?.budgetId).toBe('b-project');
    expect(combined.blockedBy?.budgetName).toBe('Project Atlas');
    expect(combined.reason).toBe(decisions[2].reason);
    expect(combined.reason).toMatch(lit('Budget "Project Atlas" (project atlas)'));
    expect(combined.reason).toMatch(lit('hard limit of 100 USD'));
    expect(combined.suggestedModel).toBeUndefined();
    expect(combined.suggestedActions).toEqual(
      expect.arrayContaining([expect.objectContaining({ type: 'reduce-request', maxEstimatedCost: 2 })]),
    );
  });

  it('several block: blockedBy is the first in the given (most specific first) order', () => {
    const { combined } = decideAll([user({ currentAmount: '99' }), team({ currentAmount: '99' })], '5');
    expect(combined.canProceed).toBe(false);
    expect(combined.blockedBy?.budgetId).toBe('b-user');
    expect(combined.reason).toMatch(lit('Budget "Alice" (user alice)'));
  });

  it('requiresApproval when any budget requires approval', () => {
    const { combined } = decideAll(
      [user({ currentAmount: '10' }), team({ currentAmount: '85', alerts: [alert('a-approve', 90, ['require-approval'])] })],
      '10',
    );
    expect(combined.canProceed).toBe(false);
    expect(combined.requiresApproval).toBe(true);
    expect(combined.blockedBy?.budgetId).toBe('b-team');
    expect(combined.reason).toMatch(/needs approval/);
  });

  it('suggests one model acceptable to all: A downgrades gpt-4 → gpt-4o, B restricts gpt-4o and downgrades it → gpt-4o-mini', () => {
    const a = team({
      currentAmount: '60',
      alerts: [alert('a-down', 50, ['auto-downgrade'])],
      modelPolicy: { restrictedModels: [], downgrades: { 'gpt-4': 'gpt-4o' } },
    });
    const b = project({
      currentAmount: '60',
      alerts: [alert('b-restrict', 50, ['restrict-models'])],
      modelPolicy: { restrictedModels: ['gpt-4o'], downgrades: { 'gpt-4o': 'gpt-4o-mini' } },
    });
    const { decisions, combined } = decideAll([a, b], '1', 'gpt-4');
    // A's own step (gpt-4o) is restricted by B: A names the model both accept, and says why.
    expect(decisions[0].suggestedModel).toBe('gpt-4o-mini');
    expect(decisions[0].reason).toMatch(lit("downgrade gpt-4 to gpt-4o-mini (the model every budget of this request accepts; this budget's policy names gpt-4o)"));
    expect(decisions[1].canProceed).toBe(true); // gpt-4 itself is not restricted by B
    expect(combined.canProceed).toBe(true);
    expect(combined.requiresApproval).toBe(false);
    expect(combined.suggestedModel).toBe('gpt-4o-mini');
    expect(combined.reason).toMatch(/downgrade gpt-4 to gpt-4o-mini/);
    expect(combined.suggestedActions).toEqual([expect.objectContaining({ type: 'auto-downgrade', model: 'gpt-4o-mini' })]);
  });

  it('auto-downgrade on one budget is one step: gpt-4 → gpt-4o (not on to gpt-4o-mini), named alike everywhere', () => {
    const a = team({ currentAmount: '60', alerts: [alert('a-down', 50, ['auto-downgrade'])], modelPolicy: POLICY });
    const { combined } = decideAll([a], '1', 'gpt-4');
    expect(combined.canProceed).toBe(true);
    expect(combined.rule).toBe('auto-downgrade');
    expect(combined.suggestedModel).toBe('gpt-4o');
    expect(combined.reason).toMatch(/downgrade gpt-4 to gpt-4o\b(?!-)/);
    expect(combined.suggestedActions).toEqual([expect.objectContaining({ type: 'auto-downgrade', model: 'gpt-4o' })]);
  });

  it('a hard limit on gpt-4 suggests its one-step downgrade gpt-4o, not the end of the chain', () => {
    const a = team({ currentAmount: '60', modelPolicy: POLICY });
    const { combined } = decideAll([a], '41', 'gpt-4');
    expect(combined.canProceed).toBe(false);
    expect(combined.rule).toBe('hard-limit');
    expect(combined.suggestedModel).toBe('gpt-4o');
    expect(combined.suggestedActions).toEqual(expect.arrayContaining([expect.objectContaining({ type: 'auto-downgrade', model: 'gpt-4o' })]));
  });

  it('a blocking restriction with a downgrade elsewhere: blocked, but the common suggestion is usable by all', () => {
    const a = team({
      currentAmount: '60',
      alerts: [alert('a-restrict', 50, ['restrict-models'])],
      modelPolicy: { restrictedModels: ['gpt-4'], downgrades: {} },
    });
    const b = project({ modelPolicy: { restrictedModels: [], downgrades: { 'gpt-4': 'gpt-4o' } } });
    const { combined } = decideAll([a, b], '1', 'gpt-4');
    expect(combined.canProceed).toBe(false);
    expect(combined.blockedBy?.budgetId).toBe('b-team');
    expect(combined.suggestedModel).toBe('gpt-4o');
  });

  it('no acceptable model: restricted with no downgrade anywhere → no suggestion', () => {
    const a = team({
      currentAmount: '60',
      alerts: [alert('a-restrict', 50, ['restrict-models'])],
      modelPolicy: { restrictedModels: ['gpt-4'], downgrades: {} },
    });
    const { combined } = decideAll([a, project()], '1', 'gpt-4');
    expect(combined.canProceed).toBe(false);
    expect(combined.blockedBy?.budgetId).toBe('b-team');
    expect(combined.reason).toMatch(/restricts model gpt-4/);
    expect(combined.suggestedModel).toBeUndefined();
  });

  it('no acceptable model: the downgrade target is itself restricted by another budget, with no further step', () => {
    const a = team({
      currentAmount: '60',
      alerts: [alert('a-restrict', 50, ['restrict-models'])],
      modelPolicy: { restrictedModels: ['gpt-4'], downgrades: { 'gpt-4': 'gpt-4o' } },
    });
    const b = project({
      currentAmount: '60',
      alerts: [alert('b-restrict', 50, ['restrict-models'])],
      modelPolicy: { restrictedModels: ['gpt-4o'], downgrades: {} },
    });
    const { decisions, combined } = decideAll([a, b], '1', 'gpt-4');
    // A restricts gpt-4 and would suggest gpt-4o, which B restricts: no model to name anywhere.
    expect(decisions[0].suggestedModel).toBeUndefined();
    expect(combined.canProceed).toBe(false);
    expect(combined.suggestedModel).toBeUndefined();
    expect(combined.reason).not.toMatch(/gpt-4o/);
    expect(combined.suggestedActions.filter((action) => action.model)).toEqual([]);
  });

  it('a downgrade loop across budgets (a → b, b → a): one step, model-b', () => {
    const a = team({
      currentAmount: '60',
      alerts: [alert('a-down', 50, ['auto-downgrade'])],
      modelPolicy: { restrictedModels: [], downgrades: { 'model-a': 'model-b' } },
    });
    const b = project({
      currentAmount: '60',
      alerts: [alert('b-down', 50, ['auto-downgrade'])],
      modelPolicy: { restrictedModels: [], downgrades: { 'model-b': 'model-a' } },
    });
    const { combined } = decideAll([a, b], '1', 'model-a');
    expect(combined.canProceed).toBe(true);
    expect(combined.suggestedModel).toBe('model-b');
  });

  it('a downgrade loop inside one budget (a → b → a): one step, model-b', () => {
    const a = team({
      currentAmount: '60',
      alerts: [alert('a-down', 50, ['auto-downgrade'])],
      modelPolicy: { restrictedModels: [], downgrades: { 'model-a': 'model-b', 'model-b': 'model-a' } },
    });
    const { decisions, combined } = decideAll([a], '1', 'model-a');
    expect(decisions[0].suggestedModel).toBe('model-b');
    expect(combined.suggestedModel).toBe('model-b');
  });

  it('a restriction loop (A restricts a and b, a → b → a) terminates without a suggestion', () => {
    const a = team({
      currentAmount: '60',
      alerts: [alert('a-restrict', 50, ['restrict-models'])],
      modelPolicy: { restrictedModels: ['model-a', 'model-b'], downgrades: { 'model-a': 'model-b', 'model-b': 'model-a' } },
    });
    const { decisions, combined } = decideAll([a], '1', 'model-a');
    expect(combined.canProceed).toBe(false);
    expect(combined.suggestedModel).toBeUndefined();
    expect(decisions[0].suggestedModel).toBeUndefined();
  });

  it('an inactive budget neither blocks nor objects to a model', () => {
    const inactive = project({
      active: false,
      periodStart: new Date('2030-07-01T00:00:00.000Z'),
      periodEnd: new Date('2030-08-01T00:00:00.000Z'),
      alerts: [alert('p-restrict', 1, ['restrict-models', 'block-all'])],
      modelPolicy: { restrictedModels: ['gpt-4'], downgrades: { 'gpt-4': 'gpt-4o' } },
      currentAmount: '500',
    });
    const { combined } = decideAll([user(), inactive], '5', 'gpt-4');
    expect(combined.canProceed).toBe(true);
    expect(combined.blockedBy).toBeUndefined();
    expect(combined.suggestedModel).toBeUndefined();
  });

  it('suggestedActions are de-duplicated across blocking budgets', () => {
    const { combined } = decideAll([user({ currentAmount: '99' }), team({ currentAmount: '99' })], '5');
    const keys = combined.suggestedActions.map((a) => `${a.type}:${a.model ?? ''}:${a.resetsAt ?? ''}`);
    expect(new Set(keys).size).toBe(keys.length);
    expect(keys).toContain(`wait-for-next-period::${RESETS_AT}`);
  });
});
