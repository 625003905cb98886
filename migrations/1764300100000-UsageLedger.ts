import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The usage ledger, the per-budget status cache, alert history and the hot-path functions.
 *
 * Hot path: `record_usage(...)` (one round trip per usage write) and `get_budget_status(...)` /
 * `get_budget_statuses(...)` (one round trip per status read or constraint check).
 *
 * Concurrency model (READ COMMITTED, which the service uses):
 * - Every usage insert updates the cache row of its budget and of each ancestor, leaf to root.
 *   The cache row lock is the serialisation point between writers, refreshes and re-parenting.
 * - Cache rows are always locked deepest first (depth = distance from the root, then id), by
 *   writers (a chain is strictly deepest first), refreshes of several budgets and re-parenting,
 *   so they never deadlock with each other. A transaction that writes usage into several budget
 *   trees must do so in a fixed order of the trees (e.g. sorted by root id).
 * - budget_status_cache.parent_id mirrors budget_definitions.parent_id so that a writer reads the
 *   next link of its chain from the row it has just locked: a re-parenting commits both together
 *   while holding the moved budget's cache row, so a writer either went through before it (and the
 *   re-parenting then recomputes the old and new ancestors after it) or after it (and follows the
 *   new chain).
 *
 * Money is NUMERIC throughout (sums are exact). Numbers inside the jsonb these functions return
 * (amounts, thresholds, percents) are JSON strings holding exact decimals.
 */
export class UsageLedger1764300100000 implements MigrationInterface {
  name = 'UsageLedger1764300100000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE budget_usage_records (
        id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        budget_id       uuid NOT NULL REFERENCES budget_definitions (id),
        amount          numeric(24, 10) NOT NULL CHECK (amount >= 0 AND amount <= 10000000000000),
        currency        char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
        source          varchar(100) NOT NULL DEFAULT 'api',
        description     varchar(2000),
        model_id        varchar(200),
        user_id         varchar(200),
        team_id         varchar(200),
        project_id      varchar(200),
        request_id      varchar(200),
        idempotency_key varchar(200),
        request_hash    text,
        reservation_id  uuid,
        metadata        jsonb CHECK (metadata IS NULL OR jsonb_typeof(metadata) = 'object'),
        occurred_at     timestamptz NOT NULL,
        recorded_at     timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT budget_usage_records_idempotency_key UNIQUE (budget_id, idempotency_key)
      )`);
    // One index serves the three per-budget reads, so an insert maintains only three b-trees
    // (this one, the primary key and the idempotency key):
    // - window sums: range on (budget_id, occurred_at), index-only thanks to INCLUDE (amount);
    // - history, newest first: the same b-tree scanned backwards gives ORDER BY occurred_at DESC,
    //   id DESC, and keyset pagination WHERE (occurred_at, id) < ($2, $3) is an index condition;
    // - summaries: model_id, source and user_id are INCLUDEd so the by-model/source/user/day
    //   breakdowns of a window are index-only scans too.
    await queryRunner.query(`
      CREATE INDEX budget_usage_records_budget_time_idx ON budget_usage_records (budget_id, occurred_at, id)
      INCLUDE (amount, model_id, source, user_id)`);
    // calculate_budget_status walks ALL descendants, deleted ones included (the ledger is never
    // rewritten); the partial index of migration 1 only covers live ones.
    await queryRunner.query(`CREATE INDEX budget_definitions_parent_all_idx ON budget_definitions (parent_id)`);

    // One row per budget, for the window it holds (normally the one containing now). The
    // fillfactor leaves room on each page for HOT updates: every usage write updates its budget's
    // row and each ancestor's.
    await queryRunner.query(`
      CREATE TABLE budget_status_cache (
        budget_id      uuid PRIMARY KEY REFERENCES budget_definitions (id) ON DELETE CASCADE,
        parent_id      uuid,
        period_start   timestamptz NOT NULL,
        period_end     timestamptz NOT NULL,
        current_amount numeric NOT NULL DEFAULT 0,
        usage_count    bigint NOT NULL DEFAULT 0,
        last_usage_at  timestamptz,
        updated_at     timestamptz NOT NULL
      ) WITH (fillfactor = 50)`);
    await queryRunner.query(`
      COMMENT ON COLUMN budget_status_cache.parent_id IS
        'Mirror of budget_definitions.parent_id, kept by its triggers: writers walk the chain through it.'`);
    await queryRunner.query(`
      COMMENT ON COLUMN budget_status_cache.updated_at IS
        'When the cached figures were last written (usage in the window or a refresh).'`);

    await queryRunner.query(`
      CREATE TABLE budget_alert_history (
        id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        budget_id             uuid NOT NULL REFERENCES budget_definitions (id),
        alert_id              text NOT NULL,
        threshold             numeric NOT NULL,
        alert_type            text NOT NULL CHECK (alert_type IN ('actual', 'forecast')),
        period_start          timestamptz NOT NULL,
        triggered_at          timestamptz NOT NULL DEFAULT now(),
        percent_used          numeric NOT NULL,
        amount                numeric NOT NULL,
        actions               jsonb NOT NULL,
        notification_channels jsonb NOT NULL DEFAULT '[]',
        usage_record_id       uuid,
        acknowledged_at       timestamptz,
        acknowledged_by       varchar(200),
        note                  varchar(2000),
        -- Once per (budget, alert, window). period_start comes before alert_id so that the same
        -- b-tree also finds "the alerts of this window" (get_budget_status).
        CONSTRAINT budget_alert_history_once UNIQUE (budget_id, period_start, alert_id)
      )`);
    await queryRunner.query(
      `CREATE INDEX budget_alert_history_budget_time_idx ON budget_alert_history (budget_id, triggered_at DESC)`,
    );
    await queryRunner.query(`
      CREATE INDEX budget_alert_history_usage_idx ON budget_alert_history (usage_record_id)
      WHERE usage_record_id IS NOT NULL`);

    // The truth, from raw records: usage of the budget and all its descendants (deleted ones
    // too) in the window of p_budget_id containing p_at. One index range scan per descendant.
    await queryRunner.query(`
      CREATE FUNCTION calculate_budget_status(p_budget_id uuid, p_at timestamptz DEFAULT now())
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
            SELECT p_budget_id AS id, 1 AS depth
            UNION ALL
            SELECT b.id, t.depth + 1 FROM tree t JOIN budget_definitions b ON b.parent_id = t.id
            WHERE t.depth < 8
          )
          SELECT w.period_start, w.period_end, w.active,
                 coalesce(sum(s.amount), 0), coalesce(sum(s.n), 0)::bigint, max(s.last_at)
          FROM tree t
          CROSS JOIN LATERAL (
            SELECT sum(u.amount) AS amount, count(*) AS n, max(u.occurred_at) AS last_at
            FROM budget_usage_records u
            WHERE u.budget_id = t.id AND u.occurred_at >= w.period_start AND u.occurred_at < w.period_end
          ) s;
      END
      $fn$`);

    // Rewrites a cache row from the ledger. Order matters: lock the row FIRST, compute THEN in a
    // new statement. Under READ COMMITTED each statement of a volatile plpgsql function takes a
    // fresh snapshot, so any writer that held the row lock has committed by the time the lock is
    // granted and its record is in the sum; a writer that comes later waits for this lock and then
    // applies its amount to the rewritten row (its record, uncommitted now, is not in the sum).
    await queryRunner.query(`
      CREATE FUNCTION refresh_budget_status_cache(p_budget_id uuid, p_at timestamptz DEFAULT now())
      RETURNS budget_status_cache
      LANGUAGE plpgsql AS $fn$
      DECLARE
        c     record;
        fresh budget_status_cache;
      BEGIN
        PERFORM 1 FROM budget_status_cache WHERE budget_id = p_budget_id FOR UPDATE;
        IF NOT FOUND THEN
          -- Never missing by construction (created with the budget); rebuilt if someone removed it.
          INSERT INTO budget_status_cache (budget_id, period_start, period_end, updated_at)
          SELECT b.id, b.start_date, b.start_date, now() FROM budget_definitions b WHERE b.id = p_budget_id
          ON CONFLICT (budget_id) DO NOTHING;
          PERFORM 1 FROM budget_status_cache WHERE budget_id = p_budget_id FOR UPDATE;
          IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'RB404', MESSAGE = 'BUDGET_NOT_FOUND',
              DETAIL = format('Budget %s does not exist.', p_budget_id);
          END IF;
        END IF;
        SELECT * INTO c FROM calculate_budget_status(p_budget_id, p_at);
        UPDATE budget_status_cache s
           SET parent_id = b.parent_id, period_start = c.period_start, period_end = c.period_end,
               current_amount = c.current_amount, usage_count = c.usage_count,
               last_usage_at = c.last_usage_at, updated_at = now()
          FROM budget_definitions b
         WHERE s.budget_id = p_budget_id AND b.id = p_budget_id
        RETURNING s.* INTO fresh;
        RETURN fresh;
      END
      $fn$`);

    // Records the alerts of one budget that the figures now reach, once per (budget, alert,
    // window). Called with the budget's cache row locked, so evaluations of one budget are
    // serialised; ON CONFLICT DO NOTHING keeps it once even against anything else.
    await queryRunner.query(`
      CREATE FUNCTION budget_alerts_evaluate(
        p_budget_id uuid, p_alerts jsonb, p_limit numeric, p_current numeric,
        p_period_start timestamptz, p_period_end timestamptz, p_usage_record_id uuid)
      RETURNS void
      LANGUAGE plpgsql AS $fn$
      DECLARE
        elapsed_days   numeric := greatest(extract(epoch FROM now() - p_period_start), 3600) / 86400;
        remaining_days numeric := greatest(extract(epoch FROM p_period_end - now()), 0) / 86400;
        percent        numeric := p_current / p_limit * 100;
        projected_pct  numeric := (p_current + p_current / elapsed_days * remaining_days) / p_limit * 100;
      BEGIN
        INSERT INTO budget_alert_history (budget_id, alert_id, threshold, alert_type, period_start,
                                          percent_used, amount, actions, notification_channels, usage_record_id)
        SELECT p_budget_id, a.alert_id, a.threshold, a.alert_type, p_period_start,
               round(percent, 4), p_current, a.actions, a.channels, p_usage_record_id
        FROM (
          SELECT e->>'id' AS alert_id, (e->>'threshold')::numeric AS threshold,
                 coalesce(e->>'type', 'actual') AS alert_type,
                 CASE WHEN jsonb_typeof(e->'actions') = 'array' THEN e->'actions' ELSE '[]' END AS actions,
                 CASE WHEN jsonb_typeof(e->'notificationChannels') = 'array'
                      THEN e->'notificationChannels' ELSE '[]' END AS channels
          FROM jsonb_array_elements(p_alerts) e
          WHERE jsonb_typeof(e) = 'object' AND jsonb_typeof(e->'id') = 'string'
            AND jsonb_typeof(e->'threshold') = 'number'
        ) a
        WHERE (a.alert_type = 'actual' AND percent >= a.threshold)
           OR (a.alert_type = 'forecast' AND projected_pct >= a.threshold)
        ON CONFLICT ON CONSTRAINT budget_alert_history_once DO NOTHING;
      END
      $fn$`);

    // Keeps the cache in step with the ledger. A statement-level trigger (transition table), not a
    // row-level one: one multi-row INSERT updates each cache row once. A row trigger would write
    // one more version of the same cache rows per inserted record, all alive until the end of the
    // transaction, and each index lookup walks them all: 1M rows in one statement is quadratic.
    //
    // One row (every record_usage call): for the budget, then each ancestor (through the locked
    // cache row's parent_id), add the amount when the usage lies in the cached window. The UPDATE
    // runs even when it does not (adding 0): it takes the row lock, so a refresh moving the row
    // to another window is serialised with this writer (if the refresh ran first, the UPDATE
    // re-evaluates the CASE against the new window; if not, the refresh waits and then sees the
    // committed record). Locks go leaf to root, deepest first, like every other locker.
    // updated_at, last_usage_at and the alerts change only when the figures do.
    //
    // Several rows (bulk loads): under the shared hierarchy lock (no re-parenting meanwhile), lock
    // every affected cache row deepest first, then add each one's in-window sums in one pass over
    // the inserted rows. Alerts crossed by a bulk load have no usage_record_id.
    await queryRunner.query(`
      CREATE FUNCTION budget_usage_records_rollup() RETURNS trigger
      LANGUAGE plpgsql AS $fn$
      DECLARE
        r           record;
        n           bigint;
        node        uuid;
        pair_leaf   uuid[];
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
      BEGIN
        SELECT count(*) INTO n FROM inserted_rows;
        IF n = 0 THEN
          RETURN NULL;
        ELSIF n = 1 THEN
          SELECT i.id, i.budget_id, i.amount, i.occurred_at INTO r FROM inserted_rows i;
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
            ELSIF NOT in_window AND r.occurred_at >= win_end THEN
              -- The row still holds an earlier window (nobody has read it since the period
              -- rolled over): move it to the usage's window now, under the lock we hold, so the
              -- figures and the alerts of the new window start with this write. The ledger the
              -- refresh sums already includes this record.
              fresh := refresh_budget_status_cache(node, greatest(r.occurred_at, now()));
              next_node := fresh.parent_id;
              IF r.occurred_at >= fresh.period_start AND r.occurred_at < fresh.period_end
                 AND deleted IS NULL AND rules <> '[]'::jsonb THEN
                PERFORM budget_alerts_evaluate(node, rules, lim, fresh.current_amount, fresh.period_start,
                                               fresh.period_end, r.id);
              END IF;
            ELSIF in_window AND deleted IS NULL AND rules <> '[]'::jsonb THEN
              PERFORM budget_alerts_evaluate(node, rules, lim, cur_amount, win_start, win_end, r.id);
            END IF;
            hops := hops + 1;
            EXIT WHEN next_node IS NULL OR hops >= 8;
            node := next_node;
          END LOOP;
          RETURN NULL;
        END IF;

        PERFORM pg_advisory_xact_lock_shared(hashtext('budget_definitions.hierarchy'));
        WITH RECURSIVE up AS (
          SELECT l.budget_id AS leaf, l.budget_id AS node, 1 AS lvl
          FROM (SELECT DISTINCT i.budget_id FROM inserted_rows i) l
          UNION ALL
          SELECT up.leaf, b.parent_id, up.lvl + 1
          FROM up JOIN budget_definitions b ON b.id = up.node
          WHERE b.parent_id IS NOT NULL AND up.lvl < 8
        ), pairs AS (
          SELECT up.leaf, up.node, max(up.lvl) OVER (PARTITION BY up.leaf) - up.lvl AS depth FROM up
        )
        SELECT array_agg(p.leaf ORDER BY p.leaf, p.node), array_agg(p.node ORDER BY p.leaf, p.node),
               (SELECT array_agg(n.node ORDER BY n.depth DESC, n.node)
                FROM (SELECT q.node, max(q.depth) AS depth FROM pairs q GROUP BY q.node) n)
          INTO pair_leaf, pair_node, ordered
        FROM pairs p;
        -- Row locks are taken in the ORDER BY order (LockRows sits above the sort).
        PERFORM 1 FROM budget_status_cache c JOIN unnest(ordered) WITH ORDINALITY o (node, ord) ON c.budget_id = o.node
        ORDER BY o.ord FOR UPDATE OF c;
        GET DIAGNOSTICS n = ROW_COUNT;
        -- With every window locked, one pass adds each node's in-window sums.
        FOR node, cur_amount, win_start, win_end, lim, rules, deleted IN
          UPDATE budget_status_cache c SET
            current_amount = c.current_amount + s.amount, usage_count = c.usage_count + s.n,
            last_usage_at = greatest(c.last_usage_at, s.last_at), updated_at = now()
          FROM (SELECT w.budget_id, sum(i.amount) AS amount, count(*) AS n, max(i.occurred_at) AS last_at
                FROM unnest(pair_leaf, pair_node) p (leaf, node)
                JOIN budget_status_cache w ON w.budget_id = p.node
                JOIN inserted_rows i ON i.budget_id = p.leaf
                                    AND i.occurred_at >= w.period_start AND i.occurred_at < w.period_end
                GROUP BY w.budget_id) s,
               budget_definitions b
          WHERE c.budget_id = s.budget_id AND b.id = s.budget_id
          RETURNING c.budget_id, c.current_amount, c.period_start, c.period_end, b.amount, b.alerts, b.deleted_at
        LOOP
          IF deleted IS NULL AND rules <> '[]'::jsonb THEN
            PERFORM budget_alerts_evaluate(node, rules, lim, cur_amount, win_start, win_end, NULL);
          END IF;
        END LOOP;
        IF n < cardinality(ordered) THEN
          -- Missing cache rows (never the case by construction): rebuilt from the ledger.
          PERFORM refresh_budget_status_cache(o.node) FROM unnest(ordered) o (node)
          WHERE NOT EXISTS (SELECT 1 FROM budget_status_cache c WHERE c.budget_id = o.node);
        END IF;
        RETURN NULL;
      END
      $fn$`);
    await queryRunner.query(`
      CREATE TRIGGER budget_usage_records_rollup
      AFTER INSERT ON budget_usage_records REFERENCING NEW TABLE AS inserted_rows
      FOR EACH STATEMENT EXECUTE FUNCTION budget_usage_records_rollup()`);

    // A new budget gets its cache row (no usage can exist yet: it has no descendants).
    await queryRunner.query(`
      CREATE FUNCTION budget_definitions_cache_insert() RETURNS trigger
      LANGUAGE plpgsql AS $fn$
      BEGIN
        INSERT INTO budget_status_cache (budget_id, parent_id, period_start, period_end, updated_at)
        SELECT NEW.id, NEW.parent_id, w.period_start, w.period_end, now()
        FROM budget_period_window(NEW.start_date, NEW.end_date, NEW.period, NEW.custom_period_days,
                                  NEW.recurring, NEW.timezone, now()) w;
        RETURN NULL;
      END
      $fn$`);
    await queryRunner.query(`
      CREATE TRIGGER budget_definitions_cache_insert
      AFTER INSERT ON budget_definitions
      FOR EACH ROW EXECUTE FUNCTION budget_definitions_cache_insert()`);

    // A new window (start, end, period, zone...) recomputes the budget's row. A new parent moves
    // the subtree's usage from the old ancestors to the new ones: under the exclusive hierarchy
    // lock, lock the moved budget's row first (and record its new parent there), then recompute
    // every ancestor of the old and the new chain, deepest first.
    await queryRunner.query(`
      CREATE FUNCTION budget_definitions_cache_update() RETURNS trigger
      LANGUAGE plpgsql AS $fn$
      DECLARE
        ancestor uuid;
      BEGIN
        IF NEW.parent_id IS DISTINCT FROM OLD.parent_id THEN
          PERFORM pg_advisory_xact_lock(hashtext('budget_definitions.hierarchy'));
          UPDATE budget_status_cache SET parent_id = NEW.parent_id WHERE budget_id = NEW.id;
        END IF;
        IF (NEW.start_date, NEW.end_date, NEW.period, NEW.custom_period_days, NEW.recurring, NEW.timezone)
           IS DISTINCT FROM
           (OLD.start_date, OLD.end_date, OLD.period, OLD.custom_period_days, OLD.recurring, OLD.timezone) THEN
          PERFORM refresh_budget_status_cache(NEW.id);
        END IF;
        IF NEW.parent_id IS DISTINCT FROM OLD.parent_id THEN
          FOR ancestor IN
            WITH RECURSIVE up AS (
              SELECT x.chain, b.id, b.parent_id, 1 AS lvl
              FROM (VALUES (1, OLD.parent_id), (2, NEW.parent_id)) x (chain, start_id)
              JOIN budget_definitions b ON b.id = x.start_id
              UNION ALL
              SELECT up.chain, b.id, b.parent_id, up.lvl + 1
              FROM up JOIN budget_definitions b ON b.id = up.parent_id
              WHERE up.lvl < 8
            ), depth AS (
              SELECT up.id, max(up.lvl) OVER (PARTITION BY up.chain) - up.lvl AS depth FROM up
            )
            SELECT d.id FROM depth d GROUP BY d.id ORDER BY max(d.depth) DESC, d.id
          LOOP
            PERFORM refresh_budget_status_cache(ancestor);
          END LOOP;
        END IF;
        RETURN NULL;
      END
      $fn$`);
    await queryRunner.query(`
      CREATE TRIGGER budget_definitions_cache_update
      AFTER UPDATE OF start_date, end_date, period, custom_period_days, recurring, timezone, parent_id
      ON budget_definitions
      FOR EACH ROW
      WHEN ((NEW.start_date, NEW.end_date, NEW.period, NEW.custom_period_days, NEW.recurring, NEW.timezone, NEW.parent_id)
            IS DISTINCT FROM
            (OLD.start_date, OLD.end_date, OLD.period, OLD.custom_period_days, OLD.recurring, OLD.timezone, OLD.parent_id))
      EXECUTE FUNCTION budget_definitions_cache_update()`);

    // Budgets that exist already get their row.
    await queryRunner.query(`
      INSERT INTO budget_status_cache (budget_id, parent_id, period_start, period_end, updated_at)
      SELECT b.id, b.parent_id, w.period_start, w.period_end, now()
      FROM budget_definitions b
      CROSS JOIN LATERAL budget_period_window(b.start_date, b.end_date, b.period, b.custom_period_days,
                                              b.recurring, b.timezone, now()) w`);

    // The one round trip of a usage write. Idempotent on (budget, key): a replay with the same
    // request hash returns the original record (replayed = true) and counts once; another hash is
    // a 409. The INSERT ... ON CONFLICT DO NOTHING waits for a concurrent insert of the same key
    // to commit or abort, and the follow-up SELECT (a new statement, so a new snapshot under READ
    // COMMITTED) sees the committed row: no read-then-insert race.
    await queryRunner.query(`
      CREATE FUNCTION record_usage(
        p_budget_id uuid, p_amount numeric, p_currency text, p_source text DEFAULT NULL,
        p_description text DEFAULT NULL, p_model_id text DEFAULT NULL, p_user_id text DEFAULT NULL,
        p_team_id text DEFAULT NULL, p_project_id text DEFAULT NULL, p_request_id text DEFAULT NULL,
        p_idempotency_key text DEFAULT NULL, p_request_hash text DEFAULT NULL, p_metadata jsonb DEFAULT NULL,
        p_occurred_at timestamptz DEFAULT NULL, p_reservation_id uuid DEFAULT NULL)
      RETURNS TABLE (replayed boolean, id uuid, budget_id uuid, amount numeric, currency text, source text,
                     description text, model_id text, user_id text, team_id text, project_id text,
                     request_id text, idempotency_key text, reservation_id uuid, metadata jsonb,
                     occurred_at timestamptz, recorded_at timestamptz, fired_alerts jsonb)
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
               d.timezone, d.deleted_at, c.period_start AS cached_start, c.period_end AS cached_end
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
              ELSE format('occurredAt %s is outside the single period of this non-recurring budget [%s, %s).',
                          at_time, w.period_start, w.period_end) END;
        END IF;

        IF p_idempotency_key IS NULL OR in_period THEN
          INSERT INTO budget_usage_records AS u (budget_id, amount, currency, source, description, model_id,
            user_id, team_id, project_id, request_id, idempotency_key, request_hash, reservation_id,
            metadata, occurred_at)
          VALUES (p_budget_id, p_amount, p_currency, coalesce(p_source, 'api'), p_description, p_model_id,
            p_user_id, p_team_id, p_project_id, p_request_id, p_idempotency_key, p_request_hash,
            p_reservation_id, p_metadata, at_time)
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
          IF p_reservation_id IS NOT NULL THEN
            -- Settles the hold in the same transaction as the actual cost (a hold that already
            -- expired or was released counts for nothing either way; the usage is recorded).
            PERFORM close_reservation(p_reservation_id, 'settled');
          END IF;
          SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'id', h.id, 'budgetId', h.budget_id, 'alertId', h.alert_id, 'threshold', h.threshold::text,
                   'type', h.alert_type, 'percentUsed', h.percent_used::text, 'amount', h.amount::text,
                   'actions', h.actions, 'notificationChannels', h.notification_channels,
                   'periodStart', h.period_start, 'triggeredAt', h.triggered_at)
                   ORDER BY h.budget_id = p_budget_id DESC, h.threshold), '[]')
            INTO fired
          FROM budget_alert_history h WHERE h.usage_record_id = rec.id;
        END IF;

        RETURN QUERY SELECT was_replay, rec.id, rec.budget_id, rec.amount, rec.currency::text, rec.source::text,
          rec.description::text, rec.model_id::text, rec.user_id::text, rec.team_id::text, rec.project_id::text,
          rec.request_id::text, rec.idempotency_key::text, rec.reservation_id, rec.metadata, rec.occurred_at,
          rec.recorded_at, fired;
      END
      $fn$`);

    // A status read: the row of get_budget_status, or no row when the budget is missing or
    // deleted. Refreshes the cache row first when it holds another window than the one containing
    // p_at or is older than 5 minutes (locking it, then checking again, so that concurrent readers
    // of a stale row refresh it once).
    await queryRunner.query(`
      CREATE FUNCTION budget_status_read(p_budget_id uuid, p_at timestamptz)
      RETURNS TABLE (budget_id uuid, amount numeric, currency text, warning_threshold numeric,
                     critical_threshold numeric, enforcement text, period_start timestamptz,
                     period_end timestamptz, active boolean, current_amount numeric, usage_count bigint,
                     last_usage_at timestamptz, updated_at timestamptz, active_alerts jsonb,
                     alert_rules jsonb, model_policy jsonb)
      LANGUAGE plpgsql ROWS 1 AS $fn$
      #variable_conflict use_column
      DECLARE
        b record;
        w record;
        c budget_status_cache;
        is_active boolean;
      BEGIN
        SELECT d.* INTO b FROM budget_definitions d WHERE d.id = p_budget_id AND d.deleted_at IS NULL;
        IF NOT FOUND THEN
          RETURN;
        END IF;
        SELECT s.* INTO c FROM budget_status_cache s WHERE s.budget_id = p_budget_id;
        -- The common case: the cached window contains p_at, so it is the window of p_at (windows
        -- never overlap, and a change of the period fields rewrites the row) and the budget is
        -- active there. Only otherwise is the window computed.
        IF c.budget_id IS NOT NULL AND p_at >= c.period_start AND p_at < c.period_end
           AND c.updated_at >= p_at - interval '5 minutes' THEN
          is_active := true;
        ELSE
          w := budget_period_window(b.start_date, b.end_date, b.period, b.custom_period_days, b.recurring,
                                    b.timezone, p_at);
          is_active := w.active;
          IF c.budget_id IS NULL OR c.period_start <> w.period_start OR c.period_end <> w.period_end
             OR c.updated_at < p_at - interval '5 minutes' THEN
            SELECT s.* INTO c FROM budget_status_cache s WHERE s.budget_id = p_budget_id FOR UPDATE;
            IF c.budget_id IS NULL OR c.period_start <> w.period_start OR c.period_end <> w.period_end
               OR c.updated_at < p_at - interval '5 minutes' THEN
              c := refresh_budget_status_cache(p_budget_id, p_at);
            END IF;
          END IF;
        END IF;
        RETURN QUERY SELECT b.id, b.amount, b.currency::text, b.warning_threshold, b.critical_threshold,
          b.enforcement, c.period_start, c.period_end, is_active, c.current_amount, c.usage_count,
          c.last_usage_at, c.updated_at,
          (SELECT coalesce(jsonb_agg(jsonb_build_object(
                    'id', h.id, 'alertId', h.alert_id, 'threshold', h.threshold::text, 'type', h.alert_type,
                    'triggeredAt', h.triggered_at, 'percentUsed', h.percent_used::text,
                    'amount', h.amount::text, 'actions', h.actions,
                    'notificationChannels', h.notification_channels,
                    'acknowledged', h.acknowledged_at IS NOT NULL, 'acknowledgedAt', h.acknowledged_at,
                    'acknowledgedBy', h.acknowledged_by) ORDER BY h.triggered_at, h.threshold), '[]')
           FROM budget_alert_history h
           WHERE h.budget_id = p_budget_id AND h.period_start = c.period_start),
          b.alerts, b.model_policy;
      END
      $fn$`);

    // The one round trip of a status read.
    await queryRunner.query(`
      CREATE FUNCTION get_budget_status(p_budget_id uuid, p_at timestamptz DEFAULT now())
      RETURNS TABLE (budget_id uuid, amount numeric, currency text, warning_threshold numeric,
                     critical_threshold numeric, enforcement text, period_start timestamptz,
                     period_end timestamptz, active boolean, current_amount numeric, usage_count bigint,
                     last_usage_at timestamptz, updated_at timestamptz, active_alerts jsonb,
                     alert_rules jsonb, model_policy jsonb)
      LANGUAGE plpgsql AS $fn$
      BEGIN
        RETURN QUERY SELECT * FROM budget_status_read(p_budget_id, p_at);
        IF NOT FOUND THEN
          RAISE EXCEPTION USING ERRCODE = 'RB404', MESSAGE = 'BUDGET_NOT_FOUND',
            DETAIL = format('Budget %s does not exist or was deleted.', p_budget_id);
        END IF;
      END
      $fn$`);

    // Many statuses in one round trip (hierarchy, multi-scope checks). Missing or deleted budgets
    // are left out. Rows come tree by tree (by root id), deepest budget first within a tree: the
    // order in which stale rows get locked, as every multi-tree locker does; map them by budget_id.
    await queryRunner.query(`
      CREATE FUNCTION get_budget_statuses(p_budget_ids uuid[], p_at timestamptz DEFAULT now())
      RETURNS TABLE (budget_id uuid, amount numeric, currency text, warning_threshold numeric,
                     critical_threshold numeric, enforcement text, period_start timestamptz,
                     period_end timestamptz, active boolean, current_amount numeric, usage_count bigint,
                     last_usage_at timestamptz, updated_at timestamptz, active_alerts jsonb,
                     alert_rules jsonb, model_policy jsonb)
      LANGUAGE plpgsql ROWS 8 AS $fn$
      #variable_conflict use_column
      DECLARE
        one uuid;
      BEGIN
        FOR one IN
          SELECT a.id FROM budget_ancestry(p_budget_ids) a WHERE a.id = ANY (p_budget_ids)
          GROUP BY a.id, a.root, a.depth ORDER BY a.root, a.depth DESC, a.id
        LOOP
          RETURN QUERY SELECT * FROM budget_status_read(one, p_at);
        END LOOP;
      END
      $fn$`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP FUNCTION get_budget_statuses(uuid[], timestamptz)`);
    await queryRunner.query(`DROP FUNCTION get_budget_status(uuid, timestamptz)`);
    await queryRunner.query(`DROP FUNCTION budget_status_read(uuid, timestamptz)`);
    await queryRunner.query(
      `DROP FUNCTION record_usage(uuid, numeric, text, text, text, text, text, text, text, text, text, text, jsonb, timestamptz, uuid)`,
    );
    await queryRunner.query(`DROP TRIGGER budget_definitions_cache_update ON budget_definitions`);
    await queryRunner.query(`DROP FUNCTION budget_definitions_cache_update()`);
    await queryRunner.query(`DROP TRIGGER budget_definitions_cache_insert ON budget_definitions`);
    await queryRunner.query(`DROP FUNCTION budget_definitions_cache_insert()`);
    await queryRunner.query(`DROP TRIGGER budget_usage_records_rollup ON budget_usage_records`);
    await queryRunner.query(`DROP FUNCTION budget_usage_records_rollup()`);
    await queryRunner.query(
      `DROP FUNCTION budget_alerts_evaluate(uuid, jsonb, numeric, numeric, timestamptz, timestamptz, uuid)`,
    );
    await queryRunner.query(`DROP FUNCTION refresh_budget_status_cache(uuid, timestamptz)`);
    await queryRunner.query(`DROP FUNCTION calculate_budget_status(uuid, timestamptz)`);
    await queryRunner.query(`DROP TABLE budget_alert_history`);
    await queryRunner.query(`DROP TABLE budget_status_cache`);
    await queryRunner.query(`DROP INDEX budget_definitions_parent_all_idx`);
    await queryRunner.query(`DROP TABLE budget_usage_records`);
  }
}
