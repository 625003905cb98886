import { Decimal, decimalOf, toMoneyNumber } from '../common/money';
import type { AlertAction, BudgetAlertConfig, ModelPolicy, ScopeType } from '../budget/budget.types';
import type { BudgetStatus } from '../usage/dto/budget-status.dto';
import { statusLabel } from '../usage/budget-status.calculator';

/** Everything a decision needs about one budget, read in the same round trip as the check. */
export interface BudgetCheckContext {
  budgetId: string;
  name: string;
  scopeType: ScopeType;
  scopeId: string;
  parentId: string | null;
  limit: string;
  currency: string;
  enforcement: 'hard' | 'soft';
  warningThreshold: string | number;
  criticalThreshold: string | number;
  alerts: BudgetAlertConfig[];
  modelPolicy: ModelPolicy | null;
  periodStart: Date;
  periodEnd: Date;
  active: boolean;
  /** False when the budget was named by id and its filter refuses the request (SPEC §12.2). */
  matches?: boolean;
  currentAmount: string;
  reservedAmount: string;
}

export type SuggestedActionType = 'auto-downgrade' | 'reduce-request' | 'request-approval' | 'wait-for-next-period' | 'use-another-model';

export interface SuggestedAction {
  type: SuggestedActionType;
  description: string;
  /** For auto-downgrade / use-another-model. */
  model?: string;
  /** For reduce-request: the largest estimate that would pass. */
  maxEstimatedCost?: number;
  /** For wait-for-next-period: when the window resets. */
  resetsAt?: string;
}

export const DECISION_RULES = [
  'inactive', 'filtered', 'block-all', 'require-approval', 'restrict-models', 'hard-limit', 'auto-downgrade', 'allowed',
] as const;
export type DecisionRule = (typeof DECISION_RULES)[number];

export interface BudgetDecision {
  budgetId: string;
  budgetName: string;
  canProceed: boolean;
  reason?: string;
  requiresApproval: boolean;
  suggestedActions: SuggestedAction[];
  suggestedModel?: string;
  estimatedCost: number;
  currentAmount: number;
  reservedAmount: number;
  limit: number;
  currency: string;
  /** Before this request: limit − current − reserved, not below 0. */
  remaining: number;
  percentUsedAfter: number;
  status: BudgetStatus;
  active: boolean;
  /** When the window resets (its end). */
  resetsAt: string;
  /** Actions of the alerts this request is judged by (their current threshold reached after it). */
  alertActions: AlertAction[];
  /** The rule of the ladder that answered. */
  rule: DecisionRule;
}

const describeBudget = (c: BudgetCheckContext) => `Budget "${c.name}" (${c.scopeType} ${c.scopeId})`;
const money = (value: Decimal, currency: string) => `${toMoneyNumber(value)} ${currency}`;

/**
 * The alerts a request is judged by: those whose threshold, as the budget defines it now, is at
 * most the exact percent after the request (SPEC §3). An alert that fired earlier in the window is
 * not among them once a raised limit or threshold puts it out of reach again.
 */
export function consideredAlerts(context: BudgetCheckContext, afterPercent: Decimal): BudgetAlertConfig[] {
  return context.alerts.filter((alert) => afterPercent.gte(decimalOf(String(alert.threshold))));
}

/** The model every budget of a check accepts instead of the requested one (undefined: none does). */
export interface AgreedModel {
  model: string | undefined;
}

/**
 * The SPEC §3 ladder for one budget: inactive, filtered (SPEC §12.2), block-all, require-approval, restrict-models, hard
 * limit, auto-downgrade, notify. A pure function of the context, so every rule is unit-tested.
 *
 * A downgrade is one step: the requested model's entry in the budget's policy (§3.6). When the
 * budget is decided together with others, `agreed` is the model they all accept; the budget then
 * names that one, so the combined answer's reason, actions and suggestedModel agree.
 */
export function decideBudget(
  context: BudgetCheckContext,
  estimatedCost: Decimal,
  modelId: string | undefined,
  agreed?: AgreedModel,
): BudgetDecision {
  const limit = decimalOf(context.limit);
  const current = decimalOf(context.currentAmount);
  const reserved = decimalOf(context.reservedAmount);
  const after = current.add(reserved).add(estimatedCost);
  const afterPercent = after.div(limit).mul(100);
  const remaining = Decimal.max(0, limit.sub(current).sub(reserved));
  const resetsAt = context.periodEnd.toISOString();
  const base: BudgetDecision = {
    budgetId: context.budgetId,
    budgetName: context.name,
    canProceed: true,
    requiresApproval: false,
    suggestedActions: [],
    estimatedCost: toMoneyNumber(estimatedCost),
    currentAmount: toMoneyNumber(context.currentAmount),
    reservedAmount: toMoneyNumber(context.reservedAmount),
    limit: toMoneyNumber(context.limit),
    currency: context.currency,
    remaining: toMoneyNumber(remaining),
    percentUsedAfter: afterPercent.toDecimalPlaces(2).toNumber(),
    status: statusLabel(current, limit, decimalOf(String(context.warningThreshold)), decimalOf(String(context.criticalThreshold))),
    active: context.active,
    resetsAt,
    alertActions: [],
    rule: 'allowed',
  };

  if (!context.active) {
    const when = Date.now() < context.periodStart.getTime() ? `starts at ${context.periodStart.toISOString()}` : `ended at ${resetsAt}`;
    return { ...base, rule: 'inactive', reason: `${describeBudget(context)} is not active (it ${when}), so it does not constrain this request.` };
  }

  if (context.matches === false) {
    return {
      ...base,
      rule: 'filtered',
      reason: `${describeBudget(context)} counts only the requests its filter accepts, and this one is not among them, so it does not constrain this request.`,
    };
  }

  const alerts = consideredAlerts(context, afterPercent);
  const actions = new Set<AlertAction>(alerts.flatMap((alert) => alert.actions));
  base.alertActions = [...actions];
  const thresholdFor = (action: AlertAction) =>
    Math.min(...alerts.filter((alert) => alert.actions.includes(action)).map((alert) => alert.threshold));
  const ownDowngrade = modelId ? context.modelPolicy?.downgrades?.[modelId] : undefined;
  // What a budget with a downgrade for the model suggests, and what replaces a restricted model.
  const downgrade = agreed ? (ownDowngrade === undefined ? undefined : agreed.model) : ownDowngrade;
  const replacement = agreed ? agreed.model : ownDowngrade;
  const agreedNote = (model: string) =>
    model === ownDowngrade
      ? ''
      : ` (the model every budget of this request accepts${ownDowngrade === undefined ? '' : `; this budget's policy names ${ownDowngrade}`})`;
  const wait: SuggestedAction = {
    type: 'wait-for-next-period',
    description: `Wait until the window resets at ${resetsAt}.`,
    resetsAt,
  };
  // Only the refusals below quote it: built when one of them answers.
  const spendLine = () =>
    `${money(current, context.currency)} spent and ${money(reserved, context.currency)} held of ${money(limit, context.currency)}; remaining ${money(remaining, context.currency)}; it resets at ${resetsAt}`;

  if (actions.has('block-all')) {
    return {
      ...base,
      canProceed: false,
      rule: 'block-all',
      reason: `${describeBudget(context)} has reached its ${thresholdFor('block-all')}% alert, which blocks all spending (${spendLine()}).`,
      suggestedActions: [wait, { type: 'request-approval', description: 'Ask a budget owner to raise the limit or lift the block.' }],
    };
  }
  if (actions.has('require-approval')) {
    return {
      ...base,
      canProceed: false,
      requiresApproval: true,
      rule: 'require-approval',
      reason: `${describeBudget(context)} has reached its ${thresholdFor('require-approval')}% alert: further spending needs approval (${spendLine()}).`,
      suggestedActions: [{ type: 'request-approval', description: 'Request approval from a budget owner for this call.' }, wait],
    };
  }
  if (actions.has('restrict-models') && modelId && context.modelPolicy?.restrictedModels?.includes(modelId)) {
    return {
      ...base,
      canProceed: false,
      rule: 'restrict-models',
      suggestedModel: replacement,
      reason:
        `${describeBudget(context)} has reached its ${thresholdFor('restrict-models')}% alert, which restricts model ${modelId}` +
        (replacement ? `; use ${replacement} instead${agreedNote(replacement)}` : '') + ` (${spendLine()}).`,
      suggestedActions: [
        ...(replacement
          ? [{ type: 'use-another-model' as const, description: `Retry with ${replacement}.`, model: replacement }]
          : [{ type: 'use-another-model' as const, description: `Retry with a model that is not restricted.` }]),
        wait,
      ],
    };
  }
  if (context.enforcement === 'hard' && after.gt(limit)) {
    const suggestions: SuggestedAction[] = [];
    if (downgrade) suggestions.push({ type: 'auto-downgrade', description: `Retry with the cheaper ${downgrade}.`, model: downgrade });
    if (remaining.gt(0)) {
      suggestions.push({
        type: 'reduce-request',
        description: `Reduce the request to cost at most ${money(remaining, context.currency)}.`,
        maxEstimatedCost: toMoneyNumber(remaining),
      });
    }
    suggestions.push(wait, { type: 'request-approval', description: 'Ask a budget owner to raise the limit.' });
    return {
      ...base,
      canProceed: false,
      rule: 'hard-limit',
      suggestedModel: downgrade,
      reason:
        `${describeBudget(context)} would exceed its hard limit of ${money(limit, context.currency)}: ` +
        `${money(current, context.currency)} spent and ${money(reserved, context.currency)} held, plus this request's estimated ` +
        `${money(estimatedCost, context.currency)}. Remaining ${money(remaining, context.currency)}; it resets at ${resetsAt}.`,
      suggestedActions: suggestions,
    };
  }
  if (actions.has('auto-downgrade') && downgrade) {
    return {
      ...base,
      rule: 'auto-downgrade',
      suggestedModel: downgrade,
      reason: `${describeBudget(context)} has reached its ${thresholdFor('auto-downgrade')}% alert: downgrade ${modelId} to ${downgrade}${agreedNote(downgrade)}.`,
      suggestedActions: [{ type: 'auto-downgrade', description: `Use ${downgrade} instead of ${modelId}.`, model: downgrade }],
    };
  }
  return base;
}

export interface CombinedDecision {
  canProceed: boolean;
  requiresApproval: boolean;
  reason?: string;
  suggestedModel?: string;
  suggestedActions: SuggestedAction[];
  /** The first budget that blocked, most specific first. */
  blockedBy?: BudgetDecision;
  /** The rule that decided: the blocking budget's; else auto-downgrade when a model is suggested; else inactive when no budget is active; else allowed. */
  rule: DecisionRule;
}

/**
 * Several budgets decided together (a budget's ancestors, or every budget of the integration's
 * scopes), most specific first: the request proceeds only if each allows it, and one suggested
 * model must suit them all. Each budget is decided on its own first; when a model was requested,
 * each is decided again naming the model they all accept, so that every part of the answer (and
 * of each budget's) names the same one.
 */
/** The rules whose answer names a model (a downgrade or a replacement). */
const MODEL_NAMING_RULES: DecisionRule[] = ['restrict-models', 'hard-limit', 'auto-downgrade'];

export function decideTogether(
  contexts: BudgetCheckContext[],
  estimatedCost: Decimal,
  modelId: string | undefined,
): { decisions: BudgetDecision[]; combined: CombinedDecision } {
  const alone = contexts.map((context) => decideBudget(context, estimatedCost, modelId));
  if (modelId === undefined) return { decisions: alone, combined: combineDecisions(alone, undefined) };
  const agreed: AgreedModel = { model: commonModel(alone, contexts, modelId) };
  // The agreed model only changes the answers that name a model; with none agreed and no budget
  // answering by such a rule, deciding again would give the same answers (the hot path's case).
  if (agreed.model === undefined && !alone.some((decision) => MODEL_NAMING_RULES.includes(decision.rule))) {
    return { decisions: alone, combined: combineDecisions(alone, undefined) };
  }
  const decisions = contexts.map((context) => decideBudget(context, estimatedCost, modelId, agreed));
  return { decisions, combined: combineDecisions(decisions, agreed.model) };
}

function combineDecisions(decisions: BudgetDecision[], suggestedModel: string | undefined): CombinedDecision {
  const blocked = decisions.filter((decision) => !decision.canProceed);
  const seen = new Set<string>();
  const suggestedActions = (blocked.length ? blocked : decisions)
    .flatMap((decision) => decision.suggestedActions)
    .filter((action) => {
      const key = `${action.type}:${action.model ?? ''}:${action.resetsAt ?? ''}`;
      return seen.has(key) ? false : (seen.add(key), true);
    });
  return {
    canProceed: blocked.length === 0,
    requiresApproval: decisions.some((decision) => decision.requiresApproval),
    reason: blocked[0]?.reason ?? decisions.find((decision) => decision.suggestedModel)?.reason,
    suggestedModel,
    suggestedActions,
    blockedBy: blocked[0],
    rule:
      blocked[0]?.rule ??
      (suggestedModel || decisions.some((decision) => decision.rule === 'auto-downgrade')
        ? 'auto-downgrade'
        : decisions.length && decisions.every((decision) => decision.rule === 'inactive')
          ? 'inactive'
          : decisions.length && decisions.every((decision) => decision.rule === 'inactive' || decision.rule === 'filtered')
            ? 'filtered'
            : 'allowed'),
  };
}

/**
 * The one model every budget accepts instead of the requested one, or undefined when the
 * requested model suits them all (or none can be found). A budget asks for its one-step downgrade
 * of the requested model only (auto-downgrade reached, or a hard limit it would exceed); a budget
 * whose restrict-models alert is reached refuses every candidate it restricts, so the search
 * steps on from a restricted candidate to its downgrade. Bounded, since policies may form loops.
 */
function commonModel(decisions: BudgetDecision[], contexts: BudgetCheckContext[], modelId: string): string | undefined {
  const objects = (index: number, model: string) => {
    const actions = decisions[index].alertActions;
    const policy = contexts[index].modelPolicy;
    const restricts = actions.includes('restrict-models') && (policy?.restrictedModels ?? []).includes(model);
    const downgrades =
      model === modelId && (actions.includes('auto-downgrade') || decisions[index].rule === 'hard-limit') && !!policy?.downgrades?.[model];
    return restricts || downgrades;
  };
  let candidate = modelId;
  for (let step = 0; step < 8; step += 1) {
    const objecting = decisions.map((_, index) => index).filter((index) => objects(index, candidate));
    if (!objecting.length) return candidate === modelId ? undefined : candidate;
    const next = [...objecting, ...contexts.keys()]
      .map((index) => contexts[index].modelPolicy?.downgrades?.[candidate])
      .find((model) => model !== undefined && model !== candidate && model !== modelId);
    if (!next) return undefined;
    candidate = next;
  }
  return undefined;
}
