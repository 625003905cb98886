import { MigrationInterface, QueryRunner } from 'typeorm';
import { BudgetDefinitions1764300000000 } from './1764300000000-BudgetDefinitions';
import { UsageLedger1764300100000 } from './1764300100000-UsageLedger';
import { UsageBatch1764300300000 } from './1764300300000-UsageBatch';
import { PlaceReservation1764300400000 } from './1764300400000-PlaceReservation';

/**
 * Issue 11, the rules the database holds (SPEC §12.1):
 * - a budget's currency cannot change while it counts usage or holds reservations (CURRENCY_LOCKED),
 *   serialised with usage writers and reservers on the budget's cache row;
 * - the cache row holds the window containing now; a usage of another window (clock skew past the
 *   window end, or a late record) has its alerts evaluated against the total of its own window;
 * - window 0 starts at startDate exactly, even when that local time occurs twice (DST fall-back);
 * - roll-up has no depth cut-off (deleted or moved descendants may lie deeper than 8 levels), and
 *   visits each budget once, so even a loop among deleted budgets terminates and counts once;
 * - a usage settles only a reservation placed on its budget or an ancestor (RESERVATION_MISMATCH);
 * - a cycle is reported before the currency and amount rules of the hierarchy;
 * - budgets that are not active at the instant take no part in a reservation, currency rule included.
 *
 * down() restores each replaced function from the frozen migration that created it, verbatim.
 */
export class Hardening1764301000000 implements MigrationInterface {
  name = 'Hardening1764301000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    // Window 0 is [startDate, ...) itself; only later windows go through local wall-clock time.
    // (Converting the anchor's local time back to an instant picks one of the two instants of a
    // repeated hour, which may not be startDate.)
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION budget_period_window(
        p_start timestamptz, p_end timestamptz, p_period text, p_custom_days integer,
        p_recurring boolean, p_timezone text, p_at timestamptz,
        OUT period_start timestamptz, OUT period_end timestamptz, OUT active boolean)
      LANGUAGE plpgsql STABLE PARALLEL SAFE AS $fn$
      DECLARE
        step_months integer;
        step_days   integer;
        anchor      timestamp := p_start AT TIME ZONE p_timezone;
        probe       timestamptz := p_at;
        k           bigint := 0;
        next_start  timestamptz;
      BEGIN
        CASE p_period
          WHEN 'daily'     THEN step_days := 1;
          WHEN 'weekly'    THEN step_days := 7;
          WHEN 'custom'    THEN step_days := p_custom_days;
          WHEN 'monthly'   THEN step_months := 1;
          WHEN 'quarterly' THEN step_months := 3;
          WHEN 'annual'    THEN step_months := 12;
          ELSE RAISE EXCEPTION USING ERRCODE = 'RB400', MESSAGE = 'INVALID_PERIOD',
                                     DETAIL = format('Unknown period "%s".', p_period);
        END CASE;
        IF p_period = 'custom' AND (p_custom_days IS NULL OR p_custom_days < 1) THEN
          RAISE EXCEPTION USING ERRCODE = 'RB400', MESSAGE = 'INVALID_PERIOD',
                                DETAIL = 'A custom period needs customPeriodDays of at least 1.';
        END IF;
        IF p_end IS NOT NULL AND probe >= p_end THEN
          probe := p_end - interval '1 microsecond';
        END IF;

        IF p_recurring AND probe > p_start THEN
          -- An estimate of k from local wall-clock time, corrected by the loops below.
          IF step_months IS NOT NULL THEN
            k := ((extract(year FROM probe AT TIME ZONE p_timezone) - extract(year FROM anchor)) * 12
                 + extract(month FROM probe AT TIME ZONE p_timezone) - extract(month FROM anchor))::bigint
                 / step_months;
          ELSE
            k := floor(extract(epoch FROM (probe AT TIME ZONE p_timezone) - anchor) / (step_days * 86400.0))::bigint;
          END IF;
          k := greatest(k, 0);
          LOOP
            period_start := CASE
              WHEN k = 0 THEN p_start
              WHEN step_months IS NOT NULL
              THEN (anchor + make_interval(months => (k * step_months)::integer)) AT TIME ZONE p_timezone
              ELSE (anchor + make_interval(days => (k * step_days)::integer)) AT TIME ZONE p_timezone END;
            EXIT WHEN period_start <= probe OR k = 0;
            k := k - 1;
          END LOOP;
          LOOP
            next_start := CASE WHEN step_months IS NOT NULL
              THEN (anchor + make_interval(months => ((k + 1) * step_months)::integer))
              ELSE (anchor + make_interval(days => ((k + 1) * step_days)::integer)) END AT TIME ZONE p_timezone;
            EXIT WHEN next_start > probe;
            k := k + 1;
            period_start := next_start;
          END LOOP;
        ELSE
          period_start := p_start;
          next_start := CASE WHEN step_months IS NOT NULL
            THEN (anchor + make_interval(months => step_months))
            ELSE (anchor + make_interval(days => step_days)) END AT TIME ZONE p_timezone;
        END IF;

        period_end := CASE WHEN p_end IS NOT NULL AND p_end < next_start THEN p_end ELSE next_start END;
        active := p_at >= period_start AND p_at < period_end;
      END
      $fn$`);

    // The truth, from raw records: usage of the budget and all its descendants (deleted ones
    // too) in the window of p_budget_id containing p_at. No depth cut-off: a deleted subtree is
    // not counted by the depth rule, so after a move it may lie deeper than 8 levels. UNION (not
    // UNION ALL) visits each budget once, so a loop (possible only among deleted budgets, which
    // the hierarchy guard does not look at) ends and counts each record once.
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

    // The hierarchy rules, the cycle first: a parent that is the budget itself or one of its
    // descendants is a cycle whatever the amounts and currencies say.
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION budget_definitions_hierarchy_guard() RETURNS trigger
      LANGUAGE plpgsql AS $fn$
      DECLARE
        parent          budget_definitions%ROWTYPE;
        parent_depth    integer;
        subtree_height  integer;
        conflicting     text;
      BEGIN
        IF TG_OP = 'UPDATE' AND NEW.deleted_at IS NOT NULL AND OLD.deleted_at IS NULL THEN
          IF EXISTS (SELECT 1 FROM budget_definitions WHERE parent_id = NEW.id AND deleted_at IS NULL) THEN
            RAISE EXCEPTION USING ERRCODE = 'RB409', MESSAGE = 'BUDGET_HAS_CHILDREN',
              DETAIL = 'This budget still has live child budgets; delete or move them first.';
          END IF;
          RETURN NEW;
        END IF;
        IF NEW.deleted_at IS NOT NULL THEN
          RETURN NEW;
        END IF;

        IF TG_OP = 'UPDATE' AND NEW.parent_id IS DISTINCT FROM OLD.parent_id THEN
          PERFORM pg_advisory_xact_lock(hashtext('budget_definitions.hierarchy'));
        ELSIF NEW.parent_id IS NOT NULL THEN
          PERFORM pg_advisory_xact_lock_shared(hashtext('budget_definitions.hierarchy'));
        END IF;

        IF NEW.parent_id IS NOT NULL THEN
          SELECT * INTO parent FROM budget_definitions WHERE id = NEW.parent_id FOR SHARE;
          IF NOT FOUND OR parent.deleted_at IS NOT NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'RB422', MESSAGE = 'PARENT_NOT_FOUND',
              DETAIL = format('Parent budget %s does not exist or was deleted.', NEW.parent_id);
          END IF;
          WITH RECURSIVE chain AS (
            SELECT b.id, b.parent_id, 1 AS depth FROM budget_definitions b WHERE b.id = NEW.parent_id
            UNION ALL
            SELECT b.id, b.parent_id, c.depth + 1 FROM budget_definitions b JOIN chain c ON b.id = c.parent_id
            WHERE c.depth <= 9
          )
          SELECT max(depth), bool_or(id = NEW.id)::text INTO parent_depth, conflicting FROM chain;
          IF conflicting = 'true' THEN
            RAISE EXCEPTION USING ERRCODE = 'RB409', MESSAGE = 'HIERARCHY_CYCLE',
              DETAIL = 'That parent is this budget or one of its descendants; budgets cannot form a cycle.';
          END IF;
          IF parent.currency <> NEW.currency THEN
            RAISE EXCEPTION USING ERRCODE = 'RB422', MESSAGE = 'PARENT_CURRENCY_MISMATCH',
              DETAIL = format('A child budget must use its parent''s currency (%s), not %s.', parent.currency, NEW.currency);
          END IF;
          IF NEW.amount > parent.amount THEN
            RAISE EXCEPTION USING ERRCODE = 'RB422', MESSAGE = 'AMOUNT_EXCEEDS_PARENT',
              DETAIL = format('The amount %s is larger than the parent budget''s amount %s.',
                              trim_scale(NEW.amount), trim_scale(parent.amount));
          END IF;
        ELSE
          parent_depth := 0;
        END IF;

        IF TG_OP = 'UPDATE' THEN
          WITH RECURSIVE subtree AS (
            SELECT b.id, 1 AS height FROM budget_definitions b WHERE b.id = NEW.id
            UNION ALL
            SELECT b.id, s.height + 1 FROM budget_definitions b JOIN subtree s ON b.parent_id = s.id
            WHERE b.deleted_at IS NULL AND s.height <= 9
          )
          SELECT max(height) INTO subtree_height FROM subtree;
          IF NEW.amount IS DISTINCT FROM OLD.amount OR NEW.currency IS DISTINCT FROM OLD.currency THEN
            SELECT string_agg(c.id::text, ', ') INTO conflicting FROM budget_definitions c
            WHERE c.parent_id = NEW.id AND c.deleted_at IS NULL
              AND (c.amount > NEW.amount OR c.currency <> NEW.currency);
            IF conflicting IS NOT NULL THEN
              RAISE EXCEPTION USING ERRCODE = 'RB422', MESSAGE = 'CHILDREN_CONFLICT',
                DETAIL = format('Child budgets %s would exceed the new amount or differ from the new currency.', conflicting);
            END IF;
          END IF;
        ELSE
          subtree_height := 1;
        END IF;
        IF parent_depth + subtree_height > 8 THEN
          RAISE EXCEPTION USING ERRCODE = 'RB422', MESSAGE = 'HIERARCHY_TOO_DEEP',
            DETAIL = 'A budget hierarchy has at most 8 levels (a root and 7 generations below it).';
        END IF;
        RETURN NEW;
      END
      $fn$`);

    // The currency of a budget that counts usage (its own or a descendant's, deleted ones too) or
    // holds an open reservation cannot change: the ledger would be relabelled. Race-free with the
    // writers: every usage writer and reserver of this budget holds its cache row while it writes,
    // so this waits for them, then looks in a new statement and sees each one committed; one that
    // comes after takes the row once this commits and re-reads the currency under that lock
    // (budget_usage_records_rollup, place_reservation), so it is refused rather than relabelled.
    await queryRunner.query(`
      CREATE FUNCTION budget_definitions_currency_lock() RETURNS trigger
      LANGUAGE plpgsql AS $fn$
      BEGIN
        PERFORM 1 FROM budget_status_cache c WHERE c.budget_id = NEW.id FOR UPDATE;
        IF EXISTS (
             WITH RECURSIVE tree AS (
               SELECT NEW.id AS id
               UNION
               SELECT b.id FROM tree t JOIN budget_definitions b ON b.parent_id = t.id)
             SELECT 1 FROM tree JOIN budget_usage_records u ON u.budget_id = tree.id) THEN
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
    await queryRunner.query(`
      CREATE TRIGGER budget_definitions_currency_lock
      BEFORE UPDATE OF currency ON budget_definitions
      FOR EACH ROW WHEN (NEW.currency IS DISTINCT FROM OLD.currency)
      EXECUTE FUNCTION budget_definitions_currency_lock()`);

    // The usage trigger. What changed (see the UsageLedger migration for the rest):
    // - the first cache row locked is the usage's own budget; under that lock a new statement
    //   re-reads its currency, so a usage validated before a concurrent currency change committed
    //   is refused instead of recorded under the new label;
    // - a cache row always ends up holding the window containing now: it moves only when that
    //   window is not the one it holds (never to the window of a usage dated in the future);
    // - a usage outside that window (up to 5 minutes of clock skew past its end, or a late record
    //   of an earlier window) is evaluated against its own window's total, computed from the
    //   ledger. The common case (usage inside the cached window, which holds now) costs what it did.
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION budget_usage_records_rollup() RETURNS trigger
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
        def         budget_definitions;
        win         record;
        at_time     timestamptz;
      BEGIN
        SELECT count(*) INTO n FROM inserted_rows;
        IF n = 0 THEN
          RETURN NULL;
        ELSIF n = 1 THEN
          SELECT i.id, i.budget_id, i.amount, i.currency, i.occurred_at INTO r FROM inserted_rows i;
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
        -- Under the locks, the records' budgets still count in the currency the records carry.
        IF EXISTS (SELECT 1 FROM (SELECT DISTINCT i.budget_id, i.currency FROM inserted_rows i) i
                   JOIN budget_definitions x ON x.id = i.budget_id WHERE x.currency <> i.currency) THEN
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
        -- Records outside their budgets' cached windows: each other window of each budget is
        -- evaluated once, against its total from the ledger.
        FOR node, lim, rules, at_time IN
          SELECT b.id, b.amount, b.alerts, min(i.occurred_at)
          FROM unnest(pair_leaf, pair_node) p (leaf, node)
          JOIN budget_status_cache w ON w.budget_id = p.node
          JOIN inserted_rows i ON i.budget_id = p.leaf
                              AND NOT (i.occurred_at >= w.period_start AND i.occurred_at < w.period_end)
          JOIN budget_definitions b ON b.id = p.node AND b.deleted_at IS NULL AND b.alerts <> '[]'::jsonb
          CROSS JOIN LATERAL budget_period_window(b.start_date, b.end_date, b.period, b.custom_period_days,
                                                  b.recurring, b.timezone, i.occurred_at) pw
          WHERE pw.active
          GROUP BY b.id, pw.period_start
        LOOP
          SELECT s.current_amount, s.period_start, s.period_end INTO cur_amount, win_start, win_end
          FROM calculate_budget_status(node, at_time) s;
          PERFORM budget_alerts_evaluate(node, rules, lim, cur_amount, win_start, win_end, NULL);
        END LOOP;
        IF n < cardinality(ordered) THEN
          -- Missing cache rows (never the case by construction): rebuilt from the ledger.
          PERFORM refresh_budget_status_cache(o.node) FROM unnest(ordered) o (node)
          WHERE NOT EXISTS (SELECT 1 FROM budget_status_cache c WHERE c.budget_id = o.node);
        END IF;
        RETURN NULL;
      END
      $fn$`);

    // The budgets a reservation was placed for: the ones named and all their ancestors, whether or
    // not they were active then (only active ones get a hold). A usage may settle it only on one
    // of them or below one.
    await queryRunner.query(`ALTER TABLE budget_reservations ADD COLUMN budget_ids uuid[]`);
    await queryRunner.query(`
      COMMENT ON COLUMN budget_reservations.budget_ids IS
        'The budgets it was placed for (named ones and their ancestors); a usage settles it only on one of them or a descendant.'`);
    await queryRunner.query(`
      UPDATE budget_reservations r SET budget_ids = h.ids
      FROM (SELECT reservation_id, array_agg(budget_id ORDER BY budget_id) AS ids
            FROM budget_reservation_holds GROUP BY reservation_id) h
      WHERE h.reservation_id = r.id`);

    // What changed from the PlaceReservation migration: a member not active at p_at takes no
    // part (no currency rule, no limit, no hold), and the reservation keeps its members.
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION place_reservation(
        p_budget_ids uuid[], p_scope_types text[], p_scope_ids text[], p_amount numeric, p_currency text,
        p_ttl_seconds integer, p_model_id text, p_request_id text, p_created_by text, p_at timestamptz DEFAULT now())
      RETURNS TABLE (granted boolean, reservation_id uuid, expires_at timestamptz, blocking_budget_id uuid)
      LANGUAGE plpgsql AS $fn$
      DECLARE
        members  uuid[];
        holding  uuid[] := '{}';
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
      $fn$`);

    // What changed from the UsageLedger migration: a reservation placed for other budgets than
    // this one and its ancestors is refused (RESERVATION_MISMATCH, the insert undone with the
    // statement), and only a non-recurring budget's refusal speaks of its single period.
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION record_usage(
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
              WHEN NOT b.recurring THEN
                format('occurredAt %s is outside the single period of this non-recurring budget [%s, %s).',
                       at_time, w.period_start, w.period_end)
              ELSE format('occurredAt %s is outside every window of this budget (the nearest is [%s, %s)).',
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

    // What changed from the UsageBatch migration: a record carrying a reservation placed for other
    // budgets than this one and its ancestors is refused alone (409 RESERVATION_MISMATCH).
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION record_usage_batch(p_budget_id uuid, p_records jsonb)
      RETURNS TABLE (ordinal integer, status integer, error_code text, error_detail text, replayed boolean,
                     id uuid, budget_id uuid, amount numeric, currency text, source text, description text,
                     model_id text, user_id text, team_id text, project_id text, request_id text,
                     reservation_id uuid, metadata jsonb, occurred_at timestamptz, recorded_at timestamptz,
                     fired_alerts jsonb)
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
        -- a reservation of this budget or an ancestor (if any), and the first of its idempotency
        -- key in the batch. A key recorded before is skipped by ON CONFLICT and answered below.
        WITH raw AS (
          SELECT (e.item->>'id')::uuid AS id, (e.item->>'amount')::numeric AS amount, e.item->>'currency' AS currency,
                 coalesce(e.item->>'source', 'api') AS source, e.item->>'description' AS description,
                 e.item->>'modelId' AS model_id, e.item->>'userId' AS user_id, e.item->>'teamId' AS team_id,
                 e.item->>'projectId' AS project_id, e.item->>'requestId' AS request_id,
                 e.item->>'idempotencyKey' AS idempotency_key, e.item->>'requestHash' AS request_hash,
                 (e.item->>'reservationId')::uuid AS reservation_id, nullif(e.item->'metadata', 'null'::jsonb) AS metadata,
                 coalesce((e.item->>'occurredAt')::timestamptz, now()) AS occurred_at,
                 row_number() OVER (PARTITION BY e.item->>'idempotencyKey' ORDER BY e.ord) AS nth
          FROM jsonb_array_elements(p_records) WITH ORDINALITY e (item, ord)
        ), items AS (
          -- Usage inside the budget's cached (now current) window needs no period arithmetic.
          SELECT r.*, CASE WHEN r.occurred_at >= cached_start AND r.occurred_at < cached_end THEN true
                           ELSE (budget_period_window(b.start_date, b.end_date, b.period, b.custom_period_days,
                                                      b.recurring, b.timezone, r.occurred_at)).active END AS in_period,
                 r.reservation_id IS NOT NULL AND EXISTS (
                   SELECT 1 FROM budget_reservations x
                   WHERE x.id = r.reservation_id AND x.budget_ids IS NOT NULL AND NOT x.budget_ids && chain) AS mismatch
          FROM raw r
        ), inserted AS (
          INSERT INTO budget_usage_records AS u (id, budget_id, amount, currency, source, description, model_id,
            user_id, team_id, project_id, request_id, idempotency_key, request_hash, reservation_id, metadata,
            occurred_at)
          SELECT i.id, p_budget_id, i.amount, i.currency, i.source, i.description, i.model_id, i.user_id, i.team_id,
                 i.project_id, i.request_id, i.idempotency_key, i.request_hash, i.reservation_id, i.metadata,
                 i.occurred_at
          FROM items i
          WHERE i.currency = b.currency::text AND i.in_period AND NOT i.mismatch
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
        WITH raw AS (
          SELECT (e.ord - 1)::integer AS ordinal, (e.item->>'id')::uuid AS id, e.item->>'currency' AS currency,
                 e.item->>'idempotencyKey' AS idempotency_key, e.item->>'requestHash' AS request_hash,
                 (e.item->>'reservationId')::uuid AS reservation_id,
                 coalesce((e.item->>'occurredAt')::timestamptz, now()) AS occurred_at
          FROM jsonb_array_elements(p_records) WITH ORDINALITY e (item, ord)
        ), items AS (
          -- Usage inside the budget's cached (now current) window needs no period arithmetic.
          SELECT r.*, CASE WHEN r.occurred_at >= cached_start AND r.occurred_at < cached_end THEN true
                           ELSE (budget_period_window(b.start_date, b.end_date, b.period, b.custom_period_days,
                                                      b.recurring, b.timezone, r.occurred_at)).active END AS in_period,
                 r.reservation_id IS NOT NULL AND EXISTS (
                   SELECT 1 FROM budget_reservations x
                   WHERE x.id = r.reservation_id AND x.budget_ids IS NOT NULL AND NOT x.budget_ids && chain) AS mismatch
          FROM raw r
        )
        SELECT i.ordinal,
               CASE WHEN i.id = ANY (new_ids) THEN 201
                    WHEN r.id IS NOT NULL AND r.request_hash IS NOT DISTINCT FROM i.request_hash THEN 200
                    WHEN r.id IS NOT NULL THEN 409
                    WHEN i.currency <> b.currency::text OR NOT i.in_period THEN 422
                    ELSE 409 END,
               CASE WHEN i.id = ANY (new_ids) OR (r.id IS NOT NULL AND r.request_hash IS NOT DISTINCT FROM i.request_hash) THEN NULL
                    WHEN r.id IS NOT NULL THEN 'IDEMPOTENCY_KEY_REUSED'
                    WHEN i.currency <> b.currency::text THEN 'CURRENCY_MISMATCH'
                    WHEN NOT i.in_period THEN 'OUTSIDE_BUDGET_PERIOD'
                    WHEN i.mismatch THEN 'RESERVATION_MISMATCH'
                    ELSE 'IDEMPOTENCY_KEY_IN_FLIGHT' END,
               CASE WHEN i.id = ANY (new_ids) OR (r.id IS NOT NULL AND r.request_hash IS NOT DISTINCT FROM i.request_hash) THEN NULL
                    WHEN r.id IS NOT NULL THEN
                      format('The idempotency key "%s" was already used on this budget for a different request.', i.idempotency_key)
                    WHEN i.currency <> b.currency::text THEN
                      format('This budget counts in %s; the usage is in %s.', b.currency, i.currency)
                    WHEN NOT i.in_period THEN format('occurredAt %s is outside every period of this budget.', i.occurred_at)
                    WHEN i.mismatch THEN
                      format('Reservation %s was placed for other budgets; a usage on budget %s settles only a reservation of that budget or one of its ancestors.',
                             i.reservation_id, p_budget_id)
                    ELSE format('A concurrent request is recording the idempotency key "%s"; retry to get its record.', i.idempotency_key) END,
               NOT (i.id = ANY (new_ids)) AND r.id IS NOT NULL AND r.request_hash IS NOT DISTINCT FROM i.request_hash,
               u.id, p_budget_id, u.amount, u.currency::text, u.source::text, u.description::text, u.model_id::text,
               u.user_id::text, u.team_id::text, u.project_id::text, u.request_id::text, u.reservation_id, u.metadata,
               u.occurred_at, u.recorded_at,
               CASE WHEN i.ordinal = 0 THEN fired ELSE '[]'::jsonb END
        FROM items i
        LEFT JOIN budget_usage_records r
          ON NOT (i.id = ANY (new_ids)) AND r.budget_id = p_budget_id AND r.idempotency_key = i.idempotency_key
        LEFT JOIN budget_usage_records u
          ON u.id = CASE WHEN i.id = ANY (new_ids) THEN i.id
                         WHEN r.request_hash IS NOT DISTINCT FROM i.request_hash THEN r.id END
        ORDER BY i.ordinal;
      END
      $fn$`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    const restore = async (migration: MigrationInterface, name: string) =>
      queryRunner.query(await frozenDefinition(migration, name));
    await restore(new UsageBatch1764300300000(), 'record_usage_batch');
    await restore(new UsageLedger1764300100000(), 'record_usage');
    await restore(new PlaceReservation1764300400000(), 'place_reservation');
    await queryRunner.query(`ALTER TABLE budget_reservations DROP COLUMN budget_ids`);
    await restore(new UsageLedger1764300100000(), 'budget_usage_records_rollup');
    await queryRunner.query(`DROP TRIGGER budget_definitions_currency_lock ON budget_definitions`);
    await queryRunner.query(`DROP FUNCTION budget_definitions_currency_lock()`);
    await restore(new BudgetDefinitions1764300000000(), 'budget_definitions_hierarchy_guard');
    await restore(new UsageLedger1764300100000(), 'calculate_budget_status');
    await restore(new BudgetDefinitions1764300000000(), 'budget_period_window');
  }
}

/**
 * The statement with which a frozen migration created function `name`, as CREATE OR REPLACE: read
 * from that migration's own up() (recorded, not run), so down() restores the text verbatim.
 */
async function frozenDefinition(migration: MigrationInterface, name: string): Promise<string> {
  const statements: string[] = [];
  await migration.up({ query: async (sql: string) => void statements.push(sql) } as unknown as QueryRunner);
  const found = statements.filter((sql) => new RegExp(`^\\s*CREATE FUNCTION ${name}\\(`).test(sql));
  if (found.length !== 1) throw new Error(`${migration.constructor.name} does not create function ${name} exactly once`);
  return found[0].replace('CREATE FUNCTION', 'CREATE OR REPLACE FUNCTION');
}
