/**
 * Fault spec (2): the service SIGKILLed in the middle of a usage load and started again. Every
 * write acknowledged with a 2xx is in the ledger exactly once, and clients retrying with their
 * idempotency keys (through the crash, and once more afterwards) create no duplicates.
 * And SIGTERM during load: no in-flight request is cut off; they finish, then the process exits 0.
 */
import { performance } from 'node:perf_hooks';
import { Client } from 'pg';
import {
  ADMIN_KEY,
  BIG_BUDGET,
  HttpClient,
  sleep,
  startFaultDatabase,
  startService,
  type FaultDatabase,
  type Outcome,
  type ServiceProcess,
} from './faults.support';

let db: FaultDatabase;
let sql: Client;
const services = new Set<ServiceProcess>();

beforeAll(async () => {
  db = await startFaultDatabase('faults_process');
  sql = new Client({ connectionString: db.url });
  sql.on('error', () => undefined);
  await sql.connect();
});

afterAll(async () => {
  for (const service of services) if (service.child.exitCode === null) service.child.kill('SIGKILL');
  await sql?.end();
  await db?.destroy();
});

async function start(env: Record<string, string> = {}, port?: number): Promise<ServiceProcess> {
  const service = await startService({ DATABASE_URL: db.url, DATABASE_POOL_SIZE: '40', ...env }, port);
  services.add(service);
  return service;
}

async function ledger(budgetId: string): Promise<Map<string, number>> {
  const { rows } = await sql.query<{ key: string; n: number }>(
    'SELECT idempotency_key AS key, count(*)::int AS n FROM budget_usage_records WHERE budget_id = $1 GROUP BY 1',
    [budgetId],
  );
  return new Map(rows.map((row) => [row.key, row.n]));
}

const ok = (o: Outcome) => o.status === 201 || o.status === 200;

/** Sends until the service answers (a socket error or a 503 is tried again, as a client would). */
async function answered(http: HttpClient, path: string, body: unknown, key: string): Promise<Outcome> {
  for (let attempt = 1; ; attempt++) {
    const outcome = await http.send('POST', path, body, { 'idempotency-key': key });
    if ((outcome.status !== undefined && outcome.status !== 503) || attempt === 5) return outcome;
    await sleep(200);
  }
}

it('SIGKILL under load, restart: every acknowledged write exactly once, retries with the same keys add nothing', async () => {
  const first = await start();
  const http = new HttpClient(first.baseUrl, { authorization: `Bearer ${ADMIN_KEY}` });
  const budget = await http.send('POST', '/api/v1/budgets', { ...BIG_BUDGET, scopeId: 'team-crash' });
  expect(budget.status).toBe(201);
  const usagePath = `/api/v1/budgets/${budget.body.id}/usage`;
  const body = { amount: 0.01, currency: 'USD', source: 'fault-spec' };

  const attempts: (Outcome & { key: string })[] = [];
  const final = new Map<string, Outcome>();
  let running = true;
  // A client that retries a key until it gets an answer, as RelayCore's collector does.
  const worker = async (w: number) => {
    for (let n = 0; running; n++) {
      const key = `crash-${w}-${n}`;
      for (;;) {
        const outcome = await http.send('POST', usagePath, body, { 'idempotency-key': key }, 5_000);
        attempts.push({ ...outcome, key });
        if (outcome.status !== undefined && outcome.status < 500) {
          final.set(key, outcome);
          break;
        }
        await sleep(250);
      }
    }
  };
  const workers = Array.from({ length: 32 }, (_, w) => worker(w));
  // Load measured in writes, not seconds: a slow machine (a busy CI run) still crashes the service
  // in the middle of a load of this size.
  const until = async (writes: number, atLeastMs: number) => {
    const begun = performance.now();
    while ((final.size < writes || performance.now() - begun < atLeastMs) && performance.now() - begun < 30_000) await sleep(50);
  };
  await until(60, 1_500);

  const killedAt = performance.now();
  first.child.kill('SIGKILL');
  let inFlightAtKill = 0;
  let second: ServiceProcess;
  let upAt = 0;
  try {
    expect((await first.exited).signal).toBe('SIGKILL');
    inFlightAtKill = attempts.length;
    second = await start({}, first.port);
    upAt = performance.now();
    await until(130, 1_000);
  } finally {
    running = false;
    await Promise.all(workers);
  }

  // Every key once more, as a client that never saw its answer would: replays only.
  const keys = [...final.keys()];
  const replays: Outcome[] = [];
  for (let i = 0; i < keys.length; i += 16) {
    replays.push(...(await Promise.all(keys.slice(i, i + 16).map((key) => answered(http, usagePath, body, key)))));
  }
  const rows = await ledger(budget.body.id);
  const failedAttempts = attempts.filter((o) => !ok(o));
  const retriedKeys = new Set(failedAttempts.map((o) => o.key));
  const committedBeforeCrash = [...retriedKeys].filter((key) => final.get(key)?.status === 200).length;
  const { rows: [sums] } = await sql.query<{ total: string; cached: string | null }>(
    `SELECT (SELECT sum(amount) FROM budget_usage_records WHERE budget_id = $1)::text AS total`,
    [budget.body.id],
  );
  const status = await http.send('GET', `/api/v1/budgets/${budget.body.id}/status`);
  http.close();
  second.child.kill('SIGTERM');
  await second.exited;

  console.log(
    [
      'fault spec (2) — SIGKILL under load, then restart',
      `  attempts ${attempts.length} (${inFlightAtKill} before the kill), failed attempts ${failedAttempts.length} ` +
        `(${[...new Set(failedAttempts.map((o) => o.error ?? o.status))].join(', ')}), keys retried ${retriedKeys.size}`,
      `  down ${Math.round(upAt - killedAt)} ms (kill → listening again)`,
      `  writes acknowledged ${keys.length}, found in the ledger ${keys.filter((k) => rows.has(k)).length}, ` +
        `ledger rows ${[...rows.values()].reduce((a, b) => a + b, 0)}, keys with more than one row ${[...rows.values()].filter((n) => n > 1).length}`,
      `  of the keys cut off by the crash or the restart, ${committedBeforeCrash} had been committed (replayed as 200), ` +
        `${retriedKeys.size - committedBeforeCrash} had not (written on retry, 201)`,
      `  second round of ${replays.length} retries: ${replays.filter((r) => r.status === 200).length} × 200 replayed, ` +
        `ledger sum ${sums.total}, status currentAmount ${status.body.currentAmount}`,
    ].join('\n'),
  );

  expect(final.size).toBeGreaterThan(100);
  expect([...final.values()].every(ok)).toBe(true);
  expect(keys.filter((key) => rows.get(key) !== 1)).toEqual([]);
  expect(rows.size).toBe(keys.length);
  expect(replays.every((r) => r.status === 200 && r.headers['idempotent-replayed'] === 'true')).toBe(true);
  expect(Number(sums.total)).toBeCloseTo(keys.length * 0.01, 6);
  expect(status.body.currentAmount).toBeCloseTo(keys.length * 0.01, 6);
});

it('SIGTERM under load: in-flight requests finish (no reset), then the pool closes and the process exits 0', async () => {
  const service = await start({ LOG_LEVEL: 'info', SHUTDOWN_DRAIN_MS: '0' });
  const http = new HttpClient(service.baseUrl, { authorization: `Bearer ${ADMIN_KEY}` });
  const budget = await http.send('POST', '/api/v1/budgets', { ...BIG_BUDGET, scopeId: 'team-sigterm' });
  expect(budget.status).toBe(201);
  const usagePath = `/api/v1/budgets/${budget.body.id}/usage`;

  // Background load on a read path.
  const background: Outcome[] = [];
  let running = true;
  const reader = async () => {
    while (running) {
      const outcome = await http.send('GET', `/api/v1/budgets/${budget.body.id}/status`, undefined, {}, 15_000);
      background.push(outcome);
      if (outcome.error || outcome.status === 503) await sleep(50);
    }
  };
  const readers = Array.from({ length: 8 }, reader);

  // Writes held in flight: the test holds a lock the usage insert needs, across the SIGTERM.
  const lock = new Client({ connectionString: db.url });
  lock.on('error', () => undefined);
  await lock.connect();
  const marker = 'body-marker-never-logged';
  let heldOutcomes: Outcome[] = [];
  let signalledAt = 0;
  let aliveAfterOneSecond = false;
  let code: number | null = null;
  let exitedAt = 0;
  try {
    await lock.query('BEGIN');
    await lock.query('LOCK TABLE budget_usage_records IN SHARE ROW EXCLUSIVE MODE');
    const held = Array.from({ length: 20 }, (_, i) =>
      http.send('POST', usagePath, { amount: 1, currency: 'USD', source: marker }, { 'idempotency-key': `held-${i}`, 'x-request-id': `held-${i}` }, 60_000),
    );
    const waiting = async () =>
      Number((await sql.query(`SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND application_name = 'relaycore-budget'`)).rows[0].n);
    // Usage writes commit in groups (src/usage/usage-write-groups.ts): the first two take the
    // instance's two group slots and wait for the lock in PostgreSQL, the other 18 queue behind
    // them in the service, to commit as one group once a slot frees.
    for (let i = 0; i < 400 && (await waiting()) < 2; i++) await sleep(50);
    expect(await waiting()).toBe(2);
    await sleep(500);

    signalledAt = performance.now();
    service.child.kill('SIGTERM');
    await sleep(1_000);
    aliveAfterOneSecond = service.child.exitCode === null;
    await lock.query('COMMIT');
    heldOutcomes = await Promise.all(held);
    code = (await service.exited).code;
    exitedAt = performance.now();
  } finally {
    running = false;
    await Promise.all(readers);
    await lock.end().catch(() => undefined);
    http.close();
  }

  const inFlightAtSignal = background.filter((o) => o.startedAt < signalledAt && o.endedAt > signalledAt);
  const after = background.filter((o) => o.startedAt >= signalledAt);
  const kinds = (list: Outcome[]) => {
    const counts: Record<string, number> = {};
    for (const o of list) counts[o.error ?? String(o.status)] = (counts[o.error ?? String(o.status)] ?? 0) + 1;
    return JSON.stringify(counts);
  };
  const rows = await ledger(budget.body.id);
  const output = service.output();

  console.log(
    [
      'SIGTERM under load',
      `  20 writes held in flight across the signal: ${kinds(heldOutcomes)}; all in the ledger: ${heldOutcomes.every((_, i) => rows.get(`held-${i}`) === 1)}`,
      `  background reads in flight at the signal: ${kinds(inFlightAtSignal)}; started after it: ${kinds(after)}`,
      `  process still up 1 s after SIGTERM (waiting for its in-flight writes): ${aliveAfterOneSecond}; ` +
        `exit code ${code} after ${Math.round(exitedAt - signalledAt)} ms`,
    ].join('\n'),
  );

  expect(heldOutcomes.map((o) => o.error ?? o.status)).toEqual(Array(20).fill(201));
  expect(heldOutcomes.every((_, i) => rows.get(`held-${i}`) === 1)).toBe(true);
  expect(inFlightAtSignal.filter((o) => o.error)).toEqual([]);
  expect(background.filter((o) => o.status !== undefined && o.status >= 500 && o.status !== 503)).toEqual([]);
  for (const refused of after.filter((o) => o.status === 503)) {
    expect(String(refused.headers['content-type'])).toMatch(/^application\/problem\+json/);
    expect(refused.body.code).toBe('SHUTTING_DOWN');
    expect(refused.headers['retry-after']).toBeDefined();
  }
  expect(aliveAfterOneSecond).toBe(true);
  expect(code).toBe(0);

  // The request log: JSON, the caller's request id, the key redacted, no body.
  const line = output.split('\n').find((l) => l.includes('"held-3"') && l.includes('request completed'));
  expect(line).toBeDefined();
  const entry = JSON.parse(line!);
  expect(entry.req.id).toBe('held-3');
  expect(entry.req.headers.authorization).toBe('[redacted]');
  expect(entry.res.statusCode).toBe(201);
  expect(output).not.toContain(ADMIN_KEY);
  expect(output).not.toContain(marker);
});
