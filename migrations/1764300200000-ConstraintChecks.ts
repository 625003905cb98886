import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The read of a constraint check and the write of an integration usage, each one round trip.
 */
export class ConstraintChecks1764300200000 implements MigrationInterface {
  name = 'ConstraintChecks1764300200000';

  async up(queryRunner: QueryRunner): Promise<void> {
    // Everything a check decides on, for the given budgets, the live budgets of the given scopes,
    // and all their ancestors: settings, the (refreshed if stale) cache row, the alerts triggered
    // in the window. Most specific first (deepest budget first, the order get_budget_statuses
    // locks stale rows in), with what open reservations hold on each. PL/pgSQL rather than SQL so
    // its plan is cached: a non-inlinable SQL function is planned again on every call.
    await queryRunner.query(`
      CREATE FUNCTION budget_check_context(
        p_budget_ids uuid[], p_scope_types text[], p_scope_ids text[], p_at timestamptz DEFAULT now())
      RETURNS TABLE (budget_id uuid, name text, scope_type text, scope_id text, parent_id uuid, is_seed boolean,
                     amount numeric, currency text, warning_threshold numeric, critical_threshold numeric,
                     enforcement text, period_start timestamptz, period_end timestamptz, active boolean,
                     current_amount numeric, reserved_amount numeric, usage_count bigint,
                     updated_at timestamptz, active_alerts jsonb, alert_rules jsonb, model_policy jsonb)
      LANGUAGE plpgsql AS $fn$
      BEGIN
        RETURN QUERY
        WITH RECURSIVE seeds AS (
          SELECT d.id FROM budget_definitions d
          WHERE d.deleted_at IS NULL
            AND (d.id = ANY (p_budget_ids)
                 OR (d.scope_type, d.scope_id::text) IN (SELECT t, i FROM unnest(p_scope_types, p_scope_ids) AS s(t, i)))
        ), up AS (
          SELECT d.id, d.parent_id, 0 AS depth FROM budget_definitions d WHERE d.id IN (SELECT id FROM seeds)
          UNION
          SELECT p.id, p.parent_id, up.depth + 1 FROM budget_definitions p JOIN up ON p.id = up.parent_id
          WHERE p.deleted_at IS NULL AND up.depth < 8
        )
        SELECT s.budget_id, d.name::text, d.scope_type, d.scope_id::text, d.parent_id,
               s.budget_id IN (SELECT id FROM seeds), s.amount, s.currency, s.warning_threshold,
               s.critical_threshold, s.enforcement, s.period_start, s.period_end, s.active, s.current_amount,
               budget_reserved_amount(s.budget_id, p_at), s.usage_count, s.updated_at, s.active_alerts, s.alert_rules, s.model_policy
        FROM get_budget_statuses(ARRAY(SELECT DISTINCT id FROM up), p_at) WITH ORDINALITY AS s
        JOIN budget_definitions d ON d.id = s.budget_id
        ORDER BY s.ordinality;
      END
      $fn$`);

    // One AI request's actual cost, recorded once per budget tree: on the most specific live
    // budget of the request's scopes in each tree (active at occurred_at), rolling up to its
    // ancestors through the usage trigger. Trees are written in the order of their root's id, so
    // concurrent integration writes lock cache rows in one global order and never deadlock.
    // Idempotent on the request id within each tree.
    await queryRunner.query(`
      CREATE FUNCTION record_integration_usage(
        p_scope_types text[], p_scope_ids text[], p_amount numeric, p_currency text, p_source text,
        p_description text, p_model_id text, p_user_id text, p_team_id text, p_project_id text,
        p_request_id text, p_request_hash text, p_metadata jsonb, p_occurred_at timestamptz,
        p_reservation_id uuid)
      RETURNS TABLE (replayed boolean, id uuid, budget_id uuid, amount numeric, currency text, source text,
                     description text, model_id text, user_id text, team_id text, project_id text,
                     request_id text, idempotency_key text, reservation_id uuid, metadata jsonb,
                     occurred_at timestamptz, recorded_at timestamptz, fired_alerts jsonb)
      LANGUAGE plpgsql AS $fn$
      DECLARE
        target record;
        earlier budget_usage_records;
        at_time timestamptz := coalesce(p_occurred_at, now());
      BEGIN
        FOR target IN
          WITH RECURSIVE seeds AS (
            SELECT d.id FROM budget_definitions d
            CROSS JOIN LATERAL budget_period_window(d.start_date, d.end_date, d.period, d.custom_period_days,
                                                    d.recurring, d.timezone, at_time) w
            WHERE d.deleted_at IS NULL AND w.active
              AND (d.scope_type, d.scope_id::text) IN (SELECT t, i FROM unnest(p_scope_types, p_scope_ids) AS s(t, i))
          ), chain AS (
            SELECT s.id AS seed, s.id, d.parent_id, 0 AS depth
            FROM seeds s JOIN budget_definitions d ON d.id = s.id
            UNION ALL
            SELECT c.seed, p.id, p.parent_id, c.depth + 1
            FROM chain c JOIN budget_definitions p ON p.id = c.parent_id
            WHERE c.depth < 8
          ), placed AS (
            SELECT c.seed, max(c.depth) AS depth, (array_agg(c.id ORDER BY c.depth DESC))[1] AS root
            FROM chain c GROUP BY c.seed
          )
          SELECT DISTINCT ON (placed.root) placed.seed, placed.root
          FROM placed ORDER BY placed.root, placed.depth DESC, placed.seed
        LOOP
          -- A retry must replay even if the tree changed since (the budget that took the record was
          -- deleted, or a more specific one was created): look for the request in the whole tree.
          SELECT u.* INTO earlier FROM budget_usage_records u
          WHERE u.idempotency_key = p_request_id
            AND u.budget_id IN (
              WITH RECURSIVE tree AS (
                SELECT target.root AS id
                UNION ALL
                SELECT c.id FROM budget_definitions c JOIN tree t ON c.parent_id = t.id)
              SELECT tree.id FROM tree)
          LIMIT 1;
          IF earlier.id IS NULL THEN
            RETURN QUERY SELECT * FROM record_usage(
              target.seed, p_amount, p_currency, p_source, p_description, p_model_id, p_user_id, p_team_id,
              p_project_id, p_request_id, p_request_id, p_request_hash, p_metadata, at_time, p_reservation_id);
          ELSIF earlier.request_hash IS DISTINCT FROM p_request_hash THEN
            RAISE EXCEPTION USING ERRCODE = 'RB409', MESSAGE = 'IDEMPOTENCY_KEY_REUSED',
              DETAIL = format('The request id "%s" was already recorded for a different request.', p_request_id);
          ELSE
            RETURN QUERY SELECT true, earlier.id, earlier.budget_id, earlier.amount, earlier.currency::text,
              earlier.source::text, earlier.description::text, earlier.model_id::text, earlier.user_id::text,
              earlier.team_id::text, earlier.project_id::text, earlier.request_id::text,
              earlier.idempotency_key::text, earlier.reservation_id, earlier.metadata, earlier.occurred_at,
              earlier.recorded_at, '[]'::jsonb;
          END IF;
        END LOOP;
      END
      $fn$`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `DROP FUNCTION record_integration_usage(text[], text[], numeric, text, text, text, text, text, text, text, text, text, jsonb, timestamptz, uuid)`,
    );
    await queryRunner.query(`DROP FUNCTION budget_check_context(uuid[], text[], text[], timestamptz)`);
  }
}
