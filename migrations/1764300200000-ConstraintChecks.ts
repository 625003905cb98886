import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The read of a constraint check and the write of an integration usage, each one round trip.
 */
export class ConstraintChecks1764300200000 implements MigrationInterface {
  name = 'ConstraintChecks1764300200000';

  async up(queryRunner: QueryRunner): Promise<void> {
    // The live budgets named by id or by scope: two index lookups (by primary key, by scope).
    await queryRunner.query(`
      CREATE FUNCTION budget_seeds(p_budget_ids uuid[], p_scope_types text[], p_scope_ids text[])
      RETURNS uuid[] LANGUAGE plpgsql STABLE AS $fn$
      BEGIN
        RETURN ARRAY(
          SELECT d.id FROM budget_definitions d WHERE d.id = ANY (p_budget_ids) AND d.deleted_at IS NULL
          UNION
          SELECT d.id FROM unnest(p_scope_types, p_scope_ids) AS s (t, i)
          JOIN budget_definitions d ON d.scope_type = s.t AND d.scope_id = s.i AND d.deleted_at IS NULL);
      END
      $fn$`);

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
      DECLARE
        seeds uuid[];
      BEGIN
        seeds := budget_seeds(p_budget_ids, p_scope_types, p_scope_ids);
        RETURN QUERY
        SELECT s.budget_id, d.name::text, d.scope_type, d.scope_id::text, d.parent_id,
               s.budget_id = ANY (seeds), s.amount, s.currency, s.warning_threshold,
               s.critical_threshold, s.enforcement, s.period_start, s.period_end, s.active, s.current_amount,
               budget_reserved_amount(s.budget_id, p_at), s.usage_count, s.updated_at, s.active_alerts, s.alert_rules,
               s.model_policy
        FROM get_budget_statuses(ARRAY(SELECT DISTINCT a.id FROM budget_ancestry(seeds) a), p_at) WITH ORDINALITY AS s
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
        seeds uuid[];
        earlier budget_usage_records;
        at_time timestamptz := coalesce(p_occurred_at, now());
      BEGIN
        -- The live scope budgets active at occurred_at; in each tree the deepest of them.
        seeds := ARRAY(
          SELECT d.id FROM budget_definitions d
          CROSS JOIN LATERAL budget_period_window(d.start_date, d.end_date, d.period, d.custom_period_days,
                                                  d.recurring, d.timezone, at_time) w
          WHERE d.id = ANY (budget_seeds('{}', p_scope_types, p_scope_ids)) AND w.active);
        FOR target IN
          SELECT DISTINCT ON (a.root) a.id AS seed, a.root
          FROM budget_ancestry(seeds) a WHERE a.id = ANY (seeds)
          ORDER BY a.root, a.depth DESC, a.id
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
    await queryRunner.query(`DROP FUNCTION budget_seeds(uuid[], text[], text[])`);
  }
}
