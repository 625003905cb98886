import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The contexts of many checks read by one statement (issue 17, the check's share of group
 * commit): `budget_check_contexts_of` for checks of one budget id each
 * (`POST /budgets/:id/check-constraints`), `budget_check_contexts_of_scopes` for checks by scopes
 * (`POST /integration/check-constraints`). The service sends one of them for the checks that
 * queue while its slots are busy (src/constraint/check-context-groups.ts).
 *
 * Each is the fresh branch of its single function (`budget_check_context_of`,
 * `budget_check_context_of_scopes`), set-based over the group's requests: every CTE carries the
 * request's number, and a request is answered only when every member of its chains is fresh, with
 * the rows and order its single function gives then. A request with no row (a member to refresh, a
 * rolled-over window, an unknown or deleted budget, no budget for its scopes) is read again alone,
 * through the single function, which refreshes what it must: a group never writes, so it takes no
 * lock that could cross a writer's.
 *
 * Why: a check's statement cost PostgreSQL 110–190 µs of CPU against 25–30 µs for a read by key,
 * mostly per statement (executor start-up of about 25 plan nodes, its transaction, the relation
 * locks), and the service about as much in the driver (its round trip, the row description of 19
 * columns). Ten checks in one statement, on one connection: 40–44 µs of PostgreSQL and 29–34 µs of
 * client CPU per check (docs/performance.md, fifth pass).
 *
 * Both are SQL, STABLE, with one SELECT, so PostgreSQL inlines them into the prepared statement
 * that calls them. The requests' tags come as one jsonb array (an array of strings or null per
 * request) since text[] cannot hold lists of different lengths. test/check-context-groups.spec.ts
 * holds each to its single function's rows on the same state.
 */
export class CheckContextGroups1764323000000 implements MigrationInterface {
  name = 'CheckContextGroups1764323000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE FUNCTION budget_check_contexts_of(p_budget_ids uuid[], p_ats timestamptz[], p_model_ids text[], p_tags jsonb,
                                               p_apply_filters boolean DEFAULT true)
      RETURNS TABLE (request integer, budget_id uuid, name text, scope_type text, scope_id text, parent_id uuid,
                     is_seed boolean, matches boolean, amount numeric, currency text, warning_threshold numeric,
                     critical_threshold numeric, enforcement text, period_start timestamptz, period_end timestamptz,
                     active boolean, current_amount numeric, reserved_amount numeric, alert_rules jsonb,
                     model_policy jsonb)
      LANGUAGE sql STABLE AS $fn$
        WITH RECURSIVE requests AS (
          -- Request n (from 1): its budget, instant, model and tags (p_tags -> n - 1, null for none).
          SELECT r.n::integer AS request, r.budget_id, r.at, r.model_id,
                 CASE WHEN jsonb_typeof(p_tags -> (r.n::integer - 1)) = 'array'
                      THEN ARRAY(SELECT jsonb_array_elements_text(p_tags -> (r.n::integer - 1))) END AS tags
          FROM unnest(p_budget_ids, p_ats, p_model_ids) WITH ORDINALITY AS r (budget_id, at, model_id, n)
        ), chain AS (
          -- As budget_check_context_of: the named budget, live (a refusing filter keeps it alone),
          -- then up the chain as far as budget_ancestry goes (8 hops).
          SELECT q.request, q.at, 0 AS hop, d.id, d.parent_id, d.deleted_at,
                 coalesce(d.filter IS NULL OR NOT p_apply_filters OR budget_filter_accepts(d.filter, q.model_id, q.tags), false) AS matches
          FROM requests q JOIN budget_definitions d ON d.id = q.budget_id AND d.deleted_at IS NULL
          UNION ALL
          SELECT chain.request, chain.at, chain.hop + 1, d.id, d.parent_id, d.deleted_at, true
          FROM chain JOIN budget_definitions d ON d.id = chain.parent_id
          WHERE chain.matches AND chain.hop < 8
        ), members AS MATERIALIZED (
          SELECT m.request, m.at, m.hop, m.matches, c.budget_id, c.period_start, c.period_end, c.current_amount,
                 c.budget_id IS NOT NULL AND m.at >= c.period_start AND m.at < c.period_end
                   AND c.updated_at >= m.at - interval '5 minutes' AS fresh
          FROM chain m LEFT JOIN budget_status_cache c ON c.budget_id = m.id
          WHERE m.deleted_at IS NULL
        ), answered AS (
          -- The requests whose every member is fresh; the others are read again alone.
          SELECT f.request FROM members f GROUP BY f.request HAVING bool_and(f.fresh)
        )
        SELECT m.request, d.id, d.name::text, d.scope_type, d.scope_id::text, d.parent_id, m.hop = 0, m.matches,
               d.amount, d.currency::text, d.warning_threshold, d.critical_threshold, d.enforcement, m.period_start,
               m.period_end, true, m.current_amount,
               (SELECT coalesce(sum(h.amount), 0) FROM budget_reservation_holds h
                WHERE h.budget_id = d.id AND h.expires_at > m.at),
               d.alerts, d.model_policy
        FROM members m
        JOIN answered a ON a.request = m.request
        JOIN budget_definitions d ON d.id = m.budget_id
        ORDER BY m.request, m.hop
      $fn$`);
    await queryRunner.query(`
      COMMENT ON FUNCTION budget_check_contexts_of(uuid[], timestamptz[], text[], jsonb, boolean) IS
        'budget_check_context_of for many checks in one statement: the rows of each request (numbered from 1) whose chain is all fresh; the others have none and are read alone.'`);

    await queryRunner.query(`
      CREATE FUNCTION budget_check_contexts_of_scopes(p_scope_requests integer[], p_scope_types text[], p_scope_ids text[],
                                                      p_ats timestamptz[], p_model_ids text[], p_tags jsonb,
                                                      p_apply_filters boolean DEFAULT true)
      RETURNS TABLE (request integer, budget_id uuid, name text, scope_type text, scope_id text, parent_id uuid,
                     is_seed boolean, matches boolean, amount numeric, currency text, warning_threshold numeric,
                     critical_threshold numeric, enforcement text, period_start timestamptz, period_end timestamptz,
                     active boolean, current_amount numeric, reserved_amount numeric, alert_rules jsonb,
                     model_policy jsonb)
      LANGUAGE sql STABLE AS $fn$
        WITH RECURSIVE requests AS (
          -- Request n (from 1): its instant, model and tags; p_scope_requests names each scope's request.
          SELECT r.n::integer AS request, r.at, r.model_id,
                 CASE WHEN jsonb_typeof(p_tags -> (r.n::integer - 1)) = 'array'
                      THEN ARRAY(SELECT jsonb_array_elements_text(p_tags -> (r.n::integer - 1))) END AS tags
          FROM unnest(p_ats, p_model_ids) WITH ORDINALITY AS r (at, model_id, n)
        ), walk AS (
          -- As budget_check_context_of_scopes, per request: the budgets of its scopes, live and
          -- accepted by their filters, then up each one's chain as far as budget_ancestry goes.
          SELECT q.request, q.at, d.id AS start, 0 AS hop, d.id, d.parent_id, d.deleted_at
          FROM (SELECT DISTINCT s.q, s.t, s.i FROM unnest(p_scope_requests, p_scope_types, p_scope_ids) AS s (q, t, i)) s
          JOIN requests q ON q.request = s.q
          JOIN budget_definitions d ON d.scope_type = s.t AND d.scope_id = s.i AND d.deleted_at IS NULL
          WHERE d.filter IS NULL OR NOT p_apply_filters OR budget_filter_accepts(d.filter, q.model_id, q.tags)
          UNION ALL
          SELECT walk.request, walk.at, walk.start, walk.hop + 1, d.id, d.parent_id, d.deleted_at
          FROM walk JOIN budget_definitions d ON d.id = walk.parent_id
          WHERE walk.hop < 8
        ), placed AS (
          SELECT w.request, w.at, w.id, w.deleted_at, w.hop = 0 AS seed,
                 first_value(w.id) OVER (PARTITION BY w.request, w.start ORDER BY w.hop DESC) AS root,
                 max(w.hop) OVER (PARTITION BY w.request, w.start) - w.hop AS depth
          FROM walk w
        ), members AS MATERIALIZED (
          SELECT p.request, p.at, p.id, min(p.root::text)::uuid AS root, min(p.depth) AS depth, bool_or(p.seed) AS is_seed,
                 c.budget_id, c.period_start, c.period_end, c.current_amount,
                 c.budget_id IS NOT NULL AND p.at >= c.period_start AND p.at < c.period_end
                   AND c.updated_at >= p.at - interval '5 minutes' AS fresh
          FROM placed p LEFT JOIN budget_status_cache c ON c.budget_id = p.id
          WHERE p.deleted_at IS NULL
          GROUP BY p.request, p.at, p.id, c.budget_id
        ), answered AS (
          SELECT f.request FROM members f GROUP BY f.request HAVING bool_and(f.fresh)
        )
        SELECT x.request, x.budget_id, x.name, x.scope_type, x.scope_id, x.parent_id, x.is_seed, true, x.amount,
               x.currency, x.warning_threshold, x.critical_threshold, x.enforcement, x.period_start, x.period_end, true,
               x.current_amount, x.reserved_amount, x.alert_rules, x.model_policy
        FROM (
          -- In get_budget_statuses' order within each request, as budget_check_context_of_scopes.
          SELECT m.request, row_number() OVER (PARTITION BY m.request ORDER BY m.root, m.depth DESC, m.id) AS ord,
                 d.id AS budget_id, d.name::text AS name, d.scope_type, d.scope_id::text AS scope_id, d.parent_id,
                 m.is_seed, d.amount, d.currency::text AS currency, d.warning_threshold, d.critical_threshold,
                 d.enforcement, m.period_start, m.period_end, m.current_amount,
                 (SELECT coalesce(sum(h.amount), 0) FROM budget_reservation_holds h
                  WHERE h.budget_id = d.id AND h.expires_at > m.at) AS reserved_amount,
                 d.alerts AS alert_rules, d.model_policy
          FROM members m
          JOIN answered a ON a.request = m.request
          JOIN budget_definitions d ON d.id = m.budget_id
        ) x
        ORDER BY x.request, x.ord
      $fn$`);
    await queryRunner.query(`
      COMMENT ON FUNCTION budget_check_contexts_of_scopes(integer[], text[], text[], timestamptz[], text[], jsonb, boolean) IS
        'budget_check_context_of_scopes for many checks in one statement: the rows of each request (numbered from 1) whose chains are all fresh; the others have none and are read alone.'`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP FUNCTION budget_check_contexts_of_scopes(integer[], text[], text[], timestamptz[], text[], jsonb, boolean)`);
    await queryRunner.query(`DROP FUNCTION budget_check_contexts_of(uuid[], timestamptz[], text[], jsonb, boolean)`);
  }
}
