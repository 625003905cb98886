/**
 * Fault spec (1): PostgreSQL stopped for 5 s in the middle of a 64-client usage load.
 * During the outage every answer is a fast 503 problem+json with Retry-After; within 5 s of the
 * restart writes succeed again (the pg pool reconnects by itself); every write acknowledged with
 * a 2xx is in the ledger.
 */
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { Client } from 'pg';
import { createApp } from '../src/app.setup';
import { loadConfig } from '../src/config/configuration';
import { ADMIN_KEY, BIG_BUDGET, HttpClient, percentile, sleep, startFaultDatabase, type FaultDatabase, type Outcome } from './faults.support';

const CLIENTS = 64;
const OUTAGE_MS = 5_000;

let db: FaultDatabase;
let app: NestFastifyApplication;
let http: HttpClient;

beforeAll(async () => {
  db = await startFaultDatabase('faults_outage');
  app = await createApp({
    ...loadConfig({ NODE_ENV: 'test' }),
    databaseUrl: db.url,
    adminApiKey: ADMIN_KEY,
    databasePoolSize: 20,
    // 3,000 503s would be 3,000 warn lines in the test output.
    logLevel: 'error',
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.getHttpServer().address();
  http = new HttpClient(`http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`, {
    authorization: `Bearer ${ADMIN_KEY}`,
  });
});

afterAll(async () => {
  http?.close();
  await app?.close();
  await db?.destroy();
});

it('PostgreSQL down for 5 s under 64 clients: only fast 503s, then recovery, and no acknowledged write lost', async () => {
  const budget = await http.send('POST', '/api/v1/budgets', BIG_BUDGET);
  expect(budget.status).toBe(201);
  const usagePath = `/api/v1/budgets/${budget.body.id}/usage`;

  const outcomes: (Outcome & { key: string })[] = [];
  let running = true;
  const worker = async (w: number) => {
    for (let n = 0; running; n++) {
      const key = `outage-${w}-${n}`;
      const outcome = await http.send('POST', usagePath, { amount: 0.01, currency: 'USD', source: 'fault-spec' }, { 'idempotency-key': key });
      outcomes.push({ ...outcome, key });
      // A polite client: a short pause after a 503 (not the full Retry-After, to keep probing).
      if (outcome.status === 503 || outcome.error) await sleep(100);
    }
  };
  const workers = Array.from({ length: CLIENTS }, (_, w) => worker(w));

  let stopBegin = 0, stopEnd = 0, startBegin = 0, startEnd = 0;
  let readiness: Outcome;
  // This process runs the service and its 64 clients together: a pause of its event loop (a long
  // garbage collection late in a full run on a loaded machine) delays every answer alike and is not
  // the service waiting on PostgreSQL. The latency bounds below are on latency less the longest
  // such pause, which the log line reports.
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  try {
    await sleep(2_000);
    loopDelay.enable();
    stopBegin = performance.now();
    await db.stop();
    stopEnd = performance.now();
    await sleep(OUTAGE_MS / 2);
    readiness = await http.send('GET', '/health/ready');
    await sleep(OUTAGE_MS / 2);
    startBegin = performance.now();
    await db.start();
    startEnd = performance.now();
    // Run until writes succeed again, then 1.5 s more.
    const recoveryDeadline = startEnd + 15_000;
    while (!outcomes.some((o) => o.startedAt >= startEnd && o.status === 201) && performance.now() < recoveryDeadline) await sleep(50);
    await sleep(1_500);
  } finally {
    loopDelay.disable();
    running = false;
    await Promise.all(workers);
  }
  const stallMs = loopDelay.max / 1e6;

  const during = outcomes.filter((o) => o.startedAt >= stopEnd && o.endedAt <= startBegin);
  const startedDuring = outcomes.filter((o) => o.startedAt >= stopEnd && o.startedAt < startBegin);
  const firstWriteAfter = outcomes
    .filter((o) => o.startedAt >= startEnd && o.status === 201)
    .reduce((first, o) => Math.min(first, o.endedAt), Infinity);
  const recoveryMs = firstWriteAfter - startEnd;
  const acknowledged = outcomes.filter((o) => o.status === 201 || o.status === 200);
  const { rows } = await withClient(db.url, (c) =>
    c.query<{ idempotency_key: string; n: number }>(
      'SELECT idempotency_key, count(*)::int AS n FROM budget_usage_records WHERE budget_id = $1 GROUP BY 1',
      [budget.body.id],
    ),
  );
  const inLedger = new Map(rows.map((r) => [r.idempotency_key, r.n]));
  const missing = acknowledged.filter((o) => !inLedger.has(o.key));
  const statusCounts = count(outcomes.map((o) => o.error ?? String(o.status)));

  console.log(
    [
      'fault spec (1) — PostgreSQL outage under load',
      `  clients ${CLIENTS}, requests ${outcomes.length}, answers by status ${JSON.stringify(statusCounts)}`,
      `  outage: PostgreSQL stopped (${ms(stopEnd - stopBegin)} to stop it and load a standby), down ${ms(startBegin - stopEnd)}, ` +
        `restart took ${ms(startEnd - startBegin)}; /health/ready meanwhile: ${readiness.status} in ${ms(dur(readiness))}`,
      `  during the outage: ${during.length} requests, ${during.filter((o) => o.status === 503).length} × 503, ` +
        `latency p50 ${ms(percentile(during.map(dur), 50))} p99 ${ms(percentile(during.map(dur), 99))} max ${ms(Math.max(0, ...startedDuring.map(dur)))}`,
      `  recovery: first 201 ${ms(recoveryMs)} after PostgreSQL was back; the longest pause of this process's event loop meanwhile ${ms(stallMs)}`,
      `  writes acknowledged ${acknowledged.length}, found in the ledger ${acknowledged.length - missing.length}, ` +
        `ledger rows ${rows.reduce((sum, r) => sum + r.n, 0)} (rows beyond the acknowledged ones: committed, but the answer was a 503)`,
    ].join('\n'),
  );

  expect(outcomes.filter((o) => o.error)).toEqual([]);
  expect(outcomes.filter((o) => o.status! >= 500 && o.status !== 503)).toEqual([]);
  expect(during.length).toBeGreaterThan(CLIENTS);
  for (const o of during) {
    expect(o.status).toBe(503);
    expect(String(o.headers['content-type'])).toMatch(/^application\/problem\+json/);
    expect(o.headers['retry-after']).toBeDefined();
    expect(o.body.code).toMatch(/^(DATABASE_UNAVAILABLE|QUERY_TIMEOUT)$/);
  }
  // Fast: bounded by the pool's connection timeout (1.5 s), far from the driver's defaults.
  expect(Math.max(0, ...startedDuring.map(dur)) - stallMs).toBeLessThan(3_000);
  expect(recoveryMs - stallMs).toBeLessThan(5_000);
  expect(readiness.status).toBe(503);
  expect(String(readiness.headers['content-type'])).toMatch(/^application\/problem\+json/);
  expect(dur(readiness) - stallMs).toBeLessThan(2_000);
  expect(missing.map((o) => o.key)).toEqual([]);
  expect([...inLedger.values()].every((n) => n === 1)).toBe(true);
  // The service reports itself ready again.
  expect((await http.send('GET', '/health/ready')).status).toBe(200);
});

const dur = (o: Outcome) => o.endedAt - o.startedAt;
const ms = (value: number) => `${Math.round(value)} ms`;

function count(values: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}

async function withClient<T>(url: string, work: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}
