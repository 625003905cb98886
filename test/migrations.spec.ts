import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { dataSourceOptions, MIGRATIONS } from '../src/database/data-source.options';
import { databaseUrlFor, testDbPrefix } from './setup/test-database';

/**
 * Issue 2 acceptance 3: the migrations run on an empty database, `down()` really reverses `up()`
 * (step by step, compared with the catalog), undoing them all leaves an empty schema, and they run
 * again.
 */

/** Everything the migrations could leave behind, as sortable strings. */
const CATALOG = `
  SELECT 'relation ' || c.relkind::text || ' ' || c.relname AS item
    FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace
  UNION ALL
  SELECT 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
         || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
         || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
    FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid AND c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
   WHERE a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)
    FROM pg_constraint WHERE connamespace = 'public'::regnamespace
  UNION ALL
  SELECT 'index ' || indexrelid::regclass::text || ' ' || pg_get_indexdef(indexrelid)
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid AND c.relnamespace = 'public'::regnamespace
  UNION ALL
  SELECT 'function ' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ') '
         || md5(CASE WHEN p.prokind IN ('f', 'p') THEN pg_get_functiondef(p.oid) ELSE p.prosrc END)
    FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
  UNION ALL
  SELECT 'trigger ' || tgrelid::regclass::text || ' ' || tgname || ' ' || md5(pg_get_triggerdef(oid))
    FROM pg_trigger WHERE NOT tgisinternal
  UNION ALL
  SELECT 'type ' || typname || ' ' || typtype::text FROM pg_type
   WHERE typnamespace = 'public'::regnamespace AND typtype IN ('e', 'd', 'r', 'm')
  UNION ALL
  SELECT 'extension ' || extname FROM pg_extension
  UNION ALL
  SELECT 'schema ' || nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'
  UNION ALL
  SELECT 'event trigger ' || evtname FROM pg_event_trigger
  UNION ALL
  SELECT 'policy ' || polname FROM pg_policy
  ORDER BY 1`;

describe('migrations on a fresh database', () => {
  let serverUrl: string;
  let databaseName: string;
  let url: string;
  let client: Client;
  /** The catalog of the new database before anything touched it. */
  let pristine: string[];
  /** The catalog with every migration applied. */
  let full: string[];

  const catalog = async (): Promise<string[]> => (await client.query(CATALOG)).rows.map((r) => r.item as string);

  /** A short-lived DataSource with the service's options (optionally only the first `count` migrations). */
  const withDataSource = async <T>(run: (ds: DataSource) => Promise<T>, count = MIGRATIONS.length): Promise<T> => {
    const ds = new DataSource({
      ...dataSourceOptions({ url, poolSize: 2 }),
      migrations: MIGRATIONS.slice(0, count),
      logging: ['error'],
    });
    await ds.initialize();
    try {
      return await run(ds);
    } finally {
      await ds.destroy();
    }
  };

  const applied = async () => Number((await client.query('SELECT count(*)::int AS n FROM migrations')).rows[0].n);

  beforeAll(async () => {
    serverUrl = process.env.TEST_PG_SERVER_URL!;
    expect(serverUrl).toBeDefined();
    // The prefix lets the global teardown drop it on a shared server.
    databaseName = `${testDbPrefix()}mig_${randomBytes(4).toString('hex')}`;
    const admin = new Client({ connectionString: serverUrl });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE "${databaseName}"`);
    } finally {
      await admin.end();
    }
    url = databaseUrlFor(serverUrl, databaseName);
    client = new Client({ connectionString: url });
    await client.connect();
    pristine = await catalog();
  });

  afterAll(async () => {
    await client?.end();
    const admin = new Client({ connectionString: serverUrl });
    await admin.connect();
    try {
      await admin.query(`DROP DATABASE IF EXISTS "${databaseName}" WITH (FORCE)`);
    } finally {
      await admin.end();
    }
  });

  it('there are migrations, in timestamp order', () => {
    expect(MIGRATIONS.length).toBeGreaterThan(0);
    const stamps = MIGRATIONS.map((m) => Number(/(\d{13})$/.exec(m.name)?.[1]));
    expect(stamps.every((s) => Number.isFinite(s))).toBe(true);
    expect([...stamps].sort((a, b) => a - b)).toEqual(stamps);
  });

  it('up one by one, down one by one: each down() restores the schema its up() started from', async () => {
    expect(pristine.filter((item) => /^(relation|function|trigger)/.test(item))).toEqual([]);

    // The migrations table itself, with nothing applied.
    await withDataSource((ds) => ds.runMigrations({ transaction: 'each' }), 0);
    const before: string[][] = [await catalog()];

    for (let count = 1; count <= MIGRATIONS.length; count++) {
      const ran = await withDataSource((ds) => ds.runMigrations({ transaction: 'each' }), count);
      expect(ran.map((m) => m.name)).toEqual([MIGRATIONS[count - 1].name]);
      before.push(await catalog());
      expect(before[count]).not.toEqual(before[count - 1]);
    }
    expect(await applied()).toBe(MIGRATIONS.length);
    full = await catalog();
    expect(full).toEqual(expect.arrayContaining(['relation r budget_definitions']));
    expect(full.some((item) => item.startsWith('function budget_period_window('))).toBe(true);
    expect(full.some((item) => item.startsWith('trigger budget_definitions budget_definitions_hierarchy_guard '))).toBe(true);

    for (let count = MIGRATIONS.length; count >= 1; count--) {
      await withDataSource((ds) => ds.undoLastMigration({ transaction: 'each' }));
      expect(await applied()).toBe(count - 1);
      // down() of migration `count` leaves exactly what was there before its up().
      expect(await catalog()).toEqual(before[count - 1]);
    }
  });

  it('with every migration undone, no table but migrations, no function and no trigger is left', async () => {
    expect(await applied()).toBe(0);
    const { rows: tables } = await client.query(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`,
    );
    expect(tables.map((r) => r.table_name)).toEqual(['migrations']);
    const { rows: triggers } = await client.query(`SELECT tgname FROM pg_trigger WHERE NOT tgisinternal`);
    expect(triggers).toEqual([]);
    const { rows: budgetFunctions } = await client.query(
      `SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace AND proname NOT LIKE 'uuid\\_%'`,
    );
    expect(budgetFunctions).toEqual([]);
  });

  it('with every migration undone, the schema is exactly the pristine one plus the migrations table', async () => {
    const leftover = (await catalog()).filter(
      (item) => !pristine.includes(item) && !/\bmigrations\b|\bPK_[0-9a-f]+\b|migrations_id_seq/.test(item),
    );
    expect(leftover).toEqual([]);
    const { rows: functions } = await client.query(`SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace`);
    expect(functions).toEqual([]);
  });

  it('runs again, all at once like start-up, to the same schema', async () => {
    const again = await withDataSource((ds) => ds.runMigrations({ transaction: 'each' }));
    expect(again.map((m) => m.name)).toEqual(MIGRATIONS.map((m) => m.name));
    expect(await catalog()).toEqual(full);
    expect(await withDataSource((ds) => ds.showMigrations())).toBe(false);
  });

  it('the re-migrated database works: a budget can be stored and its window computed', async () => {
    const { rows } = await client.query(
      `INSERT INTO budget_definitions (name, scope_type, scope_id, amount, currency, period, start_date, created_by)
       VALUES ('Smoke', 'team', 'team-smoke', 10, 'USD', 'monthly', '2025-01-31T00:00:00Z', 'migrations-spec')
       RETURNING (budget_period_window(start_date, end_date, period, custom_period_days, recurring, timezone,
                                       '2025-02-15T00:00:00Z')).period_end = '2025-02-28T00:00:00Z' AS clamps`,
    );
    expect(rows[0].clamps).toBe(true);
  });
});
