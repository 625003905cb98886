/**
 * What the reporting benches share: a fresh, migrated database on the server of DATABASE_URL, the
 * built service (dist/, run `nest build` first) started on it with an admin key, and percentiles.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { Client } from 'pg';
import { freePort } from '../src/database/embedded-database';
import { runMigrations } from '../src/database/migrate';

const ROOT = resolve(__dirname, '..');

export const log = (line: string) => process.stderr.write(`${line}\n`);

export const percentile = (values: number[], p: number) =>
  [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(p * values.length))];

export interface BenchService {
  base: string;
  headers: Record<string, string>;
  process: ChildProcess;
  databaseUrl: string;
}

/**
 * Runs `work` against the service on a new database `<prefix>_<pid>`; stops the service and drops
 * the database afterwards, whatever happened.
 */
export async function withBenchService(prefix: string, work: (service: BenchService) => Promise<void>): Promise<void> {
  const serverUrl = process.env.DATABASE_URL;
  if (!serverUrl) throw new Error('DATABASE_URL must name a PostgreSQL server');
  const database = `${prefix}_${process.pid}`;
  const url = new URL(serverUrl);
  const admin = new Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  url.pathname = `/${database}`;
  const databaseUrl = url.toString();
  const adminKey = `bench-admin-${randomBytes(18).toString('hex')}`;
  let service: ChildProcess | undefined;
  try {
    await runMigrations(databaseUrl);
    const port = await freePort();
    service = spawn('node', ['dist/src/main.js'], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: databaseUrl, PORT: String(port), HOST: '127.0.0.1', NODE_ENV: 'production', LOG_LEVEL: 'warn', ADMIN_API_KEY: adminKey },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const base = `http://127.0.0.1:${port}`;
    for (let i = 0; ; i += 1) {
      if (i > 300) throw new Error('the service did not start');
      const ok = await fetch(`${base}/health/ready`).then((r) => r.ok, () => false);
      if (ok) break;
      await new Promise((done) => setTimeout(done, 200));
    }
    const headers = { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' };
    await work({ base, headers, process: service, databaseUrl });
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

/** p50 and p95 (ms) of `runs` sequential GETs of `path` after one warm-up; any status but 200 throws. */
export async function timeGets(service: BenchService, path: string, runs: number): Promise<{ p50: number; p95: number }> {
  const timings: number[] = [];
  for (let run = 0; run <= runs; run += 1) {
    const t0 = performance.now();
    const response = await fetch(`${service.base}${path}`, { headers: service.headers });
    await response.text();
    if (response.status !== 200) throw new Error(`${path}: ${response.status}`);
    if (run > 0) timings.push(performance.now() - t0);
  }
  return { p50: +percentile(timings, 0.5).toFixed(1), p95: +percentile(timings, 0.95).toFixed(1) };
}
