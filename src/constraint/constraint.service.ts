import { Injectable } from '@nestjs/common';
import type { RequestTraits } from '../budget/budget.types';
import { Clock } from '../common/clock';
import { DomainError, notFound, validationFailed } from '../common/errors/domain-error';
import { Decimal, toMoneyNumber, toMoneyString } from '../common/money';
import { validateInput } from '../common/validation';
import { PriceCatalogService } from '../pricing/price-catalog.service';
import { BudgetStatusService } from '../usage/budget-status.service';
import type { ConstraintChecker } from '../usage/constraint-checker';
import { decideTogether, type BudgetCheckContext, type BudgetDecision, type CombinedDecision } from './constraint-decision';
import { CheckContextGroups } from './check-context-groups';
import { toAlertHistory, toCheckContext, toCheckResponse } from './constraint.mapper';
import { ConstraintRepository, type CheckContextRow, type CheckTarget, type EstimatedTokens } from './constraint.repository';
import { CheckConstraintsDto } from './dto/check-constraints.dto';
import { ReservationService } from './reservation.service';
import type { BudgetConstraintCheckDto } from './dto/constraint-check-response.dto';
import type { AcknowledgeAlertDto, AlertHistoryDto } from './dto/alert-history.dto';


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

/** What a check estimates: a cost, or tokens of its model priced from the catalog (SPEC §14). */
export type CheckEstimate = { cost: Decimal } | { tokens: EstimatedTokens };

/** The estimate of a check body: estimatedCost, else its estimated tokens (which need modelId). */
export function estimateOf(dto: CheckConstraintsDto): CheckEstimate {
  if (dto.estimatedCost !== undefined) return { cost: new Decimal(toMoneyString(dto.estimatedCost)) };
  const problems = [];
  if (dto.estimatedInputTokens === undefined && dto.estimatedOutputTokens === undefined) {
    problems.push({ field: 'estimatedCost', message: 'estimatedCost is required unless the check carries modelId, estimatedInputTokens and estimatedOutputTokens' });
  } else {
    if (dto.estimatedInputTokens === undefined) problems.push({ field: 'estimatedInputTokens', message: 'estimatedInputTokens is required with estimatedOutputTokens' });
    if (dto.estimatedOutputTokens === undefined) problems.push({ field: 'estimatedOutputTokens', message: 'estimatedOutputTokens is required with estimatedInputTokens' });
    if (dto.modelId === undefined) problems.push({ field: 'modelId', message: 'modelId is required to price estimated tokens' });
  }
  if (problems.length) throw validationFailed(problems);
  return { tokens: { provider: dto.provider, inputTokens: dto.estimatedInputTokens!, outputTokens: dto.estimatedOutputTokens! } };
}

/** The outcome of the decision pipeline: every budget decided on, and their combined verdict. */
export interface Decided {
  contexts: BudgetCheckContext[];
  decisions: BudgetDecision[];
  combined: CombinedDecision;
  /** The estimate the budgets were decided with (the tokens' cost, for a token estimate). */
  estimate: Decimal;
  /**
   * With a token estimate and a suggested model: the same tokens priced for that model from the
   * catalog now, null when it has no price for it (absent for a cost estimate).
   */
  suggestedModelEstimatedCost?: number | null;
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
    private readonly contexts: CheckContextGroups,
    private readonly statuses: BudgetStatusService,
    private readonly reservations: ReservationService,
    private readonly pricing: PriceCatalogService,
    private readonly clock: Clock,
  ) {}

  /**
   * Reads everything the decision needs in one round trip, applies the ladder to each budget and
   * combines the answers: the request proceeds only if every budget allows it.
   */
  async decide(target: CheckTarget, estimate: CheckEstimate, traits: RequestTraits): Promise<Decided> {
    const at = this.clock.now();
    const { rows, cost } =
      'cost' in estimate
        ? { rows: await this.contexts.checkContext(target, at, traits), cost: estimate.cost }
        : await this.pricedContext(target, at, { ...traits, modelId: traits.modelId! }, estimate.tokens);
    const contexts = takingPart(rows).map(toCheckContext);
    if ('budgetId' in target && !contexts.some((context) => context.budgetId === target.budgetId)) throw notFound('budget', target.budgetId);
    const decided = { contexts, estimate: cost, ...decideTogether(contexts, cost, traits.modelId ?? undefined) };
    if (!('tokens' in estimate) || !decided.combined.suggestedModel) return decided;
    return { ...decided, suggestedModelEstimatedCost: await this.costOnModel(decided.combined.suggestedModel, estimate.tokens, at) };
  }

  /**
   * The check's context and the price of its estimated tokens, in one round trip: the price this
   * instance read for the model in the last few seconds (PriceCatalogService.cachedCheckCost, or
   * the one another check is reading now, once it has), or else the catalog's, read in the
   * context's own statement and kept for the next checks.
   */
  private async pricedContext(
    target: CheckTarget,
    at: Date,
    traits: RequestTraits & { modelId: string },
    tokens: EstimatedTokens,
  ): Promise<{ rows: CheckContextRow[]; cost: Decimal }> {
    const request = { provider: tokens.provider, modelId: traits.modelId, at };
    const priced = { ...request, inputTokens: tokens.inputTokens, outputTokens: tokens.outputTokens };
    const cached = this.pricing.cachedCheckCost(priced) ?? (await this.pricing.checkCostAfterRead(priced));
    if (cached) return { rows: await this.contexts.checkContext(target, at, traits), cost: new Decimal(cached.amount) };
    const done = this.pricing.beginCheckPriceRead(request);
    try {
      const hints = await this.pricing.lookupHints(traits.modelId, tokens.provider);
      const { rows, choice } = await this.constraints.pricedCheckContext(target, at, traits, tokens, hints);
      const accepted = this.pricing.acceptChoice(choice, request);
      this.pricing.rememberCheckPrice(request, choice);
      return { rows, cost: new Decimal(accepted.amount) };
    } finally {
      done();
    }
  }

  /**
   * The estimated tokens priced for a suggested model, at the request's provider (or, without one,
   * the provider SPEC §14 resolves for the model); null when the catalog cannot price it.
   */
  private async costOnModel(modelId: string, tokens: EstimatedTokens, at: Date): Promise<number | null> {
    try {
      const { amount } = await this.pricing.costOf({ ...tokens, modelId, at });
      return toMoneyNumber(amount);
    } catch (error) {
      if (error instanceof DomainError && error.status === 422) return null;
      throw error;
    }
  }

  /** `actor` names who placed a hold (reserve: true); the controller checks the role first. */
  async checkBudget(budgetId: string, request: CheckConstraintsDto, actor?: string): Promise<BudgetConstraintCheckDto> {
    const dto = await validateInput(CheckConstraintsDto, request);
    const traits = { modelId: dto.modelId, tags: dto.tags };
    const decided = await this.decide({ budgetId }, estimateOf(dto), traits);
    const own = decided.decisions.find((decision) => decision.budgetId === budgetId)!;
    const answer = toCheckResponse(own, decided);
    if (!dto.reserve || own.rule === 'inactive' || own.rule === 'filtered') return answer;
    return this.reservations.holdFor(answer, decided, {
      budgetIds: [budgetId],
      amount: decided.estimate.toFixed(),
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
