import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `budget_check_context_of_scopes`: what CheckContextOfBudget did for a check of one budget id, for
 * a check by scopes (`POST /integration/check-constraints`, `GET /integration/summary`, issue 17):
 * exactly budget_check_context's rows for those scopes and no ids, read by one inlined statement
 * while every cache row of the chains is fresh, from budget_check_context otherwise.
 *
 * The statement walks up from each budget of the scopes (live, accepted by its filter, as
 * budget_seeds finds them) as budget_ancestry does, places each member by its root and depth, and
 * orders them as get_budget_statuses does (root, deepest first, id). With no ids named, no budget
 * is refused (that needs an id), so every member matches. The freshness test and the fresh row's
 * answer are budget_status_read's, as in CheckContextOfBudget; test/check-context.spec.ts holds the
 * function to budget_check_context's rows, fresh and stale, over several trees.
 */
export class CheckContextOfScopes1764316000000 implements MigrationInterface {
  name = 'CheckContextOfScopes1764316000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE FUNCTION budget_check_context_of_scopes(p_scope_types text[], p_scope_ids text[], p_at timestamptz,
                                                     p_model_id text, p_tags text[], p_apply_filters boolean DEFAULT true)
      RETURNS TABLE (budget_id uuid, name text, scope_type text, scope_id text, parent_id uuid, is_seed boolean,
                     matches boolean, amount numeric, currency text, warning_threshold numeric,
                     critical_threshold numeric, enforcement text, period_start timestamptz, period_end timestamptz,
                     active boolean, current_amount numeric, reserved_amount numeric, usage_count bigint,
                     updated_at timestamptz, active_alerts jsonb, alert_rules jsonb, model_policy jsonb)
      LANGUAGE sql STABLE AS $fn$
      WITH RECURSIVE walk AS (
        -- The budgets of the scopes, live and accepted by their filters (budget_seeds), then up each
        -- one's chain as far as budget_ancestry goes (8 hops).
        SELECT d.id AS start, 0 AS hop, d.id, d.parent_id, d.deleted_at
        FROM (SELECT DISTINCT s.t, s.i FROM unnest(p_scope_types, p_scope_ids) AS s (t, i)) s
        JOIN budget_definitions d ON d.scope_type = s.t AND d.scope_id = s.i AND d.deleted_at IS NULL
        WHERE d.filter IS NULL OR NOT p_apply_filters OR budget_filter_accepts(d.filter, p_model_id, p_tags)
        UNION ALL
        SELECT walk.start, walk.hop + 1, d.id, d.parent_id, d.deleted_at
        FROM walk JOIN budget_definitions d ON d.id = walk.parent_id
        WHERE walk.hop < 8
      ), placed AS (
        -- Each member's root (the top of its walk) and depth under it, as budget_ancestry gives them.
        SELECT w.id, w.deleted_at, w.hop = 0 AS seed,
               first_value(w.id) OVER (PARTITION BY w.start ORDER BY w.hop DESC) AS root,
               max(w.hop) OVER (PARTITION BY w.start) - w.hop AS depth
        FROM walk w
      ), members AS MATERIALIZED (
        SELECT p.id, min(p.root::text)::uuid AS root, min(p.depth) AS depth, bool_or(p.seed) AS is_seed,
               c.budget_id, c.period_start, c.period_end, c.current_amount, c.usage_count, c.updated_at,
               c.budget_id IS NOT NULL AND p_at >= c.period_start AND p_at < c.period_end
                 AND c.updated_at >= p_at - interval '5 minutes' AS fresh
        FROM placed p LEFT JOIN budget_status_cache c ON c.budget_id = p.id
        WHERE p.deleted_at IS NULL
        GROUP BY p.id, c.budget_id
      )
      SELECT x.budget_id, x.name, x.scope_type, x.scope_id, x.parent_id, x.is_seed, x.matches, x.amount, x.currency,
             x.warning_threshold, x.critical_threshold, x.enforcement, x.period_start, x.period_end, x.active,
             x.current_amount, x.reserved_amount, x.usage_count, x.updated_at, x.active_alerts, x.alert_rules, x.model_policy
      FROM (
        -- Every member fresh: the cache rows as they are, in get_budget_statuses' order.
        SELECT row_number() OVER (ORDER BY m.root, m.depth DESC, m.id) AS ord, d.id AS budget_id, d.name::text, d.scope_type,
               d.scope_id::text, d.parent_id, m.is_seed, true AS matches, d.amount, d.currency::text, d.warning_threshold,
               d.critical_threshold, d.enforcement, m.period_start, m.period_end, true AS active, m.current_amount,
               (SELECT coalesce(sum(h.amount), 0) FROM budget_reservation_holds h
                WHERE h.budget_id = d.id AND h.expires_at > p_at) AS reserved_amount,
               m.usage_count, m.updated_at,
               (SELECT coalesce(jsonb_agg(jsonb_build_object(
                         'id', h.id, 'alertId', h.alert_id, 'threshold', h.threshold::text, 'type', h.alert_type,
                         'triggeredAt', h.triggered_at, 'percentUsed', h.percent_used::text,
                         'amount', h.amount::text, 'actions', h.actions,
                         'notificationChannels', h.notification_channels,
                         'acknowledged', h.acknowledged_at IS NOT NULL, 'acknowledgedAt', h.acknowledged_at,
                         'acknowledgedBy', h.acknowledged_by) ORDER BY h.triggered_at, h.threshold), '[]')
                FROM budget_alert_history h
                WHERE h.budget_id = d.id AND h.period_start = m.period_start) AS active_alerts,
               d.alerts AS alert_rules, d.model_policy
        FROM members m JOIN budget_definitions d ON d.id = m.budget_id
        WHERE (SELECT bool_and(f.fresh) FROM members f)
        UNION ALL
        -- Otherwise (or no budget): the general function, which refreshes what it must.
        SELECT g.ordinality, g.budget_id, g.name, g.scope_type, g.scope_id, g.parent_id, g.is_seed, g.matches,
               g.amount, g.currency, g.warning_threshold, g.critical_threshold, g.enforcement, g.period_start,
               g.period_end, g.active, g.current_amount, g.reserved_amount, g.usage_count, g.updated_at,
               g.active_alerts, g.alert_rules, g.model_policy
        FROM budget_check_context('{}', p_scope_types, p_scope_ids, p_at, p_model_id, p_tags, p_apply_filters) WITH ORDINALITY g
        WHERE NOT coalesce((SELECT bool_and(f.fresh) FROM members f), false)
      ) x
      ORDER BY x.ord
      $fn$`);
    await queryRunner.query(`
      COMMENT ON FUNCTION budget_check_context_of_scopes(text[], text[], timestamptz, text, text[], boolean) IS
        'budget_check_context for scopes and no ids: the same rows, read by one inlined statement while every cache row of the chains is fresh, else from budget_check_context.'`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP FUNCTION budget_check_context_of_scopes(text[], text[], timestamptz, text, text[], boolean)`);
  }
}
