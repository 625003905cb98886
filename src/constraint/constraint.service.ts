import { Injectable } from '@nestjs/common';
import type { RequestTraits, Scope } from '../budget/budget.types';
import { Clock } from '../common/clock';
import { DomainError, notFound } from '../common/errors/domain-error';
import { Decimal, toMoneyString } from '../common/money';
import { validateInput } from '../common/validation';
import { BudgetStatusService } from '../usage/budget-status.service';
import type { ConstraintChecker } from '../usage/constraint-checker';
import { decideTogether, type BudgetCheckContext, type BudgetDecision, type CombinedDecision } from './constraint-decision';
import { toAlertHistory, toCheckContext, toCheckResponse } from './constraint.mapper';
import { ConstraintRepository, type CheckContextRow } from './constraint.repository';
import { CheckConstraintsDto } from './dto/check-constraints.dto';
import { ReservationService } from './reservation.service';
import type { BudgetConstraintCheckDto } from './dto/constraint-check-response.dto';
import type { AcknowledgeAlertDto, AlertHistoryDto } from './dto/alert-history.dto';

/** What a check is about: one budget (and its ancestors), or the budgets of a request's scopes (and theirs). */
export type CheckTarget = { budgetId: string } | { scopes: Scope[] };

/**
 * The budgets a request takes part in: the named ones (by id or scope) active at the request's
 * instant and all their ancestors, where its usage is recorded and rolls up (SPEC §12.1). A named
 * budget that is not active, or whose filter refuses the request, stays, decided as inactive or
 * filtered to say why it does not constrain; an ancestor reached only through such a budget is
 * left out, as a usage would not reach it.
 */
function takingPart(rows: CheckContextRow[]): CheckContextRow[] {
  const byId = new Map(rows.map((row) => [row.budgetId, row]));
  const kept = new Set(rows.filter((row) => row.isSeed).map((row) => row.budgetId));
  for (const seed of rows.filter((row) => row.isSeed && row.active && row.matches)) {
    let parent = seed.parentId ? byId.get(seed.parentId) : undefined;
    while (parent) {
      kept.add(parent.budgetId);
      parent = parent.parentId ? byId.get(parent.parentId) : undefined;
    }
  }
  return rows.filter((row) => kept.has(row.budgetId));
}

/** The outcome of the decision pipeline: every budget decided on, and their combined verdict. */
export interface Decided {
  contexts: BudgetCheckContext[];
  decisions: BudgetDecision[];
  combined: CombinedDecision;
}

/**
 * Constraint checks (the SPEC §3 ladder over the budgets a request's usage would count toward)
 * and the alert history of a budget. `decide()` is the one pipeline of every check, single-budget
 * and integration alike.
 */
@Injectable()
export class ConstraintService implements ConstraintChecker {
  constructor(
    private readonly constraints: ConstraintRepository,
    private readonly statuses: BudgetStatusService,
    private readonly reservations: ReservationService,
    private readonly clock: Clock,
  ) {}

  /**
   * Reads everything the decision needs in one round trip, applies the ladder to each budget and
   * combines the answers: the request proceeds only if every budget allows it.
   */
  async decide(target: CheckTarget, estimate: Decimal, traits: RequestTraits): Promise<Decided> {
    const byId = 'budgetId' in target;
    const rows = await this.constraints.checkContext(
      byId ? [target.budgetId] : [], byId ? [] : target.scopes, this.clock.now(), traits,
    );
    const contexts = takingPart(rows).map(toCheckContext);
    if (byId && !contexts.some((context) => context.budgetId === target.budgetId)) throw notFound('budget', target.budgetId);
    return { contexts, ...decideTogether(contexts, estimate, traits.modelId ?? undefined) };
  }

  /** `actor` names who placed a hold (reserve: true); the controller checks the role first. */
  async checkBudget(budgetId: string, request: CheckConstraintsDto, actor?: string): Promise<BudgetConstraintCheckDto> {
    const dto = await validateInput(CheckConstraintsDto, request);
    const estimate = new Decimal(toMoneyString(dto.estimatedCost));
    const traits = { modelId: dto.modelId, tags: dto.tags };
    const decided = await this.decide({ budgetId }, estimate, traits);
    const own = decided.decisions.find((decision) => decision.budgetId === budgetId)!;
    const answer = toCheckResponse(own, decided.combined);
    if (!dto.reserve || own.rule === 'inactive' || own.rule === 'filtered') return answer;
    return this.reservations.holdFor(answer, decided, {
      budgetIds: [budgetId],
      amount: estimate.toFixed(),
      currency: own.currency,
      ttlSeconds: dto.reservationTtlSeconds,
      modelId: decided.combined.suggestedModel ?? dto.modelId,
      traits,
      actor,
    });
  }

  async listAlerts(budgetId: string, all: boolean): Promise<AlertHistoryDto[]> {
    const status = await this.statuses.getStatus(budgetId);
    const rows = await this.constraints.listAlerts(budgetId, all ? null : new Date(status.periodStart));
    return rows.map(toAlertHistory);
  }

  async acknowledgeAlert(budgetId: string, historyId: string, actor: string, body: AcknowledgeAlertDto = {}): Promise<AlertHistoryDto> {
    const row = await this.constraints.acknowledgeAlert(budgetId, historyId, actor, body.note ?? null);
    if (!row) {
      throw new DomainError(404, 'ALERT_NOT_FOUND', `Budget ${budgetId} has no triggered alert ${historyId}.`);
    }
    return toAlertHistory(row);
  }
}
