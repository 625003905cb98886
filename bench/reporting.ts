/**
 * `npm run bench:reporting`: the Budget Reporter on a budget of 1,000,000 usage rows, against the
 * built service (run `nest build` first) on a fresh database `bench_reporting_<pid>` of the server
 * named by DATABASE_URL (required). Measures the p50/p95 of GET forecast and GET periods (sequential
 * requests), and streams the full CSV export while sampling the service's resident memory
 * (/proc/<pid>/status, every 20 ms): prints the RSS before, the peak during and the growth, and
 * checks the exported row count and sum against the ledger.
 *
 * Env knobs: BENCH_BIG_ROWS (default 1000000), BENCH_REPORT_RUNS (requests per endpoint, default 30).
 */
import { readFileSync } from 'node:fs';
import Decimal from 'decimal.js';
import { Client } from 'pg';
import { log, timeGets, withBenchService } from './bench-service';

const ROWS = Number(process.env.BENCH_BIG_ROWS ?? 1_000_000);
const RUNS = Number(process.env.BENCH_REPORT_RUNS ?? 30);
const CHUNK = 100_000;

const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

async function main(): Promise<void> {
  await withBenchService('bench_reporting', async (bench) => {
    const { base, headers, databaseUrl } = bench;
    const startDate = new Date(Date.now() - 30 * 86_400_000).toISOString();
    const created = await fetch(`${base}/api/v1/budgets`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ name: 'Big', scopeType: 'team', scopeId: 'bench-big', amount: 1e9, currency: 'USD', period: 'annual', startDate }),
    }).then((r) => r.json() as Promise<{ id: string }>);
    const db = new Client({ connectionString: databaseUrl });
    await db.connect();
    const loadStarted = Date.now();
    for (let from = 0; from < ROWS; from += CHUNK) {
      await db.query(
        `INSERT INTO budget_usage_records (budget_id, amount, currency, source, model_id, occurred_at)
         SELECT $1::uuid, ((i % 997) + 1) * 0.000123, 'USD', 'bench', 'model-' || (i % 7),
                now() - interval '25 days' + (i::float8 / $3) * interval '25 days'
         FROM generate_series($2::int + 1, $2::int + $4::int) AS i`,
        [created.id, from, ROWS, Math.min(CHUNK, ROWS - from)],
      );
      log(`  loaded ${Math.min(from + CHUNK, ROWS)} rows (${((Date.now() - loadStarted) / 1000).toFixed(0)} s)`);
    }
    await db.query('VACUUM (ANALYZE) budget_usage_records');

    const forecast = await timeGets(bench, `/api/v1/budgets/${created.id}/forecast`, RUNS);
    const periods = await timeGets(bench, `/api/v1/budgets/${created.id}/periods?count=12`, RUNS);

    const pid = bench.process.pid!;
    const before = rssMiB(pid);
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(pid))), 20);
    const exportStarted = performance.now();
    const response = await fetch(`${base}/api/v1/budgets/${created.id}/usage/export`, { headers });
    let lines = -1;
    let sum = new Decimal(0);
    let rest = '';
    const decoder = new TextDecoder();
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      const parts = (rest + decoder.decode(chunk, { stream: true })).split('\r\n');
      rest = parts.pop() ?? '';
      for (const line of parts) {
        lines += 1;
        if (lines > 0) sum = sum.add(line.split(',')[4]);
      }
    }
    const exportMs = performance.now() - exportStarted;
    clearInterval(sampler);
    const truth = (await db.query(`SELECT count(*)::int AS n, sum(amount)::text AS total FROM budget_usage_records`)).rows[0];
    await db.end();

    const table = {
      rows: ROWS,
      forecastP50Ms: forecast.p50,
      forecastP95Ms: forecast.p95,
      periodsP50Ms: periods.p50,
      periodsP95Ms: periods.p95,
      exportSeconds: +(exportMs / 1000).toFixed(1),
      exportRssBeforeMiB: +before.toFixed(1),
      exportRssPeakMiB: +peak.toFixed(1),
      exportRssGrowthMiB: +(peak - before).toFixed(1),
      exportedRows: lines,
      exportedRowsMatch: lines === truth.n,
      exportedSumMatches: sum.eq(truth.total),
    };
    console.log(JSON.stringify(table, null, 2));
    if (!table.exportedRowsMatch || !table.exportedSumMatches) process.exitCode = 1;
  });
}

main().catch((error) => {
  log(`bench:reporting failed: ${error.stack ?? error}`);
  process.exit(1);
});
