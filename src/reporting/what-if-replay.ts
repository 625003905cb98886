import type { AlertAction, AlertType, BudgetAlertConfig, ModelPolicy, ScopeType } from '../budget/budget.types';
import { Decimal, toMoneyNumber } from '../common/money';
import { decideBudget, type BudgetCheckContext, type BudgetDecision } from '../constraint/constraint-decision';

/**
 * The what-if replay (SPEC §15): the recorded usage of one window, in time order, put through the
 * live check's own decision ladder (`decideBudget`, not a copy) against proposed settings. Each
 * usage is a check of its recorded amount and model with the running total so far:
 * - refused (block-all, restrict-models, the hard limit) → counted as blocked, not added;
 * - sent for approval (require-approval) → counted as such, not added (it would wait);
 * - downgraded (auto-downgrade) → counted, and its recorded amount added;
 * - otherwise added.
 * An alert would fire at the first usage after which its threshold is reached (actual: the
 * percent of the limit; forecast: the status's projected total at that instant), once per window.
 */

export interface ProposedSettings {
  limit: string;
  enforcement: 'hard' | 'soft';
  alerts: BudgetAlertConfig[];
  modelPolicy: ModelPolicy | null;
}

/** The parts of the budget the ladder names in its answers. */
export interface ReplayBudget {
  budgetId: string;
  name: string;
  scopeType: ScopeType;
  scopeId: string;
  parentId: string | null;
  currency: string;
  warningThreshold: string | number;
  criticalThreshold: string | number;
}

export interface ReplayedUsage {
  amount: string;
  modelId: string | null;
  occurredAt: Date;
}

export interface AlertThatWouldFire {
  alertId: string;
  threshold: number;
  type: AlertType;
  actions: AlertAction[];
  /** The occurredAt of the usage after which it fires. */
  firedAt: Date;
  /** Percent of the limit spent then (2 decimals). */
  percentUsed: number;
}

export interface WhatIfWindowResult {
  periodStart: Date;
  periodEnd: Date;
  /** Usage records replayed. */
  usageCount: number;
  /** What was really spent (every record). */
  recordedSpent: Decimal;
  /** What would have been spent under the proposed settings. */
  spent: Decimal;
  wouldBlockCount: number;
  wouldBlockAmount: Decimal;
  firstBlockAt: Date | null;
  wouldDowngradeCount: number;
  wouldRequireApprovalCount: number;
  alertsThatWouldFire: AlertThatWouldFire[];
}

const HOUR_MS = 3_600_000;

export class WindowReplay {
  private readonly limit: Decimal;
  private spent = new Decimal(0);
  private recordedSpent = new Decimal(0);
  private usageCount = 0;
  private blocked = { count: 0, amount: new Decimal(0), first: null as Date | null };
  private downgrades = 0;
  private approvals = 0;
  private readonly fired: AlertThatWouldFire[] = [];
  private readonly pending: BudgetAlertConfig[];

  constructor(
    private readonly budget: ReplayBudget,
    private readonly settings: ProposedSettings,
    readonly periodStart: Date,
    readonly periodEnd: Date,
  ) {
    this.limit = new Decimal(settings.limit);
    this.pending = [...settings.alerts];
  }

  /** Replays one usage (in time order); answers the ladder's decision for it. */
  add(usage: ReplayedUsage): BudgetDecision {
    const amount = new Decimal(usage.amount);
    this.usageCount += 1;
    this.recordedSpent = this.recordedSpent.add(amount);
    const decision = decideBudget(this.context(), amount, usage.modelId ?? undefined);
    if (decision.requiresApproval) {
      this.approvals += 1;
    } else if (!decision.canProceed) {
      this.blocked.count += 1;
      this.blocked.amount = this.blocked.amount.add(amount);
      this.blocked.first ??= usage.occurredAt;
    } else {
      if (decision.rule === 'auto-downgrade') this.downgrades += 1;
      this.spent = this.spent.add(amount);
      this.fireAlerts(usage.occurredAt);
    }
    return decision;
  }

  result(): WhatIfWindowResult {
    return {
      periodStart: this.periodStart,
      periodEnd: this.periodEnd,
      usageCount: this.usageCount,
      recordedSpent: this.recordedSpent,
      spent: this.spent,
      wouldBlockCount: this.blocked.count,
      wouldBlockAmount: this.blocked.amount,
      firstBlockAt: this.blocked.first,
      wouldDowngradeCount: this.downgrades,
      wouldRequireApprovalCount: this.approvals,
      alertsThatWouldFire: this.fired,
    };
  }

  private context(): BudgetCheckContext {
    return {
      ...this.budget,
      limit: this.settings.limit,
      enforcement: this.settings.enforcement,
      alerts: this.settings.alerts,
      modelPolicy: this.settings.modelPolicy,
      periodStart: this.periodStart,
      periodEnd: this.periodEnd,
      // Every recorded usage lies in its window, where the budget was active.
      active: true,
      currentAmount: this.spent.toFixed(),
      // Holds are not recorded in the ledger: a replay has none.
      reservedAmount: '0',
    };
  }

  /** The alerts reached by the running total at `at`, each once (forecast alerts on the status's projection). */
  private fireAlerts(at: Date): void {
    const percent = this.spent.div(this.limit).mul(100);
    // current + current / elapsed × remaining (elapsed at least an hour), multiplied before dividing.
    const elapsedMs = Math.max(at.getTime() - this.periodStart.getTime(), HOUR_MS);
    const remainingMs = Math.max(this.periodEnd.getTime() - at.getTime(), 0);
    const projectedPercent = this.spent.add(this.spent.mul(remainingMs).div(elapsedMs)).div(this.limit).mul(100);
    for (let index = this.pending.length - 1; index >= 0; index -= 1) {
      const alert = this.pending[index];
      if ((alert.type === 'forecast' ? projectedPercent : percent).lt(alert.threshold)) continue;
      this.pending.splice(index, 1);
      this.fired.push({
        alertId: alert.id,
        threshold: alert.threshold,
        type: alert.type,
        actions: alert.actions,
        firedAt: at,
        percentUsed: toMoneyNumber(percent.toDecimalPlaces(2)),
      });
    }
    this.fired.sort((a, b) => a.firedAt.getTime() - b.firedAt.getTime() || a.threshold - b.threshold);
  }
}
