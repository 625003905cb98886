import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Reservations (holds): an estimate held on a budget and every ancestor between a check and the
 * usage that settles it. A reservation has one hold row per budget it holds, so "how much is held
 * on this budget" is one index range: the open holds whose expiry is later than now. An expired
 * hold stops counting at once (by that filter), before any sweep removes it.
 */
export class Reservations1764300050000 implements MigrationInterface {
  name = 'Reservations1764300050000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE budget_reservations (
        id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        amount      numeric(24, 10) NOT NULL CHECK (amount >= 0 AND amount <= 10000000000000),
        currency    char(3) NOT NULL,
        model_id    varchar(200),
        request_id  varchar(200),
        state       text NOT NULL DEFAULT 'held' CHECK (state IN ('held', 'settled', 'released', 'expired')),
        created_by  varchar(200),
        created_at  timestamptz NOT NULL DEFAULT now(),
        expires_at  timestamptz NOT NULL,
        closed_at   timestamptz,
        CONSTRAINT budget_reservations_closed_iff_not_held CHECK ((state = 'held') = (closed_at IS NULL))
      )`);
    await queryRunner.query(
      `CREATE INDEX budget_reservations_open_idx ON budget_reservations (expires_at) WHERE state = 'held'`,
    );
    await queryRunner.query(
      `CREATE INDEX budget_reservations_closed_idx ON budget_reservations (closed_at) WHERE state <> 'held'`,
    );
    await queryRunner.query(`
      CREATE TABLE budget_reservation_holds (
        reservation_id uuid NOT NULL REFERENCES budget_reservations (id) ON DELETE CASCADE,
        budget_id      uuid NOT NULL REFERENCES budget_definitions (id),
        amount         numeric(24, 10) NOT NULL,
        expires_at     timestamptz NOT NULL,
        PRIMARY KEY (reservation_id, budget_id)
      )`);
    await queryRunner.query(
      `CREATE INDEX budget_reservation_holds_budget_idx ON budget_reservation_holds (budget_id, expires_at) INCLUDE (amount)`,
    );
    // What is held on a budget at an instant: open holds not yet expired. PL/pgSQL so that its
    // plan is cached across calls (it runs in every check and status read).
    await queryRunner.query(`
      CREATE FUNCTION budget_reserved_amount(p_budget_id uuid, p_at timestamptz DEFAULT now())
      RETURNS numeric LANGUAGE plpgsql STABLE AS $fn$
      BEGIN
        RETURN (SELECT coalesce(sum(h.amount), 0) FROM budget_reservation_holds h
                WHERE h.budget_id = p_budget_id AND h.expires_at > p_at);
      END
      $fn$`);
    // Closes a held reservation (settled, released or expired) and drops its holds. Returns the
    // state it was in; a hold past its expiry is 'expired' whether or not the sweep has run, so
    // releasing it answers the same before and after the sweep.
    await queryRunner.query(`
      CREATE FUNCTION close_reservation(p_reservation_id uuid, p_state text)
      RETURNS text LANGUAGE plpgsql AS $fn$
      DECLARE
        previous text;
        expiry   timestamptz;
      BEGIN
        SELECT r.state, r.expires_at INTO previous, expiry
        FROM budget_reservations r WHERE r.id = p_reservation_id FOR UPDATE;
        IF previous = 'held' THEN
          IF expiry <= now() AND p_state = 'released' THEN
            previous := 'expired';
            p_state := 'expired';
          END IF;
          UPDATE budget_reservations SET state = p_state, closed_at = now() WHERE id = p_reservation_id;
          DELETE FROM budget_reservation_holds WHERE reservation_id = p_reservation_id;
        END IF;
        RETURN previous;
      END
      $fn$`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP FUNCTION close_reservation(uuid, text)`);
    await queryRunner.query(`DROP FUNCTION budget_reserved_amount(uuid, timestamptz)`);
    await queryRunner.query(`DROP TABLE budget_reservation_holds`);
    await queryRunner.query(`DROP TABLE budget_reservations`);
  }
}
