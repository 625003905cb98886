import { Injectable, Logger } from '@nestjs/common';
import { Interval } from '@nestjs/schedule';
import { Clock } from '../common/clock';
import { DomainError } from '../common/errors/domain-error';
import type { RequestTraits, Scope } from '../budget/budget.types';
import type { BudgetDecision, CombinedDecision, DecisionRule } from './constraint-decision';
import { ReservationRepository } from './reservation.repository';

export const DEFAULT_RESERVATION_TTL_SECONDS = 300;
const SWEEP_INTERVAL_MS = 60_000;

export interface HoldRequest {
  budgetIds?: string[];
  scopes?: Scope[];
  amount: string;
  currency: string;
  ttlSeconds?: number;
  modelId?: string;
  /** The model and tags the check decided on: the hold goes on the budgets that match them. */
  traits?: RequestTraits;
  actor?: string;
}

export interface HoldOutcome {
  reservationId?: string;
  reservationExpiresAt?: string;
  /** Set when a concurrent request took the room between the decision and the hold. */
  blockingBudgetId?: string;
}

/**
 * Holds (SPEC §3 "Reservations"): placed atomically after a "yes", settled by the usage that
 * carries the id, released explicitly, or expired by their TTL (a sweep tidies them up).
 */
@Injectable()
export class ReservationService {
  private readonly logger = new Logger(ReservationService.name);

  constructor(
    private readonly reservations: ReservationRepository,
    private readonly clock: Clock,
  ) {}

  async hold(request: HoldRequest): Promise<HoldOutcome> {
    const placed = await this.reservations.place({
      budgetIds: request.budgetIds ?? [],
      scopes: request.scopes ?? [],
      amount: request.amount,
      currency: request.currency,
      ttlSeconds: request.ttlSeconds ?? DEFAULT_RESERVATION_TTL_SECONDS,
      modelId: request.modelId ?? null,
      traits: request.traits ?? {},
      requestId: null,
      createdBy: request.actor ?? 'anonymous',
      at: this.clock.now(),
    });
    if (!placed.granted) return { blockingBudgetId: placed.blockingBudgetId ?? undefined };
    return placed.reservationId
      ? { reservationId: placed.reservationId, reservationExpiresAt: placed.expiresAt!.toISOString() }
      : {};
  }

  /** Adds the hold to a "yes" (or turns it into a "no" when concurrent holds took the room). */
  async holdFor<T extends { canProceed: boolean; reason?: string; blockedBy?: unknown; rule: DecisionRule }>(
    answer: T,
    { combined, decisions }: { combined: CombinedDecision; decisions: BudgetDecision[] },
    request: HoldRequest,
  ): Promise<T & HoldOutcome> {
    if (!combined.canProceed) return answer;
    const outcome = await this.hold(request);
    if (!outcome.blockingBudgetId) return { ...answer, ...outcome };
    const blocking = decisions.find((decision) => decision.budgetId === outcome.blockingBudgetId);
    const name = blocking?.budgetName ?? outcome.blockingBudgetId;
    return {
      ...answer,
      canProceed: false,
      rule: 'hard-limit',
      reason:
        `Budget "${name}" has no room left for this request: concurrent requests committed or hold the rest of its ` +
        `limit since this check read it. Retry shortly, or wait until ${blocking?.resetsAt ?? 'the window resets'}.`,
      blockedBy: { budgetId: outcome.blockingBudgetId, name, remaining: 0, resetsAt: blocking?.resetsAt ?? '' },
    };
  }

  async release(reservationId: string): Promise<void> {
    const previous = await this.reservations.release(reservationId);
    if (previous === undefined) {
      throw new DomainError(404, 'RESERVATION_NOT_FOUND', `No reservation with id ${reservationId} exists.`);
    }
    if (previous !== 'held') {
      throw new DomainError(409, 'RESERVATION_CLOSED', `Reservation ${reservationId} is already ${previous}.`);
    }
  }

  /** Expired holds never count; this marks them and keeps the tables small. */
  @Interval(SWEEP_INTERVAL_MS)
  async sweep(): Promise<number> {
    try {
      const expired = await this.reservations.expire(this.clock.now());
      if (expired) this.logger.log(`Expired ${expired} reservation(s)`);
      return expired;
    } catch (error) {
      this.logger.warn(`Reservation sweep failed: ${(error as Error).message}`);
      return 0;
    }
  }
}
