import { MigrationInterface, QueryRunner } from 'typeorm';
import { frozenDefinition } from '../src/database/frozen-definition';
import { ConstraintChecks1764300200000 } from './1764300200000-ConstraintChecks';
import { Hardening1764301000000 } from './1764301000000-Hardening';
import { UsageRowsForBudget1764303500000 } from './1764303500000-UsageRowsForBudget';

/** The columns every usage writer returns (record_usage, record_usage_batch, record_integration_usage). */
const RECORD_COLUMNS = `
  replayed boolean, id uuid, budget_id uuid, amount numeric, currency text, source text, description text,
  model_id text, user_id text, team_id text, project_id text, customer_id text, tags text[], request_id text,
  idempotency_key text, reservation_id uuid, metadata jsonb, occurred_at timestamptz, recorded_at timestamptz,
  matched_budget_ids uuid[], fired_alerts jsonb`;

/** A ledger row `u` as RECORD_COLUMNS lists it, after `replayed`. */
const RECORD_VALUES = (u: string) => `
  ${u}.id, ${u}.budget_id, ${u}.amount, ${u}.currency::text, ${u}.source::text, ${u}.description::text,
  ${u}.model_id::text, ${u}.user_id::text, ${u}.team_id::text, ${u}.project_id::text, ${u}.customer_id::text,
  ${u}.tags, ${u}.request_id::text, ${u}.idempotency_key::text, ${u}.reservation_id, ${u}.metadata,
  ${u}.occurred_at, ${u}.recorded_at, ${u}.matched_budget_ids`;

/** The alerts fired on behalf of usage record `id` (those of budget `budget` first), as the writers answer them. */
const FIRED_ALERTS = (id: string, budget: string) => `
  SELECT coalesce(jsonb_agg(jsonb_build_object(
           'id', h.id, 'budgetId', h.budget_id, 'alertId', h.alert_id, 'threshold', h.threshold::text,
           'type', h.alert_type, 'percentUsed', h.percent_used::text, 'amount', h.amount::text,
           'actions', h.actions, 'notificationChannels', h.notification_channels,
           'periodStart', h.period_start, 'triggeredAt', h.triggered_at)
           ORDER BY h.budget_id = ${budget} DESC, h.threshold), '[]')
  FROM budget_alert_history h WHERE h.usage_record_id = ${id}`;

/**
 * Attribution (SPEC §12.2, issue 13): a usage counts toward every budget it matches, and every
 * ancestor of any of them, each budget once, with one ledger row per request.
 *
 * - A budget may carry a `filter` ({ models?, tags? }); `budget_filter_accepts()` is the one place
 *   its rule lives. Scope type `customer` joins the four. Usage carries `customer_id` and `tags`.
 * - An integration usage stores the budgets it matched in `matched_budget_ids` (in the global lock
 *   order: by root, deepest first; the first is `budget_id`). Each match other than the first gets a
 *   row in `budget_usage_attributions`, written by the ledger's own trigger, so "the requests that
 *   count toward budget B in a window" stays an index range per budget of B's subtree: the
 *   subtree's own rows plus the attribution rows whose first match lies outside it, each request
 *   once. The single-budget path (`matched_budget_ids` NULL) is unchanged.
 * - The cache trigger adds a record to the union of its matched budgets' chains, each node once,
 *   locking in the global order (root, depth descending, id) that checks and reservations use.
 * - The gateway's requestId is global: `budget_integration_requests` keys it (the idempotency of an
 *   integration usage across tree changes, and a table of its own that survives a partitioned
 *   ledger). Rows recorded before this migration (one per tree, keyed per budget) are carried into it.
 * - Checks and reservations take the request's model and tags: a scope budget whose filter refuses
 *   the request is not part of it; a budget named by id whose filter refuses is answered, but does
 *   not constrain (`matches` false).
 * - A filter change applies from the next record on: matches are stored, the ledger never rewritten.
 */
export class Attribution1764304000000 implements MigrationInterface {
  name = 'Attribution1764304000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE budget_definitions DROP CONSTRAINT budget_definitions_scope_type_check`);
    await queryRunner.query(`
      ALTER TABLE budget_definitions
        ADD CONSTRAINT budget_definitions_scope_type_check
          CHECK (scope_type IN ('organization', 'team', 'user', 'project', 'customer')),
        ADD COLUMN filter jsonb CONSTRAINT budget_definitions_filter_check
          CHECK (filter IS NULL OR jsonb_typeof(filter) = 'object')`);
    await queryRunner.query(`
      COMMENT ON COLUMN budget_definitions.filter IS
        'Which requests of its scope the budget counts: { models?: [id or prefix*], tags?: [all required] }; NULL counts all.'`);

    // The one rule of a filter. `models`: an entry equals the request's model, or ends in * and
    // the model starts with what precedes it; a request without a model matches no models filter.
    // `tags`: the request carries every listed tag.
    await queryRunner.query(`
      CREATE FUNCTION budget_filter_accepts(p_filter jsonb, p_model_id text, p_tags text[])
      RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
        SELECT p_filter IS NULL OR (
          (NOT (p_filter ? 'models') OR (p_model_id IS NOT NULL AND EXISTS (
             SELECT 1 FROM jsonb_array_elements_text(p_filter->'models') m (entry)
             WHERE CASE WHEN right(m.entry, 1) = '*' THEN starts_with(p_model_id, left(m.entry, -1))
                        ELSE p_model_id = m.entry END)))
          AND (NOT (p_filter ? 'tags')
               OR ARRAY(SELECT jsonb_array_elements_text(p_filter->'tags')) <@ coalesce(p_tags, '{}')))
      $fn$`);
    await queryRunner.query(`
      CREATE FUNCTION budget_tags_valid(p_tags text[]) RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
        SELECT cardinality(p_tags) <= 20 AND array_position(p_tags, NULL) IS NULL
               AND NOT EXISTS (SELECT 1 FROM unnest(p_tags) t WHERE char_length(t) NOT BETWEEN 1 AND 64)
      $fn$`);

    await queryRunner.query(`
      ALTER TABLE budget_usage_records
        ADD COLUMN customer_id varchar(200),
        ADD COLUMN tags text[] CONSTRAINT budget_usage_records_tags_check CHECK (tags IS NULL OR budget_tags_valid(tags)),
        ADD COLUMN matched_budget_ids uuid[] CONSTRAINT budget_usage_records_matched_check
          CHECK (matched_budget_ids IS NULL OR matched_budget_ids[1] = budget_id)`);
    await queryRunner.query(`
      COMMENT ON COLUMN budget_usage_records.matched_budget_ids IS
        'The budgets an integration usage matched, in lock order, budget_id first; NULL for a single-budget write (it matched budget_id).'`);
    // The summary breaks spend down by tag: the ledger's range index carries them, so it stays index-only.
    await queryRunner.query(`DROP INDEX budget_usage_records_budget_time_idx`);
    await queryRunner.query(`
      CREATE INDEX budget_usage_records_budget_time_idx ON budget_usage_records (budget_id, occurred_at, id)
        INCLUDE (amount, model_id, source, user_id, tags)`);
    await queryRunner.query(`
      CREATE TABLE budget_usage_attributions (
        budget_id          uuid NOT NULL REFERENCES budget_definitions (id),
        occurred_at        timestamptz NOT NULL,
        usage_id           uuid NOT NULL REFERENCES budget_usage_records (id),
        amount             numeric(24,10) NOT NULL,
        primary_budget_id  uuid NOT NULL,
        CONSTRAINT budget_usage_attributions_pkey PRIMARY KEY (budget_id, occurred_at, usage_id)
          INCLUDE (amount, primary_budget_id)
      )`);
    await queryRunner.query(`
      COMMENT ON TABLE budget_usage_attributions IS
        'One row per budget an integration usage matched besides its first (budget_id): written by the ledger trigger, never by hand.'`);

    await queryRunner.query(`
      CREATE TABLE budget_integration_requests (
        request_id    varchar(200) PRIMARY KEY,
        request_hash  text,
        usage_ids     uuid[] NOT NULL,
        recorded_at   timestamptz NOT NULL DEFAULT now()
      )`);
    await queryRunner.query(`
      COMMENT ON TABLE budget_integration_requests IS
        'The gateway''s request ids, global: an integration usage is recorded once per request id whatever the budget trees become.'`);
    // Integration usage recorded before attribution: one row per tree, each keyed by the request id.
    await queryRunner.query(`
      INSERT INTO budget_integration_requests (request_id, request_hash, usage_ids, recorded_at)
      SELECT u.idempotency_key, min(u.request_hash), array_agg(u.id ORDER BY u.recorded_at, u.id), min(u.recorded_at)
      FROM budget_usage_records u
      WHERE u.idempotency_key IS NOT NULL AND u.idempotency_key = u.request_id
      GROUP BY u.idempotency_key`);

    // A budget counts usage also through attribution rows: the currency lock looks at both.
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION budget_definitions_currency_lock() RETURNS trigger
      LANGUAGE plpgsql AS $fn$
      BEGIN
        PERFORM 1 FROM budget_status_cache c WHERE c.budget_id = NEW.id FOR UPDATE;
        IF EXISTS (
             WITH RECURSIVE tree AS (
               SELECT NEW.id AS id
               UNION
               SELECT b.id FROM tree t JOIN budget_definitions b ON b.parent_id = t.id)
             SELECT 1 FROM tree
             WHERE EXISTS (SELECT 1 FROM budget_usage_records u WHERE u.budget_id = tree.id)
                OR EXISTS (SELECT 1 FROM budget_usage_attributions a WHERE a.budget_id = tree.id)) THEN
          RAISE EXCEPTION USING ERRCODE = 'RB409', MESSAGE = 'CURRENCY_LOCKED',
            DETAIL = format('Budget %s already counts usage in %s, so its currency cannot change (the ledger is never relabelled); create a new budget for %s.',
                            NEW.id, OLD.currency, NEW.currency);
        END IF;
        IF EXISTS (SELECT 1 FROM budget_reservation_holds h WHERE h.budget_id = NEW.id AND h.expires_at > now()) THEN
          RAISE EXCEPTION USING ERRCODE = 'RB409', MESSAGE = 'CURRENCY_LOCKED',
            DETAIL = format('Budget %s has open reservations in %s; its currency can change once they are settled, released or expired.',
                            NEW.id, OLD.currency);
        END IF;
        RETURN NEW;
      END
      $fn$`);

    // The requests that count toward a budget in its window: its subtree's own rows (index-only per
    // node) and the attribution rows of the subtree whose first match lies outside it, each request once.
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION calculate_budget_status(p_budget_id uuid, p_at timestamptz DEFAULT now())
      RETURNS TABLE (period_start timestamptz, period_end timestamptz, active boolean,
                     current_amount numeric, usage_count bigint, last_usage_at timestamptz)
      LANGUAGE plpgsql STABLE AS $fn$
      #variable_conflict use_column
      DECLARE
        w record;
      BEGIN
        SELECT pw.period_start, pw.period_end, pw.active INTO w
        FROM budget_definitions b
        CROSS JOIN LATERAL budget_period_window(b.start_date, b.end_date, b.period, b.custom_period_days,
                                                b.recurring, b.timezone, p_at) pw
        WHERE b.id = p_budget_id;
        IF NOT FOUND THEN
          RAISE EXCEPTION USING ERRCODE = 'RB404', MESSAGE = 'BUDGET_NOT_FOUND',
            DETAIL = format('Budget %s does not exist.', p_budget_id);
        END IF;
        RETURN QUERY
          WITH RECURSIVE tree AS (
            SELECT p_budget_id AS id
            UNION
            SELECT b.id FROM tree t JOIN budget_definitions b ON b.parent_id = t.id
          ), own AS (
            SELECT sum(s.amount) AS amount, sum(s.n) AS n, max(s.last_at) AS last_at
            FROM tree t
            CROSS JOIN LATERAL (
              SELECT sum(u.amount) AS amount, count(*) AS n, max(u.occurred_at) AS last_at
              FROM budget_usage_records u
              WHERE u.budget_id = t.id AND u.occurred_at >= w.period_start AND u.occurred_at < w.period_end
            ) s
          ), attributed AS (
            -- OFFSET 0 keeps each node's scan a range of the attribution index (never one join
            -- over the whole table).
            SELECT sum(x.amount) AS amount, count(*) AS n, max(x.occurred_at) AS last_at
            FROM (SELECT DISTINCT a.usage_id, a.amount, a.occurred_at
                  FROM tree t
                  CROSS JOIN LATERAL (
                    SELECT a.usage_id, a.amount, a.occurred_at, a.primary_budget_id
                    FROM budget_usage_attributions a
                    WHERE a.budget_id = t.id AND a.occurred_at >= w.period_start AND a.occurred_at < w.period_end
                    OFFSET 0) a
                  WHERE a.primary_budget_id NOT IN (SELECT tree.id FROM tree)) x
          )
          SELECT w.period_start, w.period_end, w.active,
                 coalesce(own.amount, 0) + coalesce(attributed.amount, 0),
                 (coalesce(own.n, 0) + attributed.n)::bigint,
                 greatest(own.last_at, attributed.last_at)
          FROM own, attributed;
      END
      $fn$`);

    // Whole rows, for the readers that need them (reports, export). The usage summary reads the same
    // two sources with only the columns it groups by, so its scan stays index-only (a spec keeps the
    // two equal).
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION budget_usage_rows(p_budget_id uuid, p_from timestamptz, p_to timestamptz)
      RETURNS SETOF budget_usage_records
      LANGUAGE sql STABLE AS $fn$
        WITH RECURSIVE tree AS (
          SELECT p_budget_id AS id
          UNION
          SELECT c.id FROM budget_definitions c JOIN tree t ON c.parent_id = t.id
        )
        SELECT r.* FROM budget_usage_records r
        WHERE r.budget_id = ANY (ARRAY(SELECT tree.id FROM tree))
          AND r.occurred_at >= p_from AND r.occurred_at < p_to
        UNION ALL
        SELECT r.*
        FROM (SELECT DISTINCT a.usage_id, a.occurred_at
              FROM budget_usage_attributions a
              WHERE a.budget_id = ANY (ARRAY(SELECT tree.id FROM tree))
                AND a.occurred_at >= p_from AND a.occurred_at < p_to
                AND NOT a.primary_budget_id = ANY (ARRAY(SELECT tree.id FROM tree))) x
        JOIN budget_usage_records r ON r.id = x.usage_id AND r.occurred_at = x.occurred_at
      $fn$`);

    await queryRunner.query(ROLLUP);

    await queryRunner.query(`DROP FUNCTION record_usage(uuid, numeric, text, text, text, text, text, text, text, text,
                                                        text, text, jsonb, timestamptz, uuid)`);
    await queryRunner.query(RECORD_USAGE);
    await queryRunner.query(`DROP FUNCTION record_usage_batch(uuid, jsonb)`);
    await queryRunner.query(RECORD_USAGE_BATCH);
    await queryRunner.query(`DROP FUNCTION record_integration_usage(text[], text[], numeric, text, text, text, text, text,
                                                                    text, text, text, text, jsonb, timestamptz, uuid)`);
    await queryRunner.query(RECORD_INTEGRATION_USAGE);

    await queryRunner.query(`DROP FUNCTION budget_check_context(uuid[], text[], text[], timestamptz)`);
    await queryRunner.query(`DROP FUNCTION place_reservation(uuid[], text[], text[], numeric, text, integer, text, text, text, timestamptz)`);
    await queryRunner.query(`DROP FUNCTION budget_seeds(uuid[], text[], text[])`);
    await queryRunner.query(BUDGET_SEEDS);
    await queryRunner.query(BUDGET_CHECK_CONTEXT);
    await queryRunner.query(PLACE_RESERVATION);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    const restore = async (migration: MigrationInterface, name: string) =>
      queryRunner.query(await frozenDefinition(migration, name));
    await queryRunner.query(`DROP FUNCTION place_reservation(uuid[], text[], text[], numeric, text, integer, text, text, text,
                                                             timestamptz, text, text[])`);
    await queryRunner.query(`DROP FUNCTION budget_check_context(uuid[], text[], text[], timestamptz, text, text[], boolean)`);
    await queryRunner.query(`DROP FUNCTION budget_seeds(uuid[], text[], text[], text, text[], boolean)`);
    await restore(new ConstraintChecks1764300200000(), 'budget_seeds');
    await restore(new ConstraintChecks1764300200000(), 'budget_check_context');
    await restore(new Hardening1764301000000(), 'place_reservation');
    await queryRunner.query(`DROP FUNCTION record_integration_usage(text[], text[], numeric, text, text, text, text, text, text,
                                                                    text, text, text[], text, text, jsonb, timestamptz, uuid)`);
    await queryRunner.query(`DROP FUNCTION record_usage_batch(uuid, jsonb)`);
    await queryRunner.query(`DROP FUNCTION record_usage(uuid, numeric, text, text, text, text, text, text, text, text, text,
                                                        text, jsonb, timestamptz, uuid, text, text[])`);
    await restore(new Hardening1764301000000(), 'record_usage');
    await restore(new Hardening1764301000000(), 'record_usage_batch');
    await restore(new ConstraintChecks1764300200000(), 'record_integration_usage');
    await restore(new Hardening1764301000000(), 'budget_usage_records_rollup');
    await restore(new UsageRowsForBudget1764303500000(), 'budget_usage_rows');
    await restore(new Hardening1764301000000(), 'calculate_budget_status');
    await restore(new Hardening1764301000000(), 'budget_definitions_currency_lock');
    await queryRunner.query(`DROP TABLE budget_integration_requests`);
    await queryRunner.query(`DROP TABLE budget_usage_attributions`);
    await queryRunner.query(`DROP INDEX budget_usage_records_budget_time_idx`);
    await queryRunner.query(`
      ALTER TABLE budget_usage_records DROP COLUMN matched_budget_ids, DROP COLUMN tags, DROP COLUMN customer_id`);
    await queryRunner.query(`
      CREATE INDEX budget_usage_records_budget_time_idx ON budget_usage_records (budget_id, occurred_at, id)
        INCLUDE (amount, model_id, source, user_id)`);
    await queryRunner.query(`DROP FUNCTION budget_tags_valid(text[])`);
    await queryRunner.query(`DROP FUNCTION budget_filter_accepts(jsonb, text, text[])`);
    await queryRunner.query(`
      ALTER TABLE budget_definitions DROP COLUMN filter, DROP CONSTRAINT budget_definitions_scope_type_check`);
    await queryRunner.query(`
      ALTER TABLE budget_definitions ADD CONSTRAINT budget_definitions_scope_type_check
        CHECK (scope_type IN ('organization', 'team', 'user', 'project'))`);
  }
}

/**
 * The ledger trigger. What changed from the Hardening migration:
 * - a record that matched several budgets writes its attribution rows first (so any total read
 *   from the ledger in this trigger already sees them);
 * - a single record whose matches all lie on its first budget's chain takes the fast path, as a
 *   single-budget record does (the shared hierarchy lock keeps that chain still meanwhile);
 * - otherwise each record counts on the union of its matched budgets' chains, each node once
 *   (pairs of the record's matched set and a node), locking in the global order (root, depth
 *   descending, id), the order of checks and reservations;
 * - cache rows left holding an earlier window are moved to the window containing now at the end.
 */
const ROLLUP = `
      CREATE OR REPLACE FUNCTION budget_usage_records_rollup() RETURNS trigger
      LANGUAGE plpgsql AS $fn$
      DECLARE
        r           record;
        n           bigint;
        multi       boolean;
        single_chain boolean := false;
        one_id      uuid;
        node        uuid;
        pair_leaf   text[];
        pair_node   uuid[];
        ordered     uuid[];
        next_node   uuid;
        in_window   boolean;
        cur_amount  numeric;
        win_start   timestamptz;
        win_end     timestamptz;
        lim         numeric;
        rules       jsonb;
        deleted     timestamptz;
        hops        integer := 0;
        fresh       budget_status_cache;
        def         budget_definitions;
        win         record;
        at_time     timestamptz;
      BEGIN
        SELECT count(*), coalesce(bool_or(cardinality(i.matched_budget_ids) > 1), false), min(i.id::text)::uuid
          INTO n, multi, one_id FROM inserted_rows i;
        IF n = 0 THEN
          RETURN NULL;
        END IF;
        IF multi THEN
          INSERT INTO budget_usage_attributions (budget_id, occurred_at, usage_id, amount, primary_budget_id)
          SELECT DISTINCT m.id, i.occurred_at, i.id, i.amount, i.budget_id
          FROM inserted_rows i CROSS JOIN LATERAL unnest(i.matched_budget_ids[2:]) m (id)
          WHERE m.id <> i.budget_id;
          PERFORM pg_advisory_xact_lock_shared(hashtext('budget_definitions.hierarchy'));
        END IF;
        IF n = 1 THEN
          SELECT i.id, i.budget_id, i.amount, i.currency, i.occurred_at, i.matched_budget_ids INTO r FROM inserted_rows i;
          -- One chain holds every match: the fast path walks it.
          single_chain := NOT multi OR r.matched_budget_ids <@ ARRAY(SELECT a.id FROM budget_ancestry(ARRAY[r.budget_id]) a);
        END IF;
        IF single_chain THEN
          node := r.budget_id;
          LOOP
            UPDATE budget_status_cache c SET
              current_amount = c.current_amount + CASE WHEN r.occurred_at >= c.period_start
                AND r.occurred_at < c.period_end THEN r.amount ELSE 0 END,
              usage_count = c.usage_count + CASE WHEN r.occurred_at >= c.period_start
                AND r.occurred_at < c.period_end THEN 1 ELSE 0 END,
              last_usage_at = CASE WHEN r.occurred_at >= c.period_start AND r.occurred_at < c.period_end
                THEN greatest(c.last_usage_at, r.occurred_at) ELSE c.last_usage_at END,
              updated_at = CASE WHEN r.occurred_at >= c.period_start AND r.occurred_at < c.period_end
                THEN now() ELSE c.updated_at END
            FROM budget_definitions b
            WHERE c.budget_id = node AND b.id = node
            RETURNING c.parent_id, r.occurred_at >= c.period_start AND r.occurred_at < c.period_end,
                      c.current_amount, c.period_start, c.period_end, b.amount, b.alerts, b.deleted_at
            INTO next_node, in_window, cur_amount, win_start, win_end, lim, rules, deleted;
            IF NOT FOUND THEN
              -- No cache row (never the case by construction): rebuild it from the ledger, which
              -- already includes this record.
              next_node := (refresh_budget_status_cache(node)).parent_id;
            ELSE
              IF hops = 0 AND EXISTS (SELECT 1 FROM budget_definitions x WHERE x.id = node AND x.currency <> r.currency) THEN
                RAISE EXCEPTION USING ERRCODE = 'RB422', MESSAGE = 'CURRENCY_MISMATCH',
                  DETAIL = format('The currency of budget %s changed while this usage in %s was being recorded; it now counts in %s.',
                                  node, r.currency, (SELECT x.currency FROM budget_definitions x WHERE x.id = node));
              END IF;
              IF NOT in_window OR now() < win_start OR now() >= win_end THEN
                -- The usage lies outside the cached window, or that window no longer holds now:
                -- move the row to the window containing now if it holds another one (the ledger
                -- the refresh sums already includes this record).
                SELECT * INTO def FROM budget_definitions x WHERE x.id = node;
                win := budget_period_window(def.start_date, def.end_date, def.period, def.custom_period_days,
                                          def.recurring, def.timezone, now());
                IF win.period_start <> win_start OR win.period_end <> win_end THEN
                  fresh := refresh_budget_status_cache(node, now());
                  next_node := fresh.parent_id;
                  cur_amount := fresh.current_amount;
                  win_start := fresh.period_start;
                  win_end := fresh.period_end;
                  in_window := r.occurred_at >= win_start AND r.occurred_at < win_end;
                END IF;
              END IF;
              IF deleted IS NULL AND rules <> '[]'::jsonb THEN
                IF in_window THEN
                  PERFORM budget_alerts_evaluate(node, rules, lim, cur_amount, win_start, win_end, r.id);
                ELSE
                  -- Another window than the cached one: its figures come from the ledger (this
                  -- row lock serialises the writers of this budget, so the last of them sees all).
                  win := budget_period_window(def.start_date, def.end_date, def.period, def.custom_period_days,
                                            def.recurring, def.timezone, r.occurred_at);
                  IF win.active THEN
                    SELECT s.current_amount INTO cur_amount FROM calculate_budget_status(node, r.occurred_at) s;
                    PERFORM budget_alerts_evaluate(node, rules, lim, cur_amount, win.period_start, win.period_end, r.id);
                  END IF;
                END IF;
              END IF;
            END IF;
            hops := hops + 1;
            EXIT WHEN next_node IS NULL OR hops >= 8;
            node := next_node;
          END LOOP;
          RETURN NULL;
        END IF;

        IF NOT multi THEN
          PERFORM pg_advisory_xact_lock_shared(hashtext('budget_definitions.hierarchy'));
        END IF;
        IF n > 1 THEN
          one_id := NULL;
        END IF;
        -- A record's "leaf" is its matched set (its budget for a single-budget record); the pairs
        -- (leaf, node) cover the union of the chains of the leaf's budgets, each node once.
        WITH RECURSIVE leaves AS (
          SELECT DISTINCT coalesce(i.matched_budget_ids, ARRAY[i.budget_id])::text AS leaf, m.id
          FROM inserted_rows i CROSS JOIN LATERAL unnest(coalesce(i.matched_budget_ids, ARRAY[i.budget_id])) m (id)
        ), up AS (
          SELECT l.leaf, l.id AS node, 1 AS lvl FROM leaves l
          UNION
          SELECT up.leaf, b.parent_id, up.lvl + 1
          FROM up JOIN budget_definitions b ON b.id = up.node
          WHERE b.parent_id IS NOT NULL AND up.lvl < 8
        ), pairs AS (
          SELECT DISTINCT up.leaf, up.node FROM up
        )
        SELECT array_agg(p.leaf ORDER BY p.leaf, p.node), array_agg(p.node ORDER BY p.leaf, p.node)
          INTO pair_leaf, pair_node
        FROM pairs p;
        SELECT array_agg(x.id ORDER BY x.root, x.depth DESC, x.id) INTO ordered
        FROM (SELECT DISTINCT a.id, a.root, a.depth
              FROM budget_ancestry(ARRAY(SELECT DISTINCT u.node FROM unnest(pair_node) u (node))) a
              WHERE a.id = ANY (pair_node)) x;
        -- Row locks are taken in the ORDER BY order (LockRows sits above the sort).
        PERFORM 1 FROM budget_status_cache c JOIN unnest(ordered) WITH ORDINALITY o (node, ord) ON c.budget_id = o.node
        ORDER BY o.ord FOR UPDATE OF c;
        GET DIAGNOSTICS n = ROW_COUNT;
        -- Under the locks, the records' matched budgets still count in the currency the records carry.
        IF EXISTS (SELECT 1 FROM (SELECT DISTINCT m.id, i.currency
                                  FROM inserted_rows i
                                  CROSS JOIN LATERAL unnest(coalesce(i.matched_budget_ids, ARRAY[i.budget_id])) m (id)) i
                   JOIN budget_definitions x ON x.id = i.id WHERE x.currency <> i.currency) THEN
          RAISE EXCEPTION USING ERRCODE = 'RB422', MESSAGE = 'CURRENCY_MISMATCH',
            DETAIL = 'The currency of a budget changed while these usage records were being recorded in the previous one.';
        END IF;
        -- With every window locked, one pass adds each node's in-window sums.
        FOR node, cur_amount, win_start, win_end, lim, rules, deleted IN
          UPDATE budget_status_cache c SET
            current_amount = c.current_amount + s.amount, usage_count = c.usage_count + s.n,
            last_usage_at = greatest(c.last_usage_at, s.last_at), updated_at = now()
          FROM (SELECT w.budget_id, sum(i.amount) AS amount, count(*) AS n, max(i.occurred_at) AS last_at
                FROM unnest(pair_leaf, pair_node) p (leaf, node)
                JOIN budget_status_cache w ON w.budget_id = p.node
                JOIN inserted_rows i ON coalesce(i.matched_budget_ids, ARRAY[i.budget_id])::text = p.leaf
                                    AND i.occurred_at >= w.period_start AND i.occurred_at < w.period_end
                GROUP BY w.budget_id) s,
               budget_definitions b
          WHERE c.budget_id = s.budget_id AND b.id = s.budget_id
          RETURNING c.budget_id, c.current_amount, c.period_start, c.period_end, b.amount, b.alerts, b.deleted_at
        LOOP
          IF deleted IS NULL AND rules <> '[]'::jsonb THEN
            PERFORM budget_alerts_evaluate(node, rules, lim, cur_amount, win_start, win_end, one_id);
          END IF;
        END LOOP;
        -- Records outside their budgets' cached windows: each other window of each budget is
        -- evaluated once, against its total from the ledger.
        FOR node, lim, rules, at_time IN
          SELECT b.id, b.amount, b.alerts, min(i.occurred_at)
          FROM unnest(pair_leaf, pair_node) p (leaf, node)
          JOIN budget_status_cache w ON w.budget_id = p.node
          JOIN inserted_rows i ON coalesce(i.matched_budget_ids, ARRAY[i.budget_id])::text = p.leaf
                              AND NOT (i.occurred_at >= w.period_start AND i.occurred_at < w.period_end)
          JOIN budget_definitions b ON b.id = p.node AND b.deleted_at IS NULL AND b.alerts <> '[]'::jsonb
          CROSS JOIN LATERAL budget_period_window(b.start_date, b.end_date, b.period, b.custom_period_days,
                                                  b.recurring, b.timezone, i.occurred_at) pw
          WHERE pw.active
          GROUP BY b.id, pw.period_start
        LOOP
          SELECT s.current_amount, s.period_start, s.period_end INTO cur_amount, win_start, win_end
          FROM calculate_budget_status(node, at_time) s;
          PERFORM budget_alerts_evaluate(node, rules, lim, cur_amount, win_start, win_end, one_id);
        END LOOP;
        -- Cache rows still holding a window that no longer contains now move to the current one
        -- (rebuilt from the ledger, which includes these records).
        PERFORM refresh_budget_status_cache(c.budget_id, now())
        FROM unnest(ordered) WITH ORDINALITY o (node, ord)
        JOIN budget_status_cache c ON c.budget_id = o.node
        JOIN budget_definitions d ON d.id = o.node
        CROSS JOIN LATERAL budget_period_window(d.start_date, d.end_date, d.period, d.custom_period_days,
                                                d.recurring, d.timezone, now()) w
        WHERE (now() < c.period_start OR now() >= c.period_end)
          AND (w.period_start <> c.period_start OR w.period_end <> c.period_end);
        IF n < cardinality(ordered) THEN
          -- Missing cache rows (never the case by construction): rebuilt from the ledger.
          PERFORM refresh_budget_status_cache(o.node) FROM unnest(ordered) o (node)
          WHERE NOT EXISTS (SELECT 1 FROM budget_status_cache c WHERE c.budget_id = o.node);
        END IF;
        RETURN NULL;
      END
      $fn$`;

/**
 * What changed from the Hardening migration: the record carries `customer_id` and `tags`, and a
 * new record the budget's filter refuses is refused (422 FILTER_MISMATCH, the insert undone with
 * the statement); a replay answers as before, whatever the filter became.
 */
const RECORD_USAGE = `
      CREATE FUNCTION record_usage(
        p_budget_id uuid, p_amount numeric, p_currency text, p_source text DEFAULT NULL,
        p_description text DEFAULT NULL, p_model_id text DEFAULT NULL, p_user_id text DEFAULT NULL,
        p_team_id text DEFAULT NULL, p_project_id text DEFAULT NULL, p_request_id text DEFAULT NULL,
        p_idempotency_key text DEFAULT NULL, p_request_hash text DEFAULT NULL, p_metadata jsonb DEFAULT NULL,
        p_occurred_at timestamptz DEFAULT NULL, p_reservation_id uuid DEFAULT NULL,
        p_customer_id text DEFAULT NULL, p_tags text[] DEFAULT NULL)
      RETURNS TABLE (${RECORD_COLUMNS})
      LANGUAGE plpgsql AS $fn$
      #variable_conflict use_column
      DECLARE
        in_period  boolean;
        b          record;
        w          record;
        rec        budget_usage_records;
        was_replay boolean := false;
        fired      jsonb := '[]';
        at_time    timestamptz := coalesce(p_occurred_at, now());
      BEGIN
        SELECT d.currency, d.start_date, d.end_date, d.period, d.custom_period_days, d.recurring,
               d.timezone, d.deleted_at, d.filter, c.period_start AS cached_start, c.period_end AS cached_end
          INTO b FROM budget_definitions d LEFT JOIN budget_status_cache c ON c.budget_id = d.id
         WHERE d.id = p_budget_id;
        IF NOT FOUND OR b.deleted_at IS NOT NULL THEN
          RAISE EXCEPTION USING ERRCODE = 'RB404', MESSAGE = 'BUDGET_NOT_FOUND',
            DETAIL = format('Budget %s does not exist or was deleted.', p_budget_id);
        END IF;
        IF p_amount IS NULL OR p_amount < 0 OR p_amount > 10000000000000 OR p_amount <> round(p_amount, 10) THEN
          RAISE EXCEPTION USING ERRCODE = 'RB400', MESSAGE = 'INVALID_AMOUNT',
            DETAIL = 'A usage amount is a decimal from 0 to 1e13 with at most 10 fractional digits.';
        END IF;
        IF p_currency IS DISTINCT FROM b.currency::text THEN
          RAISE EXCEPTION USING ERRCODE = 'RB422', MESSAGE = 'CURRENCY_MISMATCH',
            DETAIL = format('This budget counts in %s; the usage is in %s.', b.currency, coalesce(p_currency, 'no currency'));
        END IF;
        -- Usage inside the cached window is inside a window of the budget: the common case needs no
        -- period arithmetic.
        IF at_time >= b.cached_start AND at_time < b.cached_end THEN
          in_period := true;
        ELSE
          w := budget_period_window(b.start_date, b.end_date, b.period, b.custom_period_days, b.recurring,
                                    b.timezone, at_time);
          in_period := w.active;
        END IF;
        IF NOT in_period AND NOT (p_idempotency_key IS NOT NULL AND EXISTS (
             SELECT 1 FROM budget_usage_records u
             WHERE u.budget_id = p_budget_id AND u.idempotency_key = p_idempotency_key)) THEN
          -- (A retry of a recorded request replays below even if its window has closed since.)
          RAISE EXCEPTION USING ERRCODE = 'RB422', MESSAGE = 'OUTSIDE_BUDGET_PERIOD',
            DETAIL = CASE
              WHEN at_time < b.start_date THEN
                format('occurredAt %s is before the budget starts (%s).', at_time, b.start_date)
              WHEN b.end_date IS NOT NULL AND at_time >= b.end_date THEN
                format('occurredAt %s is at or after the budget''s end (%s).', at_time, b.end_date)
              WHEN NOT b.recurring THEN
                format('occurredAt %s is outside the single period of this non-recurring budget [%s, %s).',
                       at_time, w.period_start, w.period_end)
              ELSE format('occurredAt %s is outside every window of this budget (the nearest is [%s, %s)).',
                          at_time, w.period_start, w.period_end) END;
        END IF;

        IF p_idempotency_key IS NULL OR in_period THEN
          INSERT INTO budget_usage_records AS u (budget_id, amount, currency, source, description, model_id,
            user_id, team_id, project_id, customer_id, tags, request_id, idempotency_key, request_hash,
            reservation_id, metadata, occurred_at)
          VALUES (p_budget_id, p_amount, p_currency, coalesce(p_source, 'api'), p_description, p_model_id,
            p_user_id, p_team_id, p_project_id, p_customer_id, p_tags, p_request_id, p_idempotency_key,
            p_request_hash, p_reservation_id, p_metadata, at_time)
          ON CONFLICT ON CONSTRAINT budget_usage_records_idempotency_key DO NOTHING
          RETURNING u.* INTO rec;
        END IF;

        IF rec.id IS NULL THEN
          SELECT u.* INTO rec FROM budget_usage_records u
          WHERE u.budget_id = p_budget_id AND u.idempotency_key = p_idempotency_key;
          IF NOT FOUND THEN
            -- Only possible outside READ COMMITTED (the conflicting row is not in the snapshot).
            RAISE EXCEPTION USING ERRCODE = '40001', MESSAGE = 'IDEMPOTENCY_RETRY',
              DETAIL = 'A concurrent request with the same idempotency key; retry.';
          END IF;
          IF rec.request_hash IS DISTINCT FROM p_request_hash THEN
            RAISE EXCEPTION USING ERRCODE = 'RB409', MESSAGE = 'IDEMPOTENCY_KEY_REUSED',
              DETAIL = format('The idempotency key "%s" was already used on this budget for a different request.',
                              p_idempotency_key);
          END IF;
          was_replay := true;
        ELSE
          IF NOT budget_filter_accepts(b.filter, p_model_id, p_tags) THEN
            -- Raising undoes the insert (and what its trigger counted).
            RAISE EXCEPTION USING ERRCODE = 'RB422', MESSAGE = 'FILTER_MISMATCH',
              DETAIL = format('Budget %s counts only requests its filter accepts (%s); this one has model %s and tags %s.',
                              p_budget_id, b.filter, coalesce(p_model_id, 'none'), coalesce(array_to_string(p_tags, ', '), 'none'));
          END IF;
          IF p_reservation_id IS NOT NULL THEN
            -- Only a reservation placed for this budget or an ancestor; raising undoes the insert.
            IF EXISTS (SELECT 1 FROM budget_reservations x
                       WHERE x.id = p_reservation_id AND x.budget_ids IS NOT NULL
                         AND NOT x.budget_ids && ARRAY(SELECT a.id FROM budget_ancestry(ARRAY[p_budget_id]) a)) THEN
              RAISE EXCEPTION USING ERRCODE = 'RB409', MESSAGE = 'RESERVATION_MISMATCH',
                DETAIL = format('Reservation %s was placed for other budgets; a usage on budget %s settles only a reservation of that budget or one of its ancestors.',
                                p_reservation_id, p_budget_id);
            END IF;
            -- Settles the hold in the same transaction as the actual cost (a hold that already
            -- expired or was released counts for nothing either way; the usage is recorded).
            PERFORM close_reservation(p_reservation_id, 'settled');
          END IF;
          ${FIRED_ALERTS('rec.id', 'p_budget_id')} INTO fired;
        END IF;

        RETURN QUERY SELECT was_replay, ${RECORD_VALUES('rec')}, fired;
      END
      $fn$`;

/** The items of a batch, with what decides whether each may go in (used twice by record_usage_batch). */
const BATCH_ITEMS = (withAmounts: boolean) => `
        WITH raw AS (
          SELECT (e.ord - 1)::integer AS ordinal, (e.item->>'id')::uuid AS id, e.item->>'currency' AS currency,
                 e.item->>'modelId' AS model_id,
                 CASE WHEN jsonb_typeof(e.item->'tags') = 'array'
                      THEN ARRAY(SELECT jsonb_array_elements_text(e.item->'tags')) END AS tags,
                 e.item->>'idempotencyKey' AS idempotency_key, e.item->>'requestHash' AS request_hash,
                 (e.item->>'reservationId')::uuid AS reservation_id,
                 coalesce((e.item->>'occurredAt')::timestamptz, now()) AS occurred_at${withAmounts ? `,
                 (e.item->>'amount')::numeric AS amount, coalesce(e.item->>'source', 'api') AS source,
                 e.item->>'description' AS description, e.item->>'userId' AS user_id, e.item->>'teamId' AS team_id,
                 e.item->>'projectId' AS project_id, e.item->>'customerId' AS customer_id,
                 e.item->>'requestId' AS request_id, nullif(e.item->'metadata', 'null'::jsonb) AS metadata,
                 row_number() OVER (PARTITION BY e.item->>'idempotencyKey' ORDER BY e.ord) AS nth` : ''}
          FROM jsonb_array_elements(p_records) WITH ORDINALITY e (item, ord)
        ), items AS (
          -- Usage inside the budget's cached (now current) window needs no period arithmetic.
          SELECT r.*, CASE WHEN r.occurred_at >= cached_start AND r.occurred_at < cached_end THEN true
                           ELSE (budget_period_window(b.start_date, b.end_date, b.period, b.custom_period_days,
                                                      b.recurring, b.timezone, r.occurred_at)).active END AS in_period,
                 budget_filter_accepts(b.filter, r.model_id, r.tags) AS accepted,
                 r.reservation_id IS NOT NULL AND EXISTS (
                   SELECT 1 FROM budget_reservations x
                   WHERE x.id = r.reservation_id AND x.budget_ids IS NOT NULL AND NOT x.budget_ids && chain) AS mismatch
          FROM raw r
        )`;

/**
 * What changed from the Hardening migration: records carry `customerId` and `tags`, and a record
 * the budget's filter refuses is refused alone (422 FILTER_MISMATCH).
 */
const RECORD_USAGE_BATCH = `
      CREATE FUNCTION record_usage_batch(p_budget_id uuid, p_records jsonb)
      RETURNS TABLE (ordinal integer, status integer, error_code text, error_detail text, replayed boolean,
                     id uuid, budget_id uuid, amount numeric, currency text, source text, description text,
                     model_id text, user_id text, team_id text, project_id text, customer_id text, tags text[],
                     request_id text, reservation_id uuid, metadata jsonb, occurred_at timestamptz,
                     recorded_at timestamptz, fired_alerts jsonb)
      LANGUAGE plpgsql AS $fn$
      #variable_conflict use_column
      DECLARE
        b        record;
        chain    uuid[];
        node     uuid;
        new_ids  uuid[];
        holds    uuid[];
        fired    jsonb;
        cached_start timestamptz;
        cached_end   timestamptz;
      BEGIN
        SELECT d.* INTO b FROM budget_definitions d WHERE d.id = p_budget_id AND d.deleted_at IS NULL;
        IF NOT FOUND THEN
          RAISE EXCEPTION USING ERRCODE = 'RB404', MESSAGE = 'BUDGET_NOT_FOUND',
            DETAIL = format('Budget %s does not exist or was deleted.', p_budget_id);
        END IF;

        -- The budget and its ancestors, deepest first (the order every writer locks in). A cache
        -- row still holding an earlier window is moved to the current one first, so the insert
        -- below adds to the right window and evaluates its alerts.
        WITH RECURSIVE up AS (
          SELECT p_budget_id AS id, 0 AS lvl
          UNION ALL
          SELECT d.parent_id, up.lvl + 1 FROM up JOIN budget_definitions d ON d.id = up.id
          WHERE d.parent_id IS NOT NULL AND up.lvl < 8
        )
        SELECT array_agg(up.id ORDER BY up.lvl) INTO chain FROM up;
        FOREACH node IN ARRAY chain LOOP
          PERFORM 1 FROM budget_status_cache c JOIN budget_definitions d ON d.id = c.budget_id
          CROSS JOIN LATERAL budget_period_window(d.start_date, d.end_date, d.period, d.custom_period_days,
                                                  d.recurring, d.timezone, now()) w
          WHERE c.budget_id = node AND (c.period_start <> w.period_start OR c.period_end <> w.period_end);
          IF FOUND THEN
            PERFORM refresh_budget_status_cache(node, now());
          END IF;
        END LOOP;

        SELECT c.period_start, c.period_end INTO cached_start, cached_end
        FROM budget_status_cache c WHERE c.budget_id = p_budget_id;

        -- One INSERT of every record that may go in: right currency, inside a window of the budget,
        -- accepted by its filter, a reservation of this budget or an ancestor (if any), and the first
        -- of its idempotency key in the batch. A key recorded before is skipped by ON CONFLICT and
        -- answered below.
        ${BATCH_ITEMS(true)}, inserted AS (
          INSERT INTO budget_usage_records AS u (id, budget_id, amount, currency, source, description, model_id,
            user_id, team_id, project_id, customer_id, tags, request_id, idempotency_key, request_hash,
            reservation_id, metadata, occurred_at)
          SELECT i.id, p_budget_id, i.amount, i.currency, i.source, i.description, i.model_id, i.user_id, i.team_id,
                 i.project_id, i.customer_id, i.tags, i.request_id, i.idempotency_key, i.request_hash,
                 i.reservation_id, i.metadata, i.occurred_at
          FROM items i
          WHERE i.currency = b.currency::text AND i.in_period AND i.accepted AND NOT i.mismatch
            AND (i.idempotency_key IS NULL OR i.nth = 1)
          ON CONFLICT ON CONSTRAINT budget_usage_records_idempotency_key DO NOTHING
          RETURNING u.id, u.reservation_id
        )
        SELECT array_agg(inserted.id), array_agg(DISTINCT inserted.reservation_id) FILTER (WHERE inserted.reservation_id IS NOT NULL)
          INTO new_ids, holds
        FROM inserted;
        new_ids := coalesce(new_ids, '{}');
        -- Settled after the insert, as record_usage does: cache rows first, then reservation rows.
        PERFORM close_reservation(h, 'settled') FROM unnest(holds) h;

        -- Alerts this transaction fired on the chain (the trigger ran at the end of the INSERT).
        SELECT coalesce(jsonb_agg(jsonb_build_object(
                 'id', h.id, 'budgetId', h.budget_id, 'alertId', h.alert_id, 'threshold', h.threshold::text,
                 'type', h.alert_type, 'percentUsed', h.percent_used::text, 'amount', h.amount::text,
                 'actions', h.actions, 'notificationChannels', h.notification_channels,
                 'periodStart', h.period_start, 'triggeredAt', h.triggered_at) ORDER BY h.threshold), '[]')
          INTO fired
        FROM budget_alert_history h WHERE h.budget_id = ANY (chain) AND h.triggered_at = now();

        -- One answer per record, in order; the alerts ride on the first line.
        RETURN QUERY
        ${BATCH_ITEMS(false)}
        SELECT i.ordinal,
               CASE WHEN i.id = ANY (new_ids) THEN 201
                    WHEN r.id IS NOT NULL AND r.request_hash IS NOT DISTINCT FROM i.request_hash THEN 200
                    WHEN r.id IS NOT NULL THEN 409
                    WHEN i.currency <> b.currency::text OR NOT i.in_period OR NOT i.accepted THEN 422
                    ELSE 409 END,
               CASE WHEN i.id = ANY (new_ids) OR (r.id IS NOT NULL AND r.request_hash IS NOT DISTINCT FROM i.request_hash) THEN NULL
                    WHEN r.id IS NOT NULL THEN 'IDEMPOTENCY_KEY_REUSED'
                    WHEN i.currency <> b.currency::text THEN 'CURRENCY_MISMATCH'
                    WHEN NOT i.in_period THEN 'OUTSIDE_BUDGET_PERIOD'
                    WHEN NOT i.accepted THEN 'FILTER_MISMATCH'
                    WHEN i.mismatch THEN 'RESERVATION_MISMATCH'
                    ELSE 'IDEMPOTENCY_KEY_IN_FLIGHT' END,
               CASE WHEN i.id = ANY (new_ids) OR (r.id IS NOT NULL AND r.request_hash IS NOT DISTINCT FROM i.request_hash) THEN NULL
                    WHEN r.id IS NOT NULL THEN
                      format('The idempotency key "%s" was already used on this budget for a different request.', i.idempotency_key)
                    WHEN i.currency <> b.currency::text THEN
                      format('This budget counts in %s; the usage is in %s.', b.currency, i.currency)
                    WHEN NOT i.in_period THEN format('occurredAt %s is outside every period of this budget.', i.occurred_at)
                    WHEN NOT i.accepted THEN
                      format('Budget %s counts only requests its filter accepts (%s); this one has model %s and tags %s.',
                             p_budget_id, b.filter, coalesce(i.model_id, 'none'), coalesce(array_to_string(i.tags, ', '), 'none'))
                    WHEN i.mismatch THEN
                      format('Reservation %s was placed for other budgets; a usage on budget %s settles only a reservation of that budget or one of its ancestors.',
                             i.reservation_id, p_budget_id)
                    ELSE format('A concurrent request is recording the idempotency key "%s"; retry to get its record.', i.idempotency_key) END,
               NOT (i.id = ANY (new_ids)) AND r.id IS NOT NULL AND r.request_hash IS NOT DISTINCT FROM i.request_hash,
               u.id, p_budget_id, u.amount, u.currency::text, u.source::text, u.description::text, u.model_id::text,
               u.user_id::text, u.team_id::text, u.project_id::text, u.customer_id::text, u.tags, u.request_id::text,
               u.reservation_id, u.metadata, u.occurred_at, u.recorded_at,
               CASE WHEN i.ordinal = 0 THEN fired ELSE '[]'::jsonb END
        FROM items i
        LEFT JOIN budget_usage_records r
          ON NOT (i.id = ANY (new_ids)) AND r.budget_id = p_budget_id AND r.idempotency_key = i.idempotency_key
        LEFT JOIN budget_usage_records u
          ON u.id = CASE WHEN i.id = ANY (new_ids) THEN i.id
                         WHEN r.request_hash IS NOT DISTINCT FROM i.request_hash THEN r.id END
        ORDER BY i.ordinal;
      END
      $fn$`;

/**
 * One AI request's usage: one ledger row counting toward every active scope budget whose filter
 * accepts it and every ancestor of them, each once (SPEC §12.2). Idempotent on the gateway's
 * request id, globally: the key row is claimed first (a concurrent retry waits for it), so a
 * retry replays whatever the trees became since. A request no budget matches records nothing.
 */
const RECORD_INTEGRATION_USAGE = `
      CREATE FUNCTION record_integration_usage(
        p_scope_types text[], p_scope_ids text[], p_amount numeric, p_currency text, p_source text,
        p_description text, p_model_id text, p_user_id text, p_team_id text, p_project_id text,
        p_customer_id text, p_tags text[], p_request_id text, p_request_hash text, p_metadata jsonb,
        p_occurred_at timestamptz, p_reservation_id uuid)
      RETURNS TABLE (${RECORD_COLUMNS})
      LANGUAGE plpgsql AS $fn$
      #variable_conflict use_column
      DECLARE
        at_time  timestamptz := coalesce(p_occurred_at, now());
        seeds    uuid[];
        matched  uuid[];
        earlier  budget_integration_requests;
        other    record;
        new_id   uuid := gen_random_uuid();
        rec      budget_usage_records;
        fired    jsonb;
      BEGIN
        IF p_amount IS NULL OR p_amount < 0 OR p_amount > 10000000000000 OR p_amount <> round(p_amount, 10) THEN
          RAISE EXCEPTION USING ERRCODE = 'RB400', MESSAGE = 'INVALID_AMOUNT',
            DETAIL = 'A usage amount is a decimal from 0 to 1e13 with at most 10 fractional digits.';
        END IF;
        SELECT q.* INTO earlier FROM budget_integration_requests q WHERE q.request_id = p_request_id;
        IF NOT FOUND THEN
          -- The live scope budgets active at occurred_at whose filter accepts the request, in the
          -- global lock order (root, depth descending, id).
          seeds := ARRAY(
            SELECT d.id FROM unnest(p_scope_types, p_scope_ids) s (t, i)
            JOIN budget_definitions d ON d.scope_type = s.t AND d.scope_id = s.i AND d.deleted_at IS NULL
            CROSS JOIN LATERAL budget_period_window(d.start_date, d.end_date, d.period, d.custom_period_days,
                                                    d.recurring, d.timezone, at_time) w
            WHERE w.active AND budget_filter_accepts(d.filter, p_model_id, p_tags));
          IF cardinality(seeds) = 0 THEN
            RETURN;
          END IF;
          SELECT array_agg(x.id ORDER BY x.root, x.depth DESC, x.id) INTO matched
          FROM (SELECT DISTINCT a.id, a.root, a.depth FROM budget_ancestry(seeds) a WHERE a.id = ANY (seeds)) x;
          SELECT d.id, d.name, d.scope_type, d.scope_id, d.currency INTO other
          FROM budget_definitions d WHERE d.id = ANY (matched) AND d.currency::text IS DISTINCT FROM p_currency
          ORDER BY d.id LIMIT 1;
          IF FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'RB422', MESSAGE = 'CURRENCY_MISMATCH',
              DETAIL = format('Budget "%s" (%s %s) counts in %s; the request is in %s.',
                              other.name, other.scope_type, other.scope_id, other.currency, coalesce(p_currency, 'no currency'));
          END IF;
          INSERT INTO budget_integration_requests AS q (request_id, request_hash, usage_ids)
          VALUES (p_request_id, p_request_hash, ARRAY[new_id])
          ON CONFLICT (request_id) DO NOTHING;
          IF NOT FOUND THEN
            -- A concurrent request with this id committed first: answer as its replay.
            SELECT q.* INTO earlier FROM budget_integration_requests q WHERE q.request_id = p_request_id;
            IF NOT FOUND THEN
              RAISE EXCEPTION USING ERRCODE = '40001', MESSAGE = 'IDEMPOTENCY_RETRY',
                DETAIL = 'A concurrent request with the same request id; retry.';
            END IF;
          END IF;
        END IF;

        IF earlier.request_id IS NOT NULL THEN
          IF earlier.request_hash IS DISTINCT FROM p_request_hash THEN
            RAISE EXCEPTION USING ERRCODE = 'RB409', MESSAGE = 'IDEMPOTENCY_KEY_REUSED',
              DETAIL = format('The request id "%s" was already recorded for a different request.', p_request_id);
          END IF;
          RETURN QUERY SELECT true, ${RECORD_VALUES('u')}, '[]'::jsonb
          FROM budget_usage_records u WHERE u.id = ANY (earlier.usage_ids)
          ORDER BY array_position(earlier.usage_ids, u.id);
          RETURN;
        END IF;

        IF p_reservation_id IS NOT NULL AND EXISTS (
             SELECT 1 FROM budget_reservations x
             WHERE x.id = p_reservation_id AND x.budget_ids IS NOT NULL
               AND NOT x.budget_ids && ARRAY(SELECT a.id FROM budget_ancestry(matched) a)) THEN
          RAISE EXCEPTION USING ERRCODE = 'RB409', MESSAGE = 'RESERVATION_MISMATCH',
            DETAIL = format('Reservation %s was placed for other budgets than the ones this request counts toward.',
                            p_reservation_id);
        END IF;
        -- The ledger trigger counts it on every matched budget's chain and writes the attribution rows.
        INSERT INTO budget_usage_records AS u (id, budget_id, amount, currency, source, description, model_id,
          user_id, team_id, project_id, customer_id, tags, request_id, request_hash, reservation_id, metadata,
          occurred_at, matched_budget_ids)
        VALUES (new_id, matched[1], p_amount, p_currency, coalesce(p_source, 'relaycore'), p_description, p_model_id,
          p_user_id, p_team_id, p_project_id, p_customer_id, p_tags, p_request_id, p_request_hash, p_reservation_id,
          p_metadata, at_time, matched)
        RETURNING u.* INTO rec;
        IF p_reservation_id IS NOT NULL THEN
          PERFORM close_reservation(p_reservation_id, 'settled');
        END IF;
        ${FIRED_ALERTS('rec.id', 'matched[1]')} INTO fired;
        RETURN QUERY SELECT false, ${RECORD_VALUES('rec')}, fired;
      END
      $fn$`;

/**
 * The budgets a request names, by id or by scope, that match it: live, and accepted by their
 * filter (unless p_apply_filters is false, for views that list every budget of the scopes).
 */
const BUDGET_SEEDS = `
      CREATE FUNCTION budget_seeds(p_budget_ids uuid[], p_scope_types text[], p_scope_ids text[],
                                   p_model_id text, p_tags text[], p_apply_filters boolean DEFAULT true)
      RETURNS uuid[] LANGUAGE plpgsql STABLE AS $fn$
      BEGIN
        RETURN ARRAY(
          SELECT d.id FROM budget_definitions d
          WHERE d.id = ANY (p_budget_ids) AND d.deleted_at IS NULL
            AND (NOT p_apply_filters OR budget_filter_accepts(d.filter, p_model_id, p_tags))
          UNION
          SELECT d.id FROM unnest(p_scope_types, p_scope_ids) AS s (t, i)
          JOIN budget_definitions d ON d.scope_type = s.t AND d.scope_id = s.i AND d.deleted_at IS NULL
          WHERE NOT p_apply_filters OR budget_filter_accepts(d.filter, p_model_id, p_tags));
      END
      $fn$`;

/**
 * What changed from the ConstraintChecks migration: seeds are filtered by the request's model and
 * tags; a budget named by id whose filter refuses the request is still answered (is_seed, matches
 * false), without its ancestors, so the caller can say why it does not constrain.
 */
const BUDGET_CHECK_CONTEXT = `
      CREATE FUNCTION budget_check_context(p_budget_ids uuid[], p_scope_types text[], p_scope_ids text[],
                                           p_at timestamptz DEFAULT now(), p_model_id text DEFAULT NULL,
                                           p_tags text[] DEFAULT NULL, p_apply_filters boolean DEFAULT true)
      RETURNS TABLE (budget_id uuid, name text, scope_type text, scope_id text, parent_id uuid, is_seed boolean,
                     matches boolean, amount numeric, currency text, warning_threshold numeric,
                     critical_threshold numeric, enforcement text, period_start timestamptz, period_end timestamptz,
                     active boolean, current_amount numeric, reserved_amount numeric, usage_count bigint,
                     updated_at timestamptz, active_alerts jsonb, alert_rules jsonb, model_policy jsonb)
      LANGUAGE plpgsql AS $fn$
      DECLARE
        seeds   uuid[];
        refused uuid[];
      BEGIN
        seeds := budget_seeds(p_budget_ids, p_scope_types, p_scope_ids, p_model_id, p_tags, p_apply_filters);
        refused := ARRAY(SELECT d.id FROM budget_definitions d
                         WHERE d.id = ANY (p_budget_ids) AND d.deleted_at IS NULL AND NOT d.id = ANY (seeds));
        RETURN QUERY
        SELECT s.budget_id, d.name::text, d.scope_type, d.scope_id::text, d.parent_id,
               s.budget_id = ANY (seeds) OR s.budget_id = ANY (refused), NOT s.budget_id = ANY (refused),
               s.amount, s.currency, s.warning_threshold,
               s.critical_threshold, s.enforcement, s.period_start, s.period_end, s.active, s.current_amount,
               budget_reserved_amount(s.budget_id, p_at), s.usage_count, s.updated_at, s.active_alerts, s.alert_rules,
               s.model_policy
        FROM get_budget_statuses(ARRAY(SELECT DISTINCT a.id FROM budget_ancestry(seeds) a) || refused, p_at)
             WITH ORDINALITY AS s
        JOIN budget_definitions d ON d.id = s.budget_id
        ORDER BY s.ordinality;
      END
      $fn$`;

/**
 * What changed from the Hardening migration: the members are the matching seeds active at p_at
 * (filtered by the request's model and tags) and all their ancestors; a seed that is not active
 * brings no ancestors, as its usage would not reach them.
 */
const PLACE_RESERVATION = `
      CREATE FUNCTION place_reservation(
        p_budget_ids uuid[], p_scope_types text[], p_scope_ids text[], p_amount numeric, p_currency text,
        p_ttl_seconds integer, p_model_id text, p_request_id text, p_created_by text,
        p_at timestamptz DEFAULT now(), p_match_model_id text DEFAULT NULL, p_tags text[] DEFAULT NULL)
      RETURNS TABLE (granted boolean, reservation_id uuid, expires_at timestamptz, blocking_budget_id uuid)
      LANGUAGE plpgsql AS $fn$
      DECLARE
        seeds    uuid[];
        members  uuid[];
        holding  uuid[] := '{}';
        member   record;
        w        record;
        c        budget_status_cache;
        held     numeric;
        new_id   uuid;
        expiry   timestamptz := p_at + make_interval(secs => p_ttl_seconds);
      BEGIN
        seeds := ARRAY(
          SELECT d.id FROM budget_definitions d
          CROSS JOIN LATERAL budget_period_window(d.start_date, d.end_date, d.period, d.custom_period_days,
                                                  d.recurring, d.timezone, p_at) pw
          WHERE d.id = ANY (budget_seeds(p_budget_ids, p_scope_types, p_scope_ids, p_match_model_id, p_tags))
            AND pw.active);
        SELECT array_agg(x.id ORDER BY x.root, x.depth DESC, x.id) INTO members
        FROM (SELECT DISTINCT a.id, a.root, a.depth FROM budget_ancestry(seeds) a) x;
        IF members IS NULL THEN
          RETURN QUERY SELECT true, NULL::uuid, NULL::timestamptz, NULL::uuid;
          RETURN;
        END IF;

        PERFORM 1 FROM budget_status_cache s JOIN unnest(members) WITH ORDINALITY m (id, ord) ON s.budget_id = m.id
        ORDER BY m.ord FOR UPDATE OF s;

        -- With every row locked, each statement below sees all committed usage, holds and
        -- currencies.
        FOR member IN
          SELECT d.id, d.amount, d.currency, d.enforcement, d.start_date, d.end_date, d.period, d.custom_period_days,
                 d.recurring, d.timezone, m.ord
          FROM unnest(members) WITH ORDINALITY m (id, ord) JOIN budget_definitions d ON d.id = m.id
          ORDER BY m.ord
        LOOP
          w := budget_period_window(member.start_date, member.end_date, member.period, member.custom_period_days,
                                    member.recurring, member.timezone, p_at);
          CONTINUE WHEN NOT w.active;
          IF member.currency::text <> p_currency THEN
            RAISE EXCEPTION USING ERRCODE = 'RB422', MESSAGE = 'CURRENCY_MISMATCH',
              DETAIL = format('Budget %s counts in %s; the reservation is in %s.', member.id, member.currency, p_currency);
          END IF;
          holding := holding || member.id;
          CONTINUE WHEN member.enforcement <> 'hard';
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

        INSERT INTO budget_reservations (amount, currency, model_id, request_id, created_by, expires_at, budget_ids)
        VALUES (p_amount, p_currency, p_model_id, p_request_id, p_created_by, expiry, members)
        RETURNING id INTO new_id;
        INSERT INTO budget_reservation_holds (reservation_id, budget_id, amount, expires_at)
        SELECT new_id, m.id, p_amount, expiry FROM unnest(holding) m (id);
        RETURN QUERY SELECT true, new_id, expiry, NULL::uuid;
      END
      $fn$`;
