import type { BudgetStatus } from './dto/budget-status.dto';

/**
 * The port through which the tracker's `checkBudgetConstraints` (a seed name of the Usage module)
 * reaches the decision, which lives in the Constraint module above. Usage owns the interface and
 * its types; the Constraint module binds its implementation to the token once.
 */
export const CONSTRAINT_CHECKER = Symbol('CONSTRAINT_CHECKER');

/** The rest of a check-constraints body. */
export interface ConstraintCheckOptions {
  modelId?: string;
  /** Hold the estimate on the budget and its ancestors when the answer is yes. */
  reserve?: boolean;
  reservationTtlSeconds?: number;
}

export interface ConstraintCheckRequest extends ConstraintCheckOptions {
  estimatedCost: number | string;
}

/** The seed's BudgetConstraintCheck, as far as the Usage module speaks of it. */
export interface ConstraintVerdict {
  budgetId: string;
  canProceed: boolean;
  reason?: string;
  requiresApproval: boolean;
  suggestedActions: { type: string; description: string; model?: string }[];
  suggestedModel?: string;
  estimatedCost: number;
  currentAmount: number;
  reservedAmount: number;
  limit: number;
  remaining: number;
  percentUsedAfter: number;
  status: BudgetStatus;
}

export interface ConstraintChecker {
  checkBudget(budgetId: string, request: ConstraintCheckRequest): Promise<ConstraintVerdict>;
}
