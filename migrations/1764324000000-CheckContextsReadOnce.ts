import { MigrationInterface, QueryRunner } from 'typeorm';
import { frozenDefinition } from '../src/database/frozen-definition';
import { CheckContextGroups1764323000000 } from './1764323000000-CheckContextGroups';

/**
 * `budget_check_contexts_of` and `budget_check_contexts_of_scopes` (migration CheckContextGroups)
 * read what the checks of a group share once: each budget's chain is walked once however many
 * requests name it, and each member's definition, cache row and whether it has any hold are read
 * once however many requests reach it. Only what depends on a request stays per request: its
 * filters, its instant's freshness test and, for a member with holds, the sum of those open at its
 * instant. The rows are unchanged (test/check-context-groups.spec.ts holds them to the single
 * functions'). Why: checks behind one gateway share their organisation's and teams' budgets; the
 * first version read them once per request, about 20 index probes per check of five scopes, and
 * judged a filtered budget's filter once per request (a PL/pgSQL call, about 35 µs); it now judges
 * each filter once per model and tags the group asks about, and places each chain's members (root,
 * depth) once rather than once per request naming it.
 */
export class CheckContextsReadOnce1764324000000 implements MigrationInterface {
  name = 'CheckContextsReadOnce1764324000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION budget_check_contexts_of(p_budget_ids uuid[], p_ats timestamptz[], p_model_ids text[], p_tags jsonb,
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
        ), candidates AS MATERIALIZED (
          SELECT q.request, q.at, q.model_id, q.tags, d.id, d.filter
          FROM requests q JOIN budget_definitions d ON d.id = q.budget_id AND d.deleted_at IS NULL
        ), verdicts AS MATERIALIZED (
          -- Each filter judged once per model and tags the group asks it about.
          SELECT v.id, v.model_id, v.tags, budget_filter_accepts(v.filter, v.model_id, v.tags) AS accepts
          FROM (SELECT DISTINCT c.id, c.filter, c.model_id, c.tags FROM candidates c
                WHERE c.filter IS NOT NULL AND p_apply_filters IS NOT FALSE) v
        ), seeds AS (
          -- As budget_check_context_of: the named budget, live; a filter that refuses the request
          -- keeps it alone (answered, not counted: its ancestors are not reached).
          SELECT c.request, c.at, c.id,
                 coalesce(c.filter IS NULL OR NOT p_apply_filters
                          OR (SELECT v.accepts FROM verdicts v
                              WHERE v.id = c.id AND v.model_id IS NOT DISTINCT FROM c.model_id AND v.tags IS NOT DISTINCT FROM c.tags),
                          false) AS matches
          FROM candidates c
        ), walk AS (
          -- Up each named budget's chain once, however many requests name it, as far as
          -- budget_ancestry goes (8 hops).
          SELECT d.id AS start, 0 AS hop, d.id, d.parent_id, d.deleted_at
          FROM budget_definitions d WHERE d.id IN (SELECT s.id FROM seeds s)
          UNION ALL
          SELECT walk.start, walk.hop + 1, d.id, d.parent_id, d.deleted_at
          FROM walk JOIN budget_definitions d ON d.id = walk.parent_id
          WHERE walk.hop < 8
        ), members AS MATERIALIZED (
          -- Each request's members: its budget, and its ancestors when the budget matches.
          SELECT s.request, s.at, w.hop, w.hop > 0 OR s.matches AS matches, w.id
          FROM seeds s JOIN walk w ON w.start = s.id
          WHERE (w.hop = 0 OR s.matches) AND w.deleted_at IS NULL
        ), shared AS MATERIALIZED (
          -- What every request reads alike about a member, read once: its definition, its cache
          -- row, and whether it has any hold the group's earliest instant could count.
          SELECT d.id, d.name::text AS name, d.scope_type, d.scope_id::text AS scope_id, d.parent_id, d.amount,
                 d.currency::text AS currency, d.warning_threshold, d.critical_threshold, d.enforcement,
                 d.alerts, d.model_policy, c.budget_id AS cached_id, c.period_start, c.period_end, c.current_amount,
                 c.updated_at,
                 EXISTS (SELECT 1 FROM budget_reservation_holds h
                         WHERE h.budget_id = d.id AND h.expires_at > (SELECT min(q.at) FROM requests q)) AS held
          FROM budget_definitions d LEFT JOIN budget_status_cache c ON c.budget_id = d.id
          WHERE d.id IN (SELECT m.id FROM members m)
        ), judged AS (
          SELECT m.request, m.at, m.hop, m.matches, x.*,
                 x.cached_id IS NOT NULL AND m.at >= x.period_start AND m.at < x.period_end
                   AND x.updated_at >= m.at - interval '5 minutes' AS fresh
          FROM members m JOIN shared x ON x.id = m.id
        )
        SELECT j.request, j.id, j.name, j.scope_type, j.scope_id, j.parent_id, j.hop = 0, j.matches, j.amount, j.currency,
               j.warning_threshold, j.critical_threshold, j.enforcement, j.period_start, j.period_end, true,
               j.current_amount,
               CASE WHEN j.held THEN (SELECT coalesce(sum(h.amount), 0) FROM budget_reservation_holds h
                                      WHERE h.budget_id = j.id AND h.expires_at > j.at) ELSE 0 END,
               j.alerts, j.model_policy
        FROM judged j
        -- The requests whose every member is fresh; the others are read again alone.
        WHERE j.request IN (SELECT f.request FROM judged f GROUP BY f.request HAVING bool_and(f.fresh))
        ORDER BY j.request, j.hop
      $fn$`);
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION budget_check_contexts_of_scopes(p_scope_requests integer[], p_scope_types text[], p_scope_ids text[],
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
        ), candidates AS MATERIALIZED (
          -- Per request, the live budgets of its scopes.
          SELECT DISTINCT q.request, q.at, q.model_id, q.tags, d.id, d.filter
          FROM (SELECT DISTINCT s.q, s.t, s.i FROM unnest(p_scope_requests, p_scope_types, p_scope_ids) AS s (q, t, i)) s
          JOIN requests q ON q.request = s.q
          JOIN budget_definitions d ON d.scope_type = s.t AND d.scope_id = s.i AND d.deleted_at IS NULL
        ), verdicts AS MATERIALIZED (
          -- Each filter judged once per model and tags the group asks it about.
          SELECT v.id, v.model_id, v.tags, budget_filter_accepts(v.filter, v.model_id, v.tags) AS accepts
          FROM (SELECT DISTINCT c.id, c.filter, c.model_id, c.tags FROM candidates c
                WHERE c.filter IS NOT NULL AND p_apply_filters IS NOT FALSE) v
        ), seeds AS (
          -- As budget_check_context_of_scopes: those accepted by their filters.
          SELECT c.request, c.at, c.id
          FROM candidates c
          WHERE c.filter IS NULL OR NOT p_apply_filters
             OR (SELECT v.accepts FROM verdicts v
                 WHERE v.id = c.id AND v.model_id IS NOT DISTINCT FROM c.model_id AND v.tags IS NOT DISTINCT FROM c.tags)
        ), walk AS (
          -- Up each seed budget's chain once, however many requests reach it, as far as
          -- budget_ancestry goes (8 hops).
          SELECT d.id AS start, 0 AS hop, d.id, d.parent_id, d.deleted_at
          FROM budget_definitions d WHERE d.id IN (SELECT s.id FROM seeds s)
          UNION ALL
          SELECT walk.start, walk.hop + 1, d.id, d.parent_id, d.deleted_at
          FROM walk JOIN budget_definitions d ON d.id = walk.parent_id
          WHERE walk.hop < 8
        ), placed AS MATERIALIZED (
          -- Each member's root (the top of its walk) and depth under it, as budget_ancestry gives them.
          SELECT w.start, w.id, w.deleted_at, w.hop = 0 AS seed,
                 first_value(w.id) OVER (PARTITION BY w.start ORDER BY w.hop DESC) AS root,
                 max(w.hop) OVER (PARTITION BY w.start) - w.hop AS depth
          FROM walk w
        ), members AS MATERIALIZED (
          SELECT s.request, s.at, p.id, min(p.root::text)::uuid AS root, min(p.depth) AS depth, bool_or(p.seed) AS is_seed
          FROM seeds s JOIN placed p ON p.start = s.id
          WHERE p.deleted_at IS NULL
          GROUP BY s.request, s.at, p.id
        ), shared AS MATERIALIZED (
          -- What every request reads alike about a member, read once: its definition, its cache
          -- row, and whether it has any hold the group's earliest instant could count.
          SELECT d.id, d.name::text AS name, d.scope_type, d.scope_id::text AS scope_id, d.parent_id, d.amount,
                 d.currency::text AS currency, d.warning_threshold, d.critical_threshold, d.enforcement,
                 d.alerts, d.model_policy, c.budget_id AS cached_id, c.period_start, c.period_end, c.current_amount,
                 c.updated_at,
                 EXISTS (SELECT 1 FROM budget_reservation_holds h
                         WHERE h.budget_id = d.id AND h.expires_at > (SELECT min(q.at) FROM requests q)) AS held
          FROM budget_definitions d LEFT JOIN budget_status_cache c ON c.budget_id = d.id
          WHERE d.id IN (SELECT m.id FROM members m)
        ), judged AS (
          SELECT m.request, m.at, m.root, m.depth, m.is_seed, x.*,
                 x.cached_id IS NOT NULL AND m.at >= x.period_start AND m.at < x.period_end
                   AND x.updated_at >= m.at - interval '5 minutes' AS fresh
          FROM members m JOIN shared x ON x.id = m.id
        )
        SELECT j.request, j.id, j.name, j.scope_type, j.scope_id, j.parent_id, j.is_seed, true, j.amount, j.currency,
               j.warning_threshold, j.critical_threshold, j.enforcement, j.period_start, j.period_end, true,
               j.current_amount,
               CASE WHEN j.held THEN (SELECT coalesce(sum(h.amount), 0) FROM budget_reservation_holds h
                                      WHERE h.budget_id = j.id AND h.expires_at > j.at) ELSE 0 END,
               j.alerts, j.model_policy
        FROM judged j
        -- The requests whose every member is fresh, in get_budget_statuses' order within each, as
        -- budget_check_context_of_scopes; the others are read again alone.
        WHERE j.request IN (SELECT f.request FROM judged f GROUP BY f.request HAVING bool_and(f.fresh))
        ORDER BY j.request, j.root, j.depth DESC, j.id
      $fn$`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    const created = new CheckContextGroups1764323000000();
    await queryRunner.query(await frozenDefinition(created, 'budget_check_contexts_of_scopes'));
    await queryRunner.query(await frozenDefinition(created, 'budget_check_contexts_of'));
  }
}
