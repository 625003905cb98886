/**
 * `npm run bench:partition-migration`: the partitioned-ledger migration (1764310000000) on an
 * existing database with data. On a fresh database `bench_partitions_<pid>` of the server named by
 * DATABASE_URL (required): the migrations before it, then BENCH_MIGRATION_ROWS usage rows (default
 * 1,000,000) over 14 months and 80 budgets (a 3-level tree, monthly, annual and custom windows;
 * half the rows keyed, a tenth attributed to a second budget), the caches rebuilt; then the
 * migration, timed. Checks, and exits non-zero unless all hold: row count and sum(amount) of the
 * ledger and of the attributions unchanged, one key row per keyed usage, the default partitions
 * empty, and every budget's status (the cache row and the ledger's sum over its window) unchanged;
 * a keyed usage of the oldest month replays. Then down() and up() again, timed, with the same checks.
 */
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { dataSourceOptions, MIGRATIONS } from '../src/database/data-source.options';

const ROWS = Number(process.env.BENCH_MIGRATION_ROWS ?? 1_000_000);
const log = (line: string) => process.stderr.write(`${line}\n`);

const FIGURES = `
  SELECT (SELECT count(*) FROM budget_usage_records)::text AS rows,
         (SELECT sum(amount) FROM budget_usage_records)::text AS total,
         (SELECT count(*) FROM budget_usage_attributions)::text AS attributions,
         (SELECT sum(amount) FROM budget_usage_attributions)::text AS attributed,
         (SELECT count(*) FROM budget_usage_records WHERE idempotency_key IS NOT NULL)::text AS keyed`;

const STATUSES = `
  SELECT c.budget_id, c.period_start, c.current_amount::text, c.usage_count::text,
         s.current_amount::text AS ledger_amount, s.usage_count::text AS ledger_count
  FROM budget_status_cache c CROSS JOIN LATERAL calculate_budget_status(c.budget_id, now()) s
  ORDER BY c.budget_id`;

async function seed(client: Client): Promise<void> {
  const start = `date_trunc('month', now()) - interval '13 months'`;
  await client.query(`
    INSERT INTO budget_definitions (id, name, scope_type, scope_id, amount, currency, period, start_date, created_by)
    VALUES ('00000000-0000-0000-0000-000000000001', 'org', 'organization', 'org', 1e9, 'USD', 'annual', ${start}, 'bench')`);
  await client.query(`
    INSERT INTO budget_definitions (id, name, scope_type, scope_id, parent_id, amount, currency, period, start_date, created_by)
    SELECT ('00000000-0000-0000-0000-0000000001' || lpad(g::text, 2, '0'))::uuid, 'team ' || g, 'team', 'team-' || g,
           '00000000-0000-0000-0000-000000000001', 1e8, 'USD', 'monthly', ${start}, 'bench'
    FROM generate_series(1, 9) g`);
  await client.query(`
    INSERT INTO budget_definitions (id, name, scope_type, scope_id, parent_id, amount, currency, period, start_date, created_by)
    SELECT ('00000000-0000-0000-0000-0000000002' || lpad(g::text, 2, '0'))::uuid, 'user ' || g, 'user', 'user-' || g,
           ('00000000-0000-0000-0000-0000000001' || lpad((g % 9 + 1)::text, 2, '0'))::uuid, 1e7, 'USD', 'weekly', ${start}, 'bench'
    FROM generate_series(1, 40) g`);
  await client.query(`
    INSERT INTO budget_definitions (id, name, scope_type, scope_id, amount, currency, period, custom_period_days, start_date, created_by)
    SELECT ('00000000-0000-0000-0000-0000000003' || lpad(g::text, 2, '0'))::uuid, 'project ' || g, 'project', 'project-' || g,
           1e7, 'USD', CASE WHEN g % 3 = 0 THEN 'custom' WHEN g % 3 = 1 THEN 'quarterly' ELSE 'monthly' END,
           CASE WHEN g % 3 = 0 THEN 200 END, ${start}, 'bench'
    FROM generate_series(1, 30) g`);
  // Loaded with the ledger trigger off (as a bulk load would be), then every cache row rebuilt.
  await client.query(`ALTER TABLE budget_usage_records DISABLE TRIGGER budget_usage_records_rollup`);
  const budgets = `(SELECT array_agg(id ORDER BY id) FROM budget_definitions)`;
  for (let from = 1; from <= ROWS; from += 100_000) {
    const to = Math.min(ROWS, from + 99_999);
    await client.query(`
      INSERT INTO budget_usage_records (budget_id, amount, currency, source, model_id, user_id, idempotency_key, request_hash,
                                        occurred_at, matched_budget_ids)
      SELECT b.ids[g % cardinality(b.ids) + 1], ((g % 997) + 1) / 10000.0, 'USD', 'bench', 'model-' || (g % 7), 'user-' || (g % 50),
             CASE WHEN g % 2 = 0 THEN 'key-' || g END, CASE WHEN g % 2 = 0 THEN 'hash-' || g END,
             ${start} + (now() - (${start})) * (g::float8 / ${ROWS + 1}),
             CASE WHEN g % 10 = 5 THEN ARRAY[b.ids[g % cardinality(b.ids) + 1], b.ids[(g + 1) % cardinality(b.ids) + 1]] END
      FROM generate_series(${from}, ${to}) g, (SELECT ${budgets} AS ids) b`);
    log(`  loaded ${to} rows`);
  }
  await client.query(`
    INSERT INTO budget_usage_attributions (budget_id, occurred_at, usage_id, amount, primary_budget_id)
    SELECT r.matched_budget_ids[2], r.occurred_at, r.id, r.amount, r.budget_id
    FROM budget_usage_records r WHERE cardinality(r.matched_budget_ids) > 1`);
  await client.query(`ALTER TABLE budget_usage_records ENABLE TRIGGER budget_usage_records_rollup`);
  await client.query(`SELECT refresh_budget_status_cache(id) FROM budget_definitions`);
  await client.query(`VACUUM ANALYZE budget_usage_records`);
}

async function main(): Promise<void> {
  const serverUrl = process.env.DATABASE_URL;
  if (!serverUrl) throw new Error('DATABASE_URL must name a PostgreSQL server');
  const database = `bench_partitions_${process.pid}`;
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  const admin = new Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  const client = new Client({ connectionString: url.toString() });
  const target = MIGRATIONS.findIndex((migration) => migration.name === 'PartitionedLedger1764310000000');
  const dataSource = (count: number) =>
    new DataSource({ ...dataSourceOptions({ url: url.toString(), poolSize: 2 }), migrations: MIGRATIONS.slice(0, count), logging: ['error'] });
  const failures: string[] = [];
  try {
    const before = dataSource(target);
    await before.initialize();
    await before.runMigrations({ transaction: 'each' });
    await before.destroy();
    await client.connect();
    log(`seeding ${ROWS} rows`);
    await seed(client);
    const figures = (await client.query(FIGURES)).rows[0];
    const statuses = (await client.query(STATUSES)).rows;
    log(`before: ${JSON.stringify(figures)}`);

    const check = async (label: string, partitioned: boolean) => {
      const now = (await client.query(FIGURES)).rows[0];
      if (JSON.stringify(now) !== JSON.stringify(figures)) failures.push(`${label}: figures ${JSON.stringify(now)}`);
      const after = (await client.query(STATUSES)).rows;
      if (JSON.stringify(after) !== JSON.stringify(statuses)) failures.push(`${label}: some budget's status changed`);
      if (!partitioned) return;
      const [keys] = (await client.query(`SELECT count(*)::text AS n FROM budget_usage_keys`)).rows;
      if (keys.n !== figures.keyed) failures.push(`${label}: ${keys.n} keys for ${figures.keyed} keyed rows`);
      const [defaults] = (await client.query(
        `SELECT (SELECT count(*) FROM budget_usage_records_default) + (SELECT count(*) FROM budget_usage_attributions_default) AS n`,
      )).rows;
      if (Number(defaults.n) !== 0) failures.push(`${label}: ${defaults.n} rows in the default partitions`);
      const [oldest] = (await client.query(
        `SELECT budget_id, amount::text, idempotency_key, request_hash, occurred_at FROM budget_usage_records
         WHERE idempotency_key IS NOT NULL ORDER BY occurred_at LIMIT 1`,
      )).rows;
      const [replay] = (await client.query(
        `SELECT replayed FROM record_usage($1, $2::numeric, 'USD', p_idempotency_key => $3, p_request_hash => $4, p_occurred_at => $5)`,
        [oldest.budget_id, oldest.amount, oldest.idempotency_key, oldest.request_hash, oldest.occurred_at],
      )).rows;
      if (replay.replayed !== true) failures.push(`${label}: the oldest keyed usage did not replay`);
    };

    const timed = async (label: string, run: () => Promise<unknown>) => {
      const started = Date.now();
      await run();
      const seconds = (Date.now() - started) / 1000;
      log(`${label}: ${seconds.toFixed(1)} s`);
      return seconds;
    };
    const all = dataSource(target + 1);
    await all.initialize();
    try {
      await timed('up (partition the ledger)', () => all.runMigrations({ transaction: 'each' }));
      await check('after up', true);
      const [parts] = (await client.query(
        `SELECT count(*)::int AS n FROM pg_partition_tree('budget_usage_records') WHERE isleaf`,
      )).rows;
      log(`  ${parts.n} ledger partitions`);
      await timed('down (back to one table)', () => all.undoLastMigration({ transaction: 'each' }));
      await check('after down', false);
      await timed('up again', () => all.runMigrations({ transaction: 'each' }));
      await check('after up again', true);
    } finally {
      await all.destroy();
    }
  } finally {
    await client.end().catch(() => undefined);
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
  }
  if (failures.length) {
    log(`FAILED:\n${failures.join('\n')}`);
    process.exitCode = 1;
  } else {
    log('all checks hold');
  }
}

void main();
