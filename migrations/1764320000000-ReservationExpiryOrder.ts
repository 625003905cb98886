import { MigrationInterface, QueryRunner } from 'typeorm';
import { editedFrozenDefinition, frozenDefinition } from '../src/database/frozen-definition';
import { PlaceReservation1764300400000 } from './1764300400000-PlaceReservation';

/**
 * `expire_reservations` takes the expired reservations it marks in id order. A group commit settles
 * its writes' reservations in id order (record_usage_group, record_integration_usage_group); the
 * sweep's UPDATE took them in the table's physical order, so a group settling A then B and a sweep
 * that had taken B first waited for each other until PostgreSQL broke the deadlock
 * (deadlock_timeout, while the group held its tree's cache rows). A reservation settled meanwhile
 * is skipped, as before: its row is checked again once its lock is granted.
 * Spec: test/reservation-expiry-order.spec.ts.
 */
export class ReservationExpiryOrder1764320000000 implements MigrationInterface {
  name = 'ReservationExpiryOrder1764320000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(await editedFrozenDefinition(new PlaceReservation1764300400000(), 'expire_reservations', [IN_ID_ORDER]));
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(await frozenDefinition(new PlaceReservation1764300400000(), 'expire_reservations'));
  }
}

const IN_ID_ORDER = {
  what: 'expired reservations locked in id order before they are marked',
  from: `        WITH gone AS (
          UPDATE budget_reservations SET state = 'expired', closed_at = p_at
          WHERE state = 'held' AND expires_at <= p_at
          RETURNING id)`,
  to: `        WITH doomed AS (
          SELECT r.id FROM budget_reservations r
          WHERE r.state = 'held' AND r.expires_at <= p_at
          ORDER BY r.id
          FOR UPDATE
        ), gone AS (
          UPDATE budget_reservations r SET state = 'expired', closed_at = p_at
          FROM doomed WHERE r.id = doomed.id
          RETURNING r.id)`,
};
