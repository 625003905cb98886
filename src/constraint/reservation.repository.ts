import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import type { RequestTraits, Scope } from '../budget/budget.types';

export interface PlacedReservation {
  granted: boolean;
  reservationId: string | null;
  expiresAt: Date | null;
  blockingBudgetId: string | null;
}

export interface ReservationRequest {
  budgetIds: string[];
  scopes: Scope[];
  amount: string;
  currency: string;
  ttlSeconds: number;
  modelId: string | null;
  /** The request's model and tags: a budget whose filter refuses them takes no hold. */
  traits: RequestTraits;
  requestId: string | null;
  createdBy: string;
  at: Date;
}

/** Holds on budgets: placed, released and swept in SQL, each one round trip. */
@Injectable()
export class ReservationRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /** The hard-limit test and the hold, atomically under the cache row locks of every budget involved. */
  async place(request: ReservationRequest): Promise<PlacedReservation> {
    const rows = await this.dataSource.query(
      `SELECT granted, reservation_id AS "reservationId", expires_at AS "expiresAt", blocking_budget_id AS "blockingBudgetId"
       FROM place_reservation($1::uuid[], $2::text[], $3::text[], $4::numeric, $5, $6, $7, $8, $9, $10::timestamptz,
                              $11, $12::text[])`,
      [
        request.budgetIds, request.scopes.map((s) => s.type), request.scopes.map((s) => s.id), request.amount,
        request.currency, request.ttlSeconds, request.modelId, request.requestId, request.createdBy,
        request.at.toISOString(), request.traits.modelId ?? null, request.traits.tags ?? null,
      ],
    );
    return rows[0];
  }

  /** Releases a held reservation; returns its state before (undefined when unknown). */
  async release(reservationId: string): Promise<string | undefined> {
    const rows = await this.dataSource.query(`SELECT close_reservation($1::uuid, 'released') AS previous`, [reservationId]);
    return rows[0]?.previous ?? undefined;
  }

  async expire(at: Date): Promise<number> {
    const rows = await this.dataSource.query(`SELECT expire_reservations($1::timestamptz) AS expired`, [at.toISOString()]);
    return Number(rows[0]?.expired ?? 0);
  }
}
