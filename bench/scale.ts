/**
 * `npm run bench:scale`: the usage summary, periods and forecast of one budget holding 10,000,000
 * usage rows spread over 12 months (issue 19), against the built service on a fresh database
 * `bench_scale_<pid>` of the server named by DATABASE_URL (required).
 *
 * The rows are bulk-loaded through the ledger's own trigger (INSERT … SELECT generate_series in
 * statements of 100,000 rows), so the roll-ups are built exactly as in production, one grouped
 * upsert per statement. Each row has one of 7 models, 3 sources, 20 users (or none) and 5 tag sets.
 * Then: p50/p95 of sequential GETs of the summary (the annual window, and a range with edges off
 * the hour), periods?count=12 and the forecast; the raw GROUP BY over the same rows
 * (budget_usage_rows, the query the summary ran before the roll-ups) once, timed; and the check
 * that every line of the summary (total, count, each model, source, user, local day and tag)
 * equals the raw one to the last decimal.
 *
 * Env knobs: BENCH_BIG_ROWS (default 10000000), BENCH_REPORT_RUNS (requests per endpoint, default 30).
 */
import Decimal from 'decimal.js';
import { Client } from 'pg';
import { toMoneyNumber } from '../src/common/money';
import { log, timeGets, withBenchService } from './bench-service';

const ROWS = Number(process.env.BENCH_BIG_ROWS ?? 10_000_000);
const RUNS = Number(process.env.BENCH_REPORT_RUNS ?? 30);
const CHUNK = 100_000;
const DAY = 86_400_000;

/** The summary's lines computed from the raw rows, as exact text (one dimension at a time). */
const RAW_SUMMARY = `
  WITH rows AS (SELECT * FROM budget_usage_rows($1::uuid, $2::timestamptz, $3::timestamptz))
  SELECT 'total' AS dimension, NULL AS key, sum(amount)::text AS total, count(*)::text AS count FROM rows
  UNION ALL SELECT 'model', model_id, sum(amount)::text, count(*)::text FROM rows GROUP BY model_id
  UNION ALL SELECT 'source', source, sum(amount)::text, count(*)::text FROM rows GROUP BY source
  UNION ALL SELECT 'user', user_id, sum(amount)::text, count(*)::text FROM rows GROUP BY user_id
  UNION ALL SELECT 'day', to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), sum(amount)::text, count(*)::text FROM rows GROUP BY 2
  UNION ALL SELECT 'tag', t.tag, sum(amount)::text, count(*)::text FROM rows LEFT JOIN LATERAL unnest(rows.tags) t (tag) ON true GROUP BY t.tag`;

/** The same lines from the roll-ups, as the summary endpoint reads them. */
const ROLLED_SUMMARY = `
  SELECT s.dimension, s.value AS key, sum(s.amount)::text AS total, sum(s.usage_count)::text AS count
  FROM budget_usage_sums($1::uuid, $2::timestamptz, $3::timestamptz) s GROUP BY 1, 2
  UNION ALL
  SELECT 'day', to_char(s.bucket AT TIME ZONE 'UTC', 'YYYY-MM-DD'), sum(s.amount)::text, sum(s.usage_count)::text
  FROM budget_usage_sums($1::uuid, $2::timestamptz, $3::timestamptz, 'total', 'day', 'UTC') s GROUP BY 2`;

type Line = { dimension: string; key: string | null; total: string; count: string };
const canonical = (lines: Line[]) => lines.map((l) => `${l.dimension}|${l.key}|${new Decimal(l.total).toFixed()}|${l.count}`).sort();

async function main(): Promise<void> {
  await withBenchService('bench_scale', async (bench) => {
    const now = Date.now();
    // An annual budget whose current window holds the last 12 months (364 days of rows).
    const startDate = new Date(now - 364 * DAY).toISOString();
    const created = await fetch(`${bench.base}/api/v1/budgets`, {
      method: 'POST',
      headers: bench.headers,
      body: JSON.stringify({ name: 'Scale', scopeType: 'team', scopeId: 'bench-scale', amount: 1e12, currency: 'USD', period: 'annual', startDate }),
    }).then((r) => r.json() as Promise<{ id: string }>);
    const db = new Client({ connectionString: bench.databaseUrl });
    await db.connect();
    // The database is dropped WITH (FORCE) at the end, also after an error: not a crash of its own.
    db.on('error', () => undefined);
    const loadStarted = Date.now();
    for (let from = 0; from < ROWS; from += CHUNK) {
      await db.query(
        `INSERT INTO budget_usage_records (budget_id, amount, currency, source, model_id, user_id, tags, occurred_at)
         SELECT $1::uuid, ((i % 997) + 1) * 0.0001234567, 'USD', (ARRAY['api', 'gateway', 'batch'])[i % 3 + 1],
                'model-' || (i % 7), CASE WHEN i % 21 = 0 THEN NULL ELSE 'user-' || (i % 20) END,
                CASE i % 5 WHEN 1 THEN ARRAY['prod'] WHEN 2 THEN ARRAY['prod', 'eu'] WHEN 3 THEN ARRAY['eval'] WHEN 4 THEN ARRAY['eu'] END,
                $5::timestamptz + (i::float8 / $3) * interval '363 days 23 hours'
         FROM generate_series($2::int + 1, $2::int + $4::int) AS i`,
        [created.id, from, ROWS, Math.min(CHUNK, ROWS - from), startDate],
      );
      if ((from / CHUNK) % 10 === 9 || from + CHUNK >= ROWS) {
        log(`  loaded ${Math.min(from + CHUNK, ROWS)} rows (${((Date.now() - loadStarted) / 1000).toFixed(0)} s)`);
      }
    }
    const loadSeconds = (Date.now() - loadStarted) / 1000;
    await db.query('VACUUM (ANALYZE) budget_usage_records');
    await db.query('VACUUM (ANALYZE) budget_usage_rollups');

    const path = `/api/v1/budgets/${created.id}`;
    const from = new Date(now - 300 * DAY - 1_234_567).toISOString();
    const to = new Date(now - 3 * DAY + 2_345_678).toISOString();
    const summary = await timeGets(bench, `${path}/usage/summary`, RUNS);
    const summaryRange = await timeGets(bench, `${path}/usage/summary?from=${from}&to=${to}`, RUNS);
    const periods = await timeGets(bench, `${path}/periods?count=12`, RUNS);
    const forecast = await timeGets(bench, `${path}/forecast`, RUNS);

    const [current] = (await db.query(`SELECT period_start, period_end FROM budget_recent_windows($1::uuid, now(), 1)`, [created.id])).rows;
    const window = [current.period_start.toISOString(), current.period_end.toISOString()];
    const rawStarted = performance.now();
    const raw = (await db.query<Line>(RAW_SUMMARY, [created.id, ...window])).rows;
    const rawMs = performance.now() - rawStarted;
    const rolled = (await db.query<Line>(ROLLED_SUMMARY, [created.id, ...window])).rows;
    const rawRange = (await db.query<Line>(RAW_SUMMARY, [created.id, from, to])).rows;
    const rolledRange = (await db.query<Line>(ROLLED_SUMMARY, [created.id, from, to])).rows;
    const api = await fetch(`${bench.base}${path}/usage/summary`, { headers: bench.headers }).then((r) => r.json() as Promise<{ total: number; count: number }>);
    const rawTotal = raw.find((line) => line.dimension === 'total')!;
    const sizes = (
      await db.query(
        `SELECT (SELECT count(*) FROM budget_usage_records)::int AS ledger_rows, (SELECT count(*) FROM budget_usage_rollups)::int AS rollup_rows,
                pg_size_pretty((SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('budget_usage_records'))) AS ledger_size,
                pg_size_pretty(pg_total_relation_size('budget_usage_rollups')) AS rollup_size`,
      )
    ).rows[0];
    await db.end();

    const table = {
      rows: ROWS,
      loadSeconds: +loadSeconds.toFixed(0),
      loadRowsPerSecond: Math.round(ROWS / loadSeconds),
      ...sizes,
      summaryWindowP50Ms: summary.p50,
      summaryWindowP95Ms: summary.p95,
      summaryRangeP50Ms: summaryRange.p50,
      summaryRangeP95Ms: summaryRange.p95,
      periodsP50Ms: periods.p50,
      periodsP95Ms: periods.p95,
      forecastP50Ms: forecast.p50,
      forecastP95Ms: forecast.p95,
      rawGroupByMs: +rawMs.toFixed(0),
      summaryLines: raw.length,
      summaryEqualsRaw: JSON.stringify(canonical(rolled)) === JSON.stringify(canonical(raw)),
      rangeSummaryEqualsRaw: JSON.stringify(canonical(rolledRange)) === JSON.stringify(canonical(rawRange)),
      apiTotalAndCountEqualRaw: api.total === toMoneyNumber(rawTotal.total) && api.count === Number(rawTotal.count),
    };
    console.log(JSON.stringify(table, null, 2));
    if (!table.summaryEqualsRaw || !table.rangeSummaryEqualsRaw || !table.apiTotalAndCountEqualRaw) process.exitCode = 1;
  });
}

main().catch((error) => {
  log(`bench:scale failed: ${error.stack ?? error}`);
  process.exit(1);
});
