import { MigrationInterface, QueryRunner } from 'typeorm';
import { frozenDefinition } from '../src/database/frozen-definition';
import { TokenPricedUsage1764308000000 } from './1764308000000-TokenPricedUsage';

/**
 * The ledger partitioned by month (SPEC §17, issue 19; docs/scale.md "Partitions, keys and retention").
 *
 * - `budget_usage_records` and `budget_usage_attributions` become declarative partitioned tables,
 *   RANGE (occurred_at), one partition per UTC month (`<table>_pYYYYMM`) and a DEFAULT partition
 *   each, so a usage in a month without a partition is stored, never refused. Each is rebuilt from
 *   the existing table's own definition (LIKE, then its indexes, constraints, triggers and comments
 *   read back from the catalog), so columns added by earlier migrations come along. The ledger's
 *   primary key becomes (id, occurred_at): a partitioned table's unique keys include its partition key.
 * - Idempotency stays global per budget: UNIQUE (budget_id, idempotency_key) cannot exist on the
 *   partitioned ledger, so `budget_usage_keys` keys it. record_usage and record_usage_batch claim a
 *   key there before writing the row (a concurrent request with the same key waits for the first,
 *   then replays it) and replay by reading the row the key points at.
 * - The attribution rows lose their foreign key to the ledger: a foreign key to a partitioned table
 *   would stop a month from being dropped. The ledger trigger is their only writer, in the same
 *   statement as the rows they point at, and they are partitioned and dropped by the same months.
 * - Functions the service's maintenance calls: `budget_usage_partitions_ensure` (months ahead, and
 *   any month with rows in a default partition), `budget_usage_partitions_drop_expired` and
 *   `budget_usage_keys_purge` (USAGE_RETENTION_MONTHS), under one transaction-level advisory lock.
 *
 * Downtime: the rebuild copies both tables under an ACCESS EXCLUSIVE lock, in this migration's one
 * transaction; usage writes and ledger reads wait for it (measured in docs/scale.md: about
 * 40 s per million rows on the shared 2-core test machine).
 */
export class PartitionedLedger1764310000000 implements MigrationInterface {
  name = 'PartitionedLedger1764310000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    // The only foreign key into the ledger; a partition referenced by one could not be dropped.
    await queryRunner.query(`ALTER TABLE budget_usage_attributions DROP CONSTRAINT budget_usage_attributions_usage_id_fkey`);
    await queryRunner.query(`
      CREATE TABLE budget_usage_keys (
        budget_id        uuid NOT NULL REFERENCES budget_definitions (id),
        idempotency_key  varchar(200) NOT NULL,
        usage_id         uuid NOT NULL,
        occurred_at      timestamptz NOT NULL,
        request_hash     text,
        recorded_at      timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT budget_usage_keys_pkey PRIMARY KEY (budget_id, idempotency_key)
      )`);
    // Retention finds the keys of dropped months by this range.
    await queryRunner.query(`CREATE INDEX budget_usage_keys_occurred_idx ON budget_usage_keys (occurred_at)`);
    await queryRunner.query(`
      COMMENT ON TABLE budget_usage_keys IS
        'The idempotency keys of budget_usage_records, one per budget and key whatever month the row lies in; kept after retention drops the row''s month for the replay horizon (USAGE_RETENTION_MONTHS).'`);
    for (const statement of PARTITION_FUNCTIONS) await queryRunner.query(statement);

    await rebuildTable(queryRunner, 'budget_usage_records', {
      partitioned: true,
      primaryKey: 'PRIMARY KEY (id, occurred_at)',
      without: ['budget_usage_records_idempotency_key'],
      copyingAlso: (rows) => `
        INSERT INTO budget_usage_keys (budget_id, idempotency_key, usage_id, occurred_at, request_hash, recorded_at)
        SELECT budget_id, idempotency_key, id, occurred_at, request_hash, recorded_at
        FROM ${rows} WHERE idempotency_key IS NOT NULL`,
    });
    await rebuildTable(queryRunner, 'budget_usage_attributions', { partitioned: true });

    await queryRunner.query(await editedDefinition('record_usage', RECORD_USAGE_EDITS));
    await queryRunner.query(await editedDefinition('record_usage_batch', RECORD_USAGE_BATCH_EDITS));
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    const tokenPriced = new TokenPricedUsage1764308000000();
    await queryRunner.query(await frozenDefinition(tokenPriced, 'record_usage'));
    await queryRunner.query(await frozenDefinition(tokenPriced, 'record_usage_batch'));
    await rebuildTable(queryRunner, 'budget_usage_attributions', { partitioned: false });
    await rebuildTable(queryRunner, 'budget_usage_records', {
      partitioned: false,
      primaryKey: 'PRIMARY KEY (id)',
      adding: [`CONSTRAINT budget_usage_records_idempotency_key UNIQUE (budget_id, idempotency_key)`],
    });
    await queryRunner.query(`
      ALTER TABLE budget_usage_attributions ADD CONSTRAINT budget_usage_attributions_usage_id_fkey
        FOREIGN KEY (usage_id) REFERENCES budget_usage_records (id)`);
    await queryRunner.query(`DROP TABLE budget_usage_keys`);
    await queryRunner.query(`DROP FUNCTION budget_usage_keys_purge(timestamptz, integer, integer)`);
    await queryRunner.query(`DROP FUNCTION budget_usage_partitions_drop_expired(timestamptz, integer, interval)`);
    await queryRunner.query(`DROP FUNCTION budget_usage_retention_boundary(timestamptz, integer)`);
    await queryRunner.query(`DROP FUNCTION budget_usage_partitions_ensure(timestamptz, integer, interval)`);
    await queryRunner.query(`DROP FUNCTION budget_usage_partition_add(text, timestamptz)`);
  }
}

interface TableShape {
  /** Partitioned by month on occurred_at, or a plain table (down()). */
  partitioned: boolean;
  /** The primary key's definition, when it changes. */
  primaryKey?: string;
  /** Constraints (by name) that do not come along. */
  without?: string[];
  /** Constraints added to the rebuilt table. */
  adding?: string[];
  /** A statement run on each range of old rows as it is copied (`rows`: a subquery of them). */
  copyingAlso?: (rows: string) => string;
}

/** How the table is defined now, read from the catalog (names as `public.<table>`). */
interface TableDefinition {
  constraints: { name: string; type: string; definition: string }[];
  indexes: { name: string; definition: string }[];
  triggers: string[];
  comment: string | null;
  /** Functions taking or returning the table's row type: dropped with the old table, created again. */
  functions: { definition: string; comment: string | null; signature: string }[];
}

async function tableDefinition(queryRunner: QueryRunner, table: string): Promise<TableDefinition> {
  const constraints = await queryRunner.query(
    `SELECT conname AS name, contype AS type, pg_get_constraintdef(oid) AS definition
     FROM pg_constraint WHERE conrelid = $1::regclass AND contype IN ('p', 'u', 'f', 'x') ORDER BY contype, conname`,
    [table],
  );
  // Indexes that back no constraint (those come with their constraint); a partitioned index reads
  // "ON ONLY", which the rebuilt table must not (its partitions get the index too).
  const indexes = await queryRunner.query(
    `SELECT c.relname AS name, replace(pg_get_indexdef(i.indexrelid), ' ON ONLY ', ' ON ') AS definition
     FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
     WHERE i.indrelid = $1::regclass
       AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid)
     ORDER BY c.relname`,
    [table],
  );
  const triggers = await queryRunner.query(
    `SELECT pg_get_triggerdef(oid) AS definition FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal ORDER BY tgname`,
    [table],
  );
  const [{ comment }] = await queryRunner.query(`SELECT obj_description($1::regclass, 'pg_class') AS comment`, [table]);
  const functions = await queryRunner.query(
    `SELECT DISTINCT pg_get_functiondef(p.oid) AS definition, obj_description(p.oid, 'pg_proc') AS comment,
            p.oid::regprocedure::text AS signature
     FROM pg_depend d JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
     WHERE d.refclassid = 'pg_type'::regclass AND d.refobjid = (SELECT reltype FROM pg_class WHERE oid = $1::regclass)`,
    [table],
  );
  return { constraints, indexes, triggers: triggers.map((row: { definition: string }) => row.definition), comment, functions };
}

/** Pages of the old table copied per statement: each statement stays well inside the statement timeout. */
const COPY_PAGES = 4096;

/**
 * Rebuilds `table` in the shape asked for, with its rows: a new table LIKE the old one (columns,
 * defaults, checks, comments: whatever earlier migrations gave it) with the old one's primary key,
 * other constraints and indexes, read from the catalog; the rows copied in page ranges (bounded
 * statements); then its triggers (so the copy fires none), comment and the functions of its row
 * type, created again.
 */
async function rebuildTable(queryRunner: QueryRunner, table: string, shape: TableShape): Promise<void> {
  const before = await tableDefinition(queryRunner, table);
  const old = `${table}_old`;
  for (const fn of before.functions) await queryRunner.query(`DROP FUNCTION ${fn.signature}`);
  await queryRunner.query(`ALTER TABLE ${table} RENAME TO ${old}`);
  // The new table's indexes take the old names.
  for (const constraint of before.constraints.filter((c) => c.type !== 'f')) {
    await queryRunner.query(`ALTER TABLE ${old} RENAME CONSTRAINT ${constraint.name} TO ${constraint.name}_old`);
  }
  for (const index of before.indexes) await queryRunner.query(`ALTER INDEX ${index.name} RENAME TO ${index.name}_old`);

  await queryRunner.query(`
    CREATE TABLE ${table} (LIKE ${old} INCLUDING ALL EXCLUDING INDEXES)
    ${shape.partitioned ? 'PARTITION BY RANGE (occurred_at)' : ''}`);
  if (shape.partitioned) {
    await queryRunner.query(`CREATE TABLE ${table}_default PARTITION OF ${table} DEFAULT`);
    // Every month that holds rows, and the months ahead, so the copy leaves the default partition
    // empty. The range is read per budget, through the (budget_id, occurred_at, …) key both tables have.
    await queryRunner.query(
      `WITH span AS (
         SELECT min(x.first) AS first, max(x.last) AS last
         FROM budget_definitions d
         CROSS JOIN LATERAL (SELECT min(o.occurred_at) AS first, max(o.occurred_at) AS last FROM ${old} o WHERE o.budget_id = d.id) x
       )
       SELECT budget_usage_partition_add($1, g.month AT TIME ZONE 'UTC')
       FROM span, generate_series(date_trunc('month', least(span.first, now()) AT TIME ZONE 'UTC'),
                                  date_trunc('month', greatest(span.last, now()) AT TIME ZONE 'UTC') + interval '${MONTHS_AHEAD} months',
                                  interval '1 month') g (month)`,
      [table],
    );
  }
  for (const constraint of before.constraints) {
    if (shape.without?.includes(constraint.name)) continue;
    const definition = constraint.type === 'p' && shape.primaryKey ? shape.primaryKey : constraint.definition;
    await queryRunner.query(`ALTER TABLE ${table} ADD CONSTRAINT ${constraint.name} ${definition}`);
  }
  for (const constraint of shape.adding ?? []) await queryRunner.query(`ALTER TABLE ${table} ADD ${constraint}`);
  for (const index of before.indexes) await queryRunner.query(index.definition);

  const leaves = await queryRunner.query(
    `SELECT relid::regclass::text AS name, pg_relation_size(relid) / current_setting('block_size')::bigint AS pages
     FROM (SELECT relid FROM pg_partition_tree($1::regclass) WHERE isleaf UNION SELECT $1::regclass) t
     WHERE pg_relation_size(relid) > 0`,
    [old],
  );
  for (const leaf of leaves) {
    for (let page = 0; page < Number(leaf.pages); page += COPY_PAGES) {
      const rows = `(SELECT * FROM ${leaf.name} WHERE ctid >= '(${page},0)'::tid AND ctid < '(${page + COPY_PAGES},0)'::tid) r`;
      await queryRunner.query(`INSERT INTO ${table} SELECT * FROM ${rows}`);
      if (shape.copyingAlso) await queryRunner.query(shape.copyingAlso(rows));
    }
  }
  await queryRunner.query(`DROP TABLE ${old}`);

  for (const trigger of before.triggers) await queryRunner.query(trigger);
  if (before.comment !== null) {
    await queryRunner.query(`COMMENT ON TABLE ${table} IS ${quoteLiteral(before.comment)}`);
  }
  for (const fn of before.functions) {
    await queryRunner.query(fn.definition);
    if (fn.comment !== null) await queryRunner.query(`COMMENT ON FUNCTION ${fn.signature} IS ${quoteLiteral(fn.comment)}`);
  }
  // Plans right after the migration: autovacuum analyzes partitions, never a partitioned parent.
  await queryRunner.query(`ANALYZE ${table}`);
}

const quoteLiteral = (text: string) => `'${text.replace(/'/g, "''")}'`;

/** Months created ahead of the current one, here and by the service's maintenance. */
const MONTHS_AHEAD = 3;

/** An edit of a frozen function text: `from` must occur exactly once. */
interface Edit {
  what: string;
  from: string;
  to: string;
}

/**
 * The function as the TokenPricedUsage migration defined it, with the edits applied. Only the
 * idempotency parts change; each edit names what it does, and fails loudly if the text it edits
 * is not there exactly once.
 */
async function editedDefinition(name: string, edits: Edit[]): Promise<string> {
  let text = await frozenDefinition(new TokenPricedUsage1764308000000(), name);
  for (const edit of edits) {
    const count = text.split(edit.from).length - 1;
    if (count !== 1) throw new Error(`${name}: the text of "${edit.what}" occurs ${count} times, expected once`);
    text = text.replace(edit.from, () => edit.to);
  }
  return text;
}

const EXPIRED_DETAIL = (key: string, id: string, at: string) =>
  `format('The idempotency key "%s" recorded usage %s at %s; retention has since removed that month, and the usage is not recorded again.', ${key}, ${id}, ${at})`;

const RECORD_USAGE_EDITS: Edit[] = [
  {
    what: 'declare the new row id and the key row',
    from: `        at_time    timestamptz := coalesce(p_occurred_at, now());\n`,
    to: `        at_time    timestamptz := coalesce(p_occurred_at, now());
        new_id     uuid := gen_random_uuid();
        claimed    boolean := false;
        claim      budget_usage_keys;\n`,
  },
  {
    what: 'a retry outside the window looks for its key in the key table',
    from: `             SELECT 1 FROM budget_usage_records u
             WHERE u.budget_id = p_budget_id AND u.idempotency_key = p_idempotency_key)) THEN`,
    to: `             SELECT 1 FROM budget_usage_keys k
             WHERE k.budget_id = p_budget_id AND k.idempotency_key = p_idempotency_key)) THEN`,
  },
  {
    what: 'claim the key before writing the row',
    from: `        IF in_period AND amount_used IS NOT NULL THEN
          INSERT INTO budget_usage_records AS u (budget_id,`,
    to: `        IF p_idempotency_key IS NOT NULL AND in_period AND amount_used IS NOT NULL THEN
          -- The key is claimed before the row is written: a concurrent request with the same key
          -- waits here for the first to commit, then replays it.
          INSERT INTO budget_usage_keys (budget_id, idempotency_key, usage_id, occurred_at, request_hash)
          VALUES (p_budget_id, p_idempotency_key, new_id, at_time, p_request_hash)
          ON CONFLICT DO NOTHING;
          claimed := FOUND;
        END IF;
        IF in_period AND amount_used IS NOT NULL AND (p_idempotency_key IS NULL OR claimed) THEN
          INSERT INTO budget_usage_records AS u (id, budget_id,`,
  },
  {
    what: 'the row takes the id the key points at',
    from: `          VALUES (p_budget_id, amount_used,`,
    to: `          VALUES (new_id, p_budget_id, amount_used,`,
  },
  {
    what: 'no unique key on the partitioned ledger',
    from: `          ON CONFLICT ON CONSTRAINT budget_usage_records_idempotency_key DO NOTHING\n`,
    to: ``,
  },
  {
    what: 'a replay reads the key, then the row it points at',
    from: `          SELECT u.* INTO rec FROM budget_usage_records u
          WHERE u.budget_id = p_budget_id AND u.idempotency_key = p_idempotency_key;
          IF NOT FOUND THEN`,
    to: `          SELECT k.* INTO claim FROM budget_usage_keys k
          WHERE k.budget_id = p_budget_id AND k.idempotency_key = p_idempotency_key;
          IF NOT FOUND THEN`,
  },
  {
    what: 'compare the hash the key holds; a row retention removed is not recorded again',
    from: `          IF rec.request_hash IS DISTINCT FROM p_request_hash THEN
            RAISE EXCEPTION USING ERRCODE = 'RB409', MESSAGE = 'IDEMPOTENCY_KEY_REUSED',
              DETAIL = format('The idempotency key "%s" was already used on this budget for a different request.',
                              p_idempotency_key);
          END IF;`,
    to: `          IF claim.request_hash IS DISTINCT FROM p_request_hash THEN
            RAISE EXCEPTION USING ERRCODE = 'RB409', MESSAGE = 'IDEMPOTENCY_KEY_REUSED',
              DETAIL = format('The idempotency key "%s" was already used on this budget for a different request.',
                              p_idempotency_key);
          END IF;
          SELECT u.* INTO rec FROM budget_usage_records u WHERE u.id = claim.usage_id AND u.occurred_at = claim.occurred_at;
          IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'RB409', MESSAGE = 'USAGE_RECORD_EXPIRED',
              DETAIL = ${EXPIRED_DETAIL('p_idempotency_key', 'claim.usage_id', 'claim.occurred_at')};
          END IF;`,
  },
];

/** A batch line whose key is recorded, for the same request, but whose row retention removed. */
const BATCH_EXPIRED = `r.id IS NOT NULL AND u.id IS NULL AND r.request_hash IS NOT DISTINCT FROM i.request_hash`;

const RECORD_USAGE_BATCH_EDITS: Edit[] = [
  {
    what: 'claim the keys before writing the rows',
    from: `, inserted AS (
          INSERT INTO budget_usage_records AS u (id,`,
    to: `, claimed AS (
          -- Keys are claimed before the rows are written (in key order, so two batches sharing keys
          -- wait for each other rather than deadlock); a key recorded before is not claimed again.
          -- The condition is the insert's below, less the key.
          INSERT INTO budget_usage_keys AS k (budget_id, idempotency_key, usage_id, occurred_at, request_hash)
          SELECT p_budget_id, i.idempotency_key, i.id, i.occurred_at, i.request_hash
          FROM items i
          WHERE i.currency = b.currency::text AND i.in_period AND i.accepted AND NOT i.mismatch AND i.amount_used IS NOT NULL
            AND i.idempotency_key IS NOT NULL AND i.nth = 1
          ORDER BY i.idempotency_key
          ON CONFLICT DO NOTHING
          RETURNING k.usage_id
        ), inserted AS (
          INSERT INTO budget_usage_records AS u (id,`,
  },
  {
    what: 'a keyed row goes in only when its key was claimed',
    from: `            AND (i.idempotency_key IS NULL OR i.nth = 1)
          ON CONFLICT ON CONSTRAINT budget_usage_records_idempotency_key DO NOTHING\n`,
    to: `            AND (i.idempotency_key IS NULL OR i.id IN (SELECT claimed.usage_id FROM claimed))\n`,
  },
  {
    what: 'answer: an expired replay is a 409',
    from: `               CASE WHEN i.id = ANY (new_ids) THEN 201\n`,
    to: `               CASE WHEN i.id = ANY (new_ids) THEN 201
                    WHEN ${BATCH_EXPIRED} THEN 409\n`,
  },
  {
    what: 'answer: the expired replay\'s code',
    from: `               CASE WHEN i.id = ANY (new_ids) OR (r.id IS NOT NULL AND r.request_hash IS NOT DISTINCT FROM i.request_hash) THEN NULL
                    WHEN r.id IS NOT NULL THEN 'IDEMPOTENCY_KEY_REUSED'`,
    to: `               CASE WHEN ${BATCH_EXPIRED} THEN 'USAGE_RECORD_EXPIRED'
                    WHEN i.id = ANY (new_ids) OR (r.id IS NOT NULL AND r.request_hash IS NOT DISTINCT FROM i.request_hash) THEN NULL
                    WHEN r.id IS NOT NULL THEN 'IDEMPOTENCY_KEY_REUSED'`,
  },
  {
    what: 'answer: the expired replay\'s detail',
    from: `               CASE WHEN i.id = ANY (new_ids) OR (r.id IS NOT NULL AND r.request_hash IS NOT DISTINCT FROM i.request_hash) THEN NULL
                    WHEN r.id IS NOT NULL THEN
                      format(`,
    to: `               CASE WHEN ${BATCH_EXPIRED} THEN ${EXPIRED_DETAIL('i.idempotency_key', 'r.id', 'r.occurred_at')}
                    WHEN i.id = ANY (new_ids) OR (r.id IS NOT NULL AND r.request_hash IS NOT DISTINCT FROM i.request_hash) THEN NULL
                    WHEN r.id IS NOT NULL THEN
                      format(`,
  },
  {
    what: 'answer: an expired replay is not replayed',
    from: `               NOT (i.id = ANY (new_ids)) AND r.id IS NOT NULL AND r.request_hash IS NOT DISTINCT FROM i.request_hash,`,
    to: `               NOT (i.id = ANY (new_ids)) AND r.id IS NOT NULL AND r.request_hash IS NOT DISTINCT FROM i.request_hash
                 AND u.id IS NOT NULL,`,
  },
  {
    what: 'answer: a replay reads the key, then the row it points at',
    from: `        LEFT JOIN budget_usage_records r
          ON NOT (i.id = ANY (new_ids)) AND r.budget_id = p_budget_id AND r.idempotency_key = i.idempotency_key
        LEFT JOIN budget_usage_records u
          ON u.id = CASE WHEN i.id = ANY (new_ids) THEN i.id
                         WHEN r.request_hash IS NOT DISTINCT FROM i.request_hash THEN r.id END`,
    to: `        LEFT JOIN (SELECT k.usage_id AS id, k.occurred_at, k.request_hash, k.idempotency_key
                   FROM budget_usage_keys k WHERE k.budget_id = p_budget_id) r
          ON NOT (i.id = ANY (new_ids)) AND r.idempotency_key = i.idempotency_key
        LEFT JOIN budget_usage_records u
          ON u.id = CASE WHEN i.id = ANY (new_ids) THEN i.id
                         WHEN r.request_hash IS NOT DISTINCT FROM i.request_hash THEN r.id END
         AND u.occurred_at = CASE WHEN i.id = ANY (new_ids) THEN i.occurred_at ELSE r.occurred_at END`,
  },
];

/** The month [start, end) in UTC containing `at`, as SQL expressions. */
const MONTH_START = (at: string) => `(date_trunc('month', ${at} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')`;

const PARTITION_FUNCTIONS = [
  `
  CREATE FUNCTION budget_usage_partition_add(p_parent text, p_month timestamptz) RETURNS boolean
  LANGUAGE plpgsql AS $fn$
  DECLARE
    month_start timestamptz := ${MONTH_START('p_month')};
    month_end   timestamptz := (date_trunc('month', p_month AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
    part        text := p_parent || '_p' || to_char(p_month AT TIME ZONE 'UTC', 'YYYYMM');
  BEGIN
    IF to_regclass(part) IS NOT NULL THEN
      RETURN false;
    END IF;
    -- Built beside the parent, then attached: CREATE TABLE … PARTITION OF would lock the parent
    -- against every reader and writer, ATTACH takes a lock they pass (SHARE UPDATE EXCLUSIVE).
    -- Rows of the month stored in the default partition meanwhile move first: PostgreSQL refuses
    -- to attach a range the default partition holds rows of. Moving them fires no insert trigger
    -- on the ledger (they are counted already).
    EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part, p_parent);
    EXECUTE format('WITH moved AS (DELETE FROM %I WHERE occurred_at >= $1 AND occurred_at < $2 RETURNING *)
                    INSERT INTO %I SELECT * FROM moved', p_parent || '_default', part)
      USING month_start, month_end;
    EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', p_parent, part, month_start, month_end);
    RETURN true;
  END
  $fn$`,
  `
  COMMENT ON FUNCTION budget_usage_partition_add(text, timestamptz) IS
    'Creates the UTC month''s partition of budget_usage_records or budget_usage_attributions, moving that month''s rows out of the default partition; false if it exists.'`,
  `
  CREATE FUNCTION budget_usage_partitions_ensure(p_at timestamptz, p_months_ahead integer,
                                                 p_lock_timeout interval DEFAULT '1 second')
  RETURNS text[] LANGUAGE plpgsql AS $fn$
  DECLARE
    created text[] := '{}';
    parent  text;
    m       timestamptz;
  BEGIN
    -- One instance at a time; the others wait, then find the months there.
    PERFORM pg_advisory_xact_lock(hashtext('budget_usage_records.partitions'));
    -- A lock not granted soon fails the run (the next one retries) rather than queue writers behind it.
    PERFORM set_config('lock_timeout', (extract(epoch FROM p_lock_timeout) * 1000)::bigint::text, true);
    FOREACH parent IN ARRAY ARRAY['budget_usage_records', 'budget_usage_attributions'] LOOP
      FOR m IN
        SELECT (date_trunc('month', p_at AT TIME ZONE 'UTC') + make_interval(months => k)) AT TIME ZONE 'UTC'
        FROM generate_series(0, p_months_ahead) k
        UNION
        -- Months that reached the default partition (no partition yet when they were written).
        SELECT DISTINCT date_trunc('month', d.occurred_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
        FROM budget_usage_records_default d WHERE parent = 'budget_usage_records'
        UNION
        SELECT DISTINCT date_trunc('month', d.occurred_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
        FROM budget_usage_attributions_default d WHERE parent = 'budget_usage_attributions'
        ORDER BY 1
      LOOP
        IF budget_usage_partition_add(parent, m) THEN
          created := created || (parent || '_p' || to_char(m AT TIME ZONE 'UTC', 'YYYYMM'));
        END IF;
      END LOOP;
    END LOOP;
    RETURN created;
  END
  $fn$`,
  `
  COMMENT ON FUNCTION budget_usage_partitions_ensure(timestamptz, integer, interval) IS
    'Creates the month partitions of the ledger and its attributions from the month of p_at to p_months_ahead after it, and for every month with rows in a default partition; returns the partitions created.'`,
  `
  CREATE FUNCTION budget_usage_retention_boundary(p_at timestamptz, p_months integer) RETURNS timestamptz
  LANGUAGE sql STABLE AS $fn$
    SELECT least(
      (date_trunc('month', p_at AT TIME ZONE 'UTC') - make_interval(months => p_months)) AT TIME ZONE 'UTC',
      (SELECT min(w.period_start)
       FROM budget_definitions d
       CROSS JOIN LATERAL budget_period_window(d.start_date, d.end_date, d.period, d.custom_period_days,
                                               d.recurring, d.timezone, p_at) w
       WHERE d.deleted_at IS NULL AND w.active))
  $fn$`,
  `
  COMMENT ON FUNCTION budget_usage_retention_boundary(timestamptz, integer) IS
    'Usage before this instant may be removed: p_months whole UTC months before the month of p_at, or earlier if a live budget''s window open at p_at starts earlier (an annual or custom window keeps its months).'`,
  `
  CREATE FUNCTION budget_usage_partitions_drop_expired(p_at timestamptz, p_months integer,
                                                       p_lock_timeout interval DEFAULT '1 second')
  RETURNS text[] LANGUAGE plpgsql AS $fn$
  DECLARE
    boundary timestamptz;
    dropped  text[] := '{}';
    part     record;
  BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('budget_usage_records.partitions'));
    -- DETACH (without CONCURRENTLY, which a table with a default partition cannot use) waits for
    -- the ledger's readers and writers in flight and holds the ones after it until this commits:
    -- a lock not granted soon fails the run (the next one retries) instead of stalling writers.
    PERFORM set_config('lock_timeout', (extract(epoch FROM p_lock_timeout) * 1000)::bigint::text, true);
    boundary := budget_usage_retention_boundary(p_at, p_months);
    FOR part IN
      SELECT c.relname AS name, p.relname AS parent
      FROM pg_inherits h
      JOIN pg_class c ON c.oid = h.inhrelid
      JOIN pg_class p ON p.oid = h.inhparent
      WHERE p.relname IN ('budget_usage_records', 'budget_usage_attributions')
        AND p.relnamespace = 'public'::regnamespace
        AND c.relname ~ '_p[0-9]{6}$'
        AND (to_date(right(c.relname, 6), 'YYYYMM') + interval '1 month') AT TIME ZONE 'UTC' <= boundary
      ORDER BY c.relname
    LOOP
      EXECUTE format('ALTER TABLE %I DETACH PARTITION %I', part.parent, part.name);
      EXECUTE format('DROP TABLE %I', part.name);
      dropped := dropped || part.name::text;
    END LOOP;
    -- Rows of expired months written after their partition was gone (a late usage of a closed window).
    DELETE FROM budget_usage_records_default WHERE occurred_at < boundary;
    DELETE FROM budget_usage_attributions_default WHERE occurred_at < boundary;
    RETURN dropped;
  END
  $fn$`,
  `
  COMMENT ON FUNCTION budget_usage_partitions_drop_expired(timestamptz, integer, interval) IS
    'USAGE_RETENTION_MONTHS: drops the month partitions of the ledger and its attributions that end at or before budget_usage_retention_boundary, and the default partitions'' rows before it; returns the partitions dropped.'`,
  `
  CREATE FUNCTION budget_usage_keys_purge(p_at timestamptz, p_months integer, p_limit integer) RETURNS integer
  LANGUAGE sql AS $fn$
    WITH doomed AS (
      SELECT k.budget_id, k.idempotency_key
      FROM budget_usage_keys k
      WHERE k.occurred_at < budget_usage_retention_boundary(p_at, p_months)
        AND k.recorded_at < (date_trunc('month', p_at AT TIME ZONE 'UTC') - make_interval(months => p_months)) AT TIME ZONE 'UTC'
        AND NOT EXISTS (SELECT 1 FROM budget_usage_records u WHERE u.id = k.usage_id AND u.occurred_at = k.occurred_at)
      ORDER BY k.occurred_at
      LIMIT p_limit
    ), deleted AS (
      DELETE FROM budget_usage_keys k USING doomed d
      WHERE k.budget_id = d.budget_id AND k.idempotency_key = d.idempotency_key
      RETURNING 1
    )
    SELECT count(*)::integer FROM deleted
  $fn$`,
  `
  COMMENT ON FUNCTION budget_usage_keys_purge(timestamptz, integer, integer) IS
    'Removes up to p_limit idempotency keys whose row retention removed and that were recorded more than p_months months ago (the replay horizon); returns how many.'`,
];
