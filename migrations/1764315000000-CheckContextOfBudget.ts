import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `budget_check_context_of`: the context of a check of one budget (`POST /budgets/:id/check-constraints`,
 * issue 17) read by one plain statement when every cache row of the chain is fresh, which is the
 * common case; otherwise exactly `budget_check_context`'s rows, from that function, in the same
 * statement (one round trip either way).
 *
 * Why: budget_check_context answers every shape of check (ids and scopes, several trees) through
 * PL/pgSQL functions nested four deep (seeds, ancestry twice, statuses, a status read per member,
 * reserved amount per member), about ten statements each with its executor start-up. For one
 * budget id the same rows come from one walk up the chain and one read of each member's cache row.
 * Measured here on one connection with named statements: 195 → 140 µs per round trip for a budget
 * without parent, 275 → 170 µs for a chain of three, against 75 µs for a read by primary key.
 *
 * The function is SQL, STABLE, with one SELECT, so PostgreSQL inlines it into the statement that
 * calls it: a prepared statement plans it once per connection (test/check-context.spec.ts pins that).
 * It calls budget_check_context only when a member is not fresh: "fresh" is budget_status_read's own
 * test (the cached window contains p_at and the row was updated in the last 5 minutes), under which
 * budget_status_read returns the cache row as it is, active; anything else (a rolled-over window, a
 * row to refresh, a budget outside its dates) is left to it. The rest restates budget_status_read's
 * answer for a fresh row (the active alerts of the window as jsonb, the reserved amount of open
 * holds) and get_budget_statuses' order (the named budget first, then up the chain); the spec
 * test/check-context.spec.ts holds both functions to the same rows, fresh and stale.
 */
export class CheckContextOfBudget1764315000000 implements MigrationInterface {
  name = 'CheckContextOfBudget1764315000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE FUNCTION budget_check_context_of(p_budget_id uuid, p_at timestamptz, p_model_id text, p_tags text[],
                                              p_apply_filters boolean DEFAULT true)
      RETURNS TABLE (budget_id uuid, name text, scope_type text, scope_id text, parent_id uuid, is_seed boolean,
                     matches boolean, amount numeric, currency text, warning_threshold numeric,
                     critical_threshold numeric, enforcement text, period_start timestamptz, period_end timestamptz,
                     active boolean, current_amount numeric, reserved_amount numeric, usage_count bigint,
                     updated_at timestamptz, active_alerts jsonb, alert_rules jsonb, model_policy jsonb)
      LANGUAGE sql STABLE AS $fn$
        WITH RECURSIVE chain AS (
          -- The named budget, live; a filter that refuses the request keeps it alone (answered, not
          -- counted: its ancestors are not reached), as budget_seeds and budget_check_context do.
          SELECT 0 AS hop, d.id, d.parent_id, d.deleted_at,
                 d.filter IS NULL OR NOT p_apply_filters OR budget_filter_accepts(d.filter, p_model_id, p_tags) AS matches
          FROM budget_definitions d
          WHERE d.id = p_budget_id AND d.deleted_at IS NULL
          UNION ALL
          -- Up the chain, as far as budget_ancestry goes (8 hops).
          SELECT chain.hop + 1, d.id, d.parent_id, d.deleted_at, true
          FROM chain JOIN budget_definitions d ON d.id = chain.parent_id
          WHERE chain.matches AND chain.hop < 8
        ), members AS MATERIALIZED (
          SELECT m.hop, m.matches, c.budget_id, c.period_start, c.period_end, c.current_amount, c.usage_count, c.updated_at,
                 c.budget_id IS NOT NULL AND p_at >= c.period_start AND p_at < c.period_end
                   AND c.updated_at >= p_at - interval '5 minutes' AS fresh
          FROM chain m LEFT JOIN budget_status_cache c ON c.budget_id = m.id
          WHERE m.deleted_at IS NULL
        )
        SELECT x.budget_id, x.name, x.scope_type, x.scope_id, x.parent_id, x.is_seed, x.matches, x.amount, x.currency,
               x.warning_threshold, x.critical_threshold, x.enforcement, x.period_start, x.period_end, x.active,
               x.current_amount, x.reserved_amount, x.usage_count, x.updated_at, x.active_alerts, x.alert_rules,
               x.model_policy
        FROM (
          -- Every member fresh: the cache rows as they are (budget_status_read's fast answer).
          SELECT m.hop AS ord, d.id AS budget_id, d.name::text, d.scope_type, d.scope_id::text, d.parent_id,
                 m.hop = 0 AS is_seed, m.matches, d.amount, d.currency::text, d.warning_threshold,
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
          -- Otherwise (or no live budget): the general function, which refreshes what it must.
          SELECT g.ordinality, g.budget_id, g.name, g.scope_type, g.scope_id, g.parent_id, g.is_seed, g.matches,
                 g.amount, g.currency, g.warning_threshold, g.critical_threshold, g.enforcement, g.period_start,
                 g.period_end, g.active, g.current_amount, g.reserved_amount, g.usage_count, g.updated_at,
                 g.active_alerts, g.alert_rules, g.model_policy
          FROM budget_check_context(ARRAY[p_budget_id], '{}', '{}', p_at, p_model_id, p_tags, p_apply_filters)
               WITH ORDINALITY g
          WHERE NOT coalesce((SELECT bool_and(f.fresh) FROM members f), false)
        ) x
        ORDER BY x.ord
      $fn$`);
    await queryRunner.query(`
      COMMENT ON FUNCTION budget_check_context_of(uuid, timestamptz, text, text[], boolean) IS
        'budget_check_context for one budget id: the same rows, read by one inlined statement while every cache row of the chain is fresh, else from budget_check_context.'`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP FUNCTION budget_check_context_of(uuid, timestamptz, text, text[], boolean)`);
  }
}
