import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Placing and expiring holds. The hard-limit test and the hold are one statement under the cache
 * row locks of every budget involved, so concurrent reservers (on any number of service
 * instances) serialise per budget and committed + held never passes a hard limit.
 */
export class PlaceReservation1764300400000 implements MigrationInterface {
  name = 'PlaceReservation1764300400000';

  async up(queryRunner: QueryRunner): Promise<void> {
    // The budgets named (by id or scope, live) and all their ancestors; their cache rows are locked
    // in the global order every multi-tree writer uses (tree root, deepest first, id), then each
    // active hard budget must fit current + held + amount within its limit. All or none: either
    // every budget gets a hold, or none and the first budget without room is named (deepest
    // first within a tree).
    await queryRunner.query(`
      CREATE FUNCTION place_reservation(
        p_budget_ids uuid[], p_scope_types text[], p_scope_ids text[], p_amount numeric, p_currency text,
        p_ttl_seconds integer, p_model_id text, p_request_id text, p_created_by text, p_at timestamptz DEFAULT now())
      RETURNS TABLE (granted boolean, reservation_id uuid, expires_at timestamptz, blocking_budget_id uuid)
      LANGUAGE plpgsql AS $fn$
      DECLARE
        members  uuid[];
        member   record;
        w        record;
        c        budget_status_cache;
        held     numeric;
        new_id   uuid;
        expiry   timestamptz := p_at + make_interval(secs => p_ttl_seconds);
      BEGIN
        SELECT array_agg(x.id ORDER BY x.root, x.depth DESC, x.id) INTO members
        FROM (SELECT DISTINCT a.id, a.root, a.depth
              FROM budget_ancestry(budget_seeds(p_budget_ids, p_scope_types, p_scope_ids)) a) x;
        IF members IS NULL THEN
          RETURN QUERY SELECT true, NULL::uuid, NULL::timestamptz, NULL::uuid;
          RETURN;
        END IF;

        PERFORM 1 FROM budget_status_cache s JOIN unnest(members) WITH ORDINALITY m (id, ord) ON s.budget_id = m.id
        ORDER BY m.ord FOR UPDATE OF s;

        -- With every row locked, each statement below sees all committed usage and holds.
        FOR member IN
          SELECT d.id, d.amount, d.currency, d.enforcement, d.start_date, d.end_date, d.period, d.custom_period_days,
                 d.recurring, d.timezone, m.ord
          FROM unnest(members) WITH ORDINALITY m (id, ord) JOIN budget_definitions d ON d.id = m.id
          ORDER BY m.ord
        LOOP
          IF member.currency::text <> p_currency THEN
            RAISE EXCEPTION USING ERRCODE = 'RB422', MESSAGE = 'CURRENCY_MISMATCH',
              DETAIL = format('Budget %s counts in %s; the reservation is in %s.', member.id, member.currency, p_currency);
          END IF;
          w := budget_period_window(member.start_date, member.end_date, member.period, member.custom_period_days,
                                    member.recurring, member.timezone, p_at);
          CONTINUE WHEN NOT w.active OR member.enforcement <> 'hard';
          SELECT * INTO c FROM budget_status_cache s WHERE s.budget_id = member.id;
          IF c.period_start IS DISTINCT FROM w.period_start OR c.period_end IS DISTINCT FROM w.period_end THEN
            c := refresh_budget_status_cache(member.id, p_at);
          END IF;
          held := budget_reserved_amount(member.id, p_at);
          IF c.current_amount + held + p_amount > member.amount THEN
            RETURN QUERY SELECT false, NULL::uuid, NULL::timestamptz, member.id;
            RETURN;
          END IF;
        END LOOP;

        INSERT INTO budget_reservations (amount, currency, model_id, request_id, created_by, expires_at)
        VALUES (p_amount, p_currency, p_model_id, p_request_id, p_created_by, expiry)
        RETURNING id INTO new_id;
        INSERT INTO budget_reservation_holds (reservation_id, budget_id, amount, expires_at)
        SELECT new_id, m.id, p_amount, expiry FROM unnest(members) m (id);
        RETURN QUERY SELECT true, new_id, expiry, NULL::uuid;
      END
      $fn$`);

    // The sweep: holds past their expiry stop counting by themselves (budget_reserved_amount
    // filters them); this marks them expired, drops their rows, and forgets closed reservations
    // after a day so the tables stay small.
    await queryRunner.query(`
      CREATE FUNCTION expire_reservations(p_at timestamptz DEFAULT now())
      RETURNS integer LANGUAGE plpgsql AS $fn$
      DECLARE
        expired integer;
      BEGIN
        WITH gone AS (
          UPDATE budget_reservations SET state = 'expired', closed_at = p_at
          WHERE state = 'held' AND expires_at <= p_at
          RETURNING id)
        SELECT count(*) INTO expired FROM gone;
        DELETE FROM budget_reservation_holds WHERE expires_at <= p_at;
        DELETE FROM budget_reservations WHERE state <> 'held' AND closed_at < p_at - interval '1 day';
        RETURN expired;
      END
      $fn$`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP FUNCTION expire_reservations(timestamptz)`);
    await queryRunner.query(
      `DROP FUNCTION place_reservation(uuid[], text[], text[], numeric, text, integer, text, text, text, timestamptz)`,
    );
  }
}
