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
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import Decimal from 'decimal.js';
import { Client } from 'pg';
import { freePort } from '../src/database/embedded-database';
import { runMigrations } from '../src/database/migrate';

const ROOT = resolve(__dirname, '..');
const ROWS = Number(process.env.BENCH_BIG_ROWS ?? 1_000_000);
const RUNS = Number(process.env.BENCH_REPORT_RUNS ?? 30);
const CHUNK = 100_000;
const ADMIN_KEY = `bench-admin-${randomBytes(18).toString('hex')}`;
const log = (line: string) => process.stderr.write(`${line}\n`);

const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
const percentile = (values: number[], p: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(p * values.length))];

async function main(): Promise<void> {
  const serverUrl = process.env.DATABASE_URL;
  if (!serverUrl) throw new Error('DATABASE_URL must name a PostgreSQL server');
  const database = `bench_reporting_${process.pid}`;
  const url = new URL(serverUrl);
  const admin = new Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  url.pathname = `/${database}`;
  const databaseUrl = url.toString();
  let service: ChildProcess | undefined;
  try {
    await runMigrations(databaseUrl);
    const port = await freePort();
    service = spawn('node', ['dist/src/main.js'], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: databaseUrl, PORT: String(port), HOST: '127.0.0.1', NODE_ENV: 'production', LOG_LEVEL: 'warn', ADMIN_API_KEY: ADMIN_KEY },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const base = `http://127.0.0.1:${port}`;
    const headers = { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' };
    for (let i = 0; ; i += 1) {
      if (i > 300) throw new Error('the service did not start');
      const ok = await fetch(`${base}/health/ready`).then((r) => r.ok, () => false);
      if (ok) break;
      await new Promise((done) => setTimeout(done, 200));
    }

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

    const timings: Record<string, number[]> = {};
    for (const [name, path] of [['forecast', 'forecast'], ['periods', 'periods?count=12']] as const) {
      timings[name] = [];
      for (let run = 0; run <= RUNS; run += 1) {
        const t0 = performance.now();
        const response = await fetch(`${base}/api/v1/budgets/${created.id}/${path}`, { headers });
        await response.text();
        if (response.status !== 200) throw new Error(`${name}: ${response.status}`);
        if (run > 0) timings[name].push(performance.now() - t0);
      }
    }

    const pid = service.pid!;
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
      forecastP50Ms: +percentile(timings.forecast, 0.5).toFixed(1),
      forecastP95Ms: +percentile(timings.forecast, 0.95).toFixed(1),
      periodsP50Ms: +percentile(timings.periods, 0.5).toFixed(1),
      periodsP95Ms: +percentile(timings.periods, 0.95).toFixed(1),
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
  } finally {
    if (service && service.exitCode === null) {
      const exited = new Promise((done) => service!.once('exit', done));
      service.kill('SIGTERM');
      await exited;
    }
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
  }
}

main().catch((error) => {
  log(`bench:reporting failed: ${error.stack ?? error}`);
  process.exit(1);
});
