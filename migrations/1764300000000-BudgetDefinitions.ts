import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Budgets, their hierarchy guard and the period-window function.
 *
 * Errors raised by the database use SQLSTATEs of the form `RB<http status>` with the stable
 * error code as the message and a sentence for people as the detail; the problem+json filter
 * maps them (see src/common/errors/postgres-errors.ts).
 */
export class BudgetDefinitions1764300000000 implements MigrationInterface {
  name = 'BudgetDefinitions1764300000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE budget_definitions (
        id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        name               varchar(200) NOT NULL CHECK (length(btrim(name)) > 0),
        description        varchar(2000),
        scope_type         text NOT NULL CHECK (scope_type IN ('organization', 'team', 'user', 'project')),
        scope_id           varchar(200) NOT NULL CHECK (scope_id ~ '^[A-Za-z0-9._:@-]{1,200}$'),
        parent_id          uuid REFERENCES budget_definitions (id),
        amount             numeric(24, 10) NOT NULL CHECK (amount > 0 AND amount <= 10000000000000),
        currency           char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
        period             text NOT NULL
                           CHECK (period IN ('daily', 'weekly', 'monthly', 'quarterly', 'annual', 'custom')),
        custom_period_days integer CHECK (custom_period_days BETWEEN 1 AND 3660),
        start_date         timestamptz NOT NULL,
        end_date           timestamptz,
        recurring          boolean NOT NULL DEFAULT true,
        timezone           text NOT NULL DEFAULT 'UTC',
        enforcement        text NOT NULL DEFAULT 'hard' CHECK (enforcement IN ('hard', 'soft')),
        warning_threshold  numeric(5, 2) NOT NULL DEFAULT 75,
        critical_threshold numeric(5, 2) NOT NULL DEFAULT 90,
        alerts             jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(alerts) = 'array'),
        model_policy       jsonb CHECK (model_policy IS NULL OR jsonb_typeof(model_policy) = 'object'),
        metadata           jsonb CHECK (metadata IS NULL OR jsonb_typeof(metadata) = 'object'),
        created_by         varchar(200) NOT NULL,
        created_at         timestamptz NOT NULL DEFAULT now(),
        updated_at         timestamptz NOT NULL DEFAULT now(),
        version            integer NOT NULL DEFAULT 1,
        deleted_at         timestamptz,
        CONSTRAINT budget_custom_days_iff_custom CHECK ((period = 'custom') = (custom_period_days IS NOT NULL)),
        CONSTRAINT budget_end_after_start CHECK (end_date IS NULL OR end_date > start_date),
        CONSTRAINT budget_thresholds_ordered
          CHECK (warning_threshold > 0 AND warning_threshold < critical_threshold AND critical_threshold < 100),
        CONSTRAINT budget_not_own_parent CHECK (parent_id IS DISTINCT FROM id)
      )`);
    await queryRunner.query(
      `CREATE INDEX budget_definitions_scope_idx ON budget_definitions (scope_type, scope_id) WHERE deleted_at IS NULL`,
    );
    await queryRunner.query(
      `CREATE INDEX budget_definitions_parent_idx ON budget_definitions (parent_id) WHERE deleted_at IS NULL`,
    );
    await queryRunner.query(
      `CREATE INDEX budget_definitions_list_idx ON budget_definitions (created_at, id) WHERE deleted_at IS NULL`,
    );

    // The one place period arithmetic lives. Window k is [anchor + k*P, anchor + (k+1)*P), added on
    // local wall-clock time in the budget's zone, always from the anchor (so Jan 31 monthly gives
    // Feb 28/29 then Mar 31, and local midnight stays local midnight across DST changes). The last
    // window is clipped to end_date. Outside the active range the nearest window is reported with
    // active = false: the first window before the start, the last one after the end.
    await queryRunner.query(`
      CREATE FUNCTION budget_period_window(
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
            period_start := CASE WHEN step_months IS NOT NULL
              THEN (anchor + make_interval(months => (k * step_months)::integer))
              ELSE (anchor + make_interval(days => (k * step_days)::integer)) END AT TIME ZONE p_timezone;
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

    // The budgets and all their ancestors, each with its tree's root and its depth below it: the
    // order (root, depth descending, id) is the one global order in which every writer that
    // touches several budgets locks their cache rows. Walked upwards one primary-key lookup per
    // level (at most 8), so it stays an index lookup however many budgets exist.
    await queryRunner.query(`
      CREATE FUNCTION budget_ancestry(p_ids uuid[])
      RETURNS TABLE (id uuid, root uuid, depth integer)
      LANGUAGE plpgsql STABLE ROWS 8 AS $fn$
      DECLARE
        start  uuid;
        node   uuid;
        parent uuid;
        path   uuid[];
      BEGIN
        FOREACH start IN ARRAY coalesce(p_ids, '{}') LOOP
          path := ARRAY[start];
          node := start;
          FOR hop IN 1..8 LOOP
            SELECT d.parent_id INTO parent FROM budget_definitions d WHERE d.id = node;
            EXIT WHEN parent IS NULL;
            path := path || parent;
            node := parent;
          END LOOP;
          RETURN QUERY SELECT path[k], path[cardinality(path)], cardinality(path) - k
                       FROM generate_subscripts(path, 1) k;
        END LOOP;
      END
      $fn$`);

    // Hierarchy rules, held by the database so that concurrent requests cannot break them:
    // same currency as the parent, amount within the parent's, no cycles, at most 8 levels, no
    // live children under a deleted budget. A child locks its parent row (FOR SHARE) and
    // re-parenting takes an exclusive advisory lock, so each check sees every committed change
    // that could invalidate it.
    await queryRunner.query(`
      CREATE FUNCTION budget_definitions_hierarchy_guard() RETURNS trigger
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
          IF parent.currency <> NEW.currency THEN
            RAISE EXCEPTION USING ERRCODE = 'RB422', MESSAGE = 'PARENT_CURRENCY_MISMATCH',
              DETAIL = format('A child budget must use its parent''s currency (%s), not %s.', parent.currency, NEW.currency);
          END IF;
          IF NEW.amount > parent.amount THEN
            RAISE EXCEPTION USING ERRCODE = 'RB422', MESSAGE = 'AMOUNT_EXCEEDS_PARENT',
              DETAIL = format('The amount %s is larger than the parent budget''s amount %s.',
                              trim_scale(NEW.amount), trim_scale(parent.amount));
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
    await queryRunner.query(`
      CREATE TRIGGER budget_definitions_hierarchy_guard
      BEFORE INSERT OR UPDATE OF parent_id, amount, currency, deleted_at ON budget_definitions
      FOR EACH ROW EXECUTE FUNCTION budget_definitions_hierarchy_guard()`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TRIGGER budget_definitions_hierarchy_guard ON budget_definitions`);
    await queryRunner.query(`DROP FUNCTION budget_definitions_hierarchy_guard()`);
    await queryRunner.query(`DROP FUNCTION budget_ancestry(uuid[])`);
    await queryRunner.query(
      `DROP FUNCTION budget_period_window(timestamptz, timestamptz, text, integer, boolean, text, timestamptz)`,
    );
    await queryRunner.query(`DROP TABLE budget_definitions`);
  }
}
