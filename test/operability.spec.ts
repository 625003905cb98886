import { toProblem } from '../src/common/errors/problem';
import { ShutdownState } from '../src/observability/shutdown-state';
import { backoffDelayMs, withRetry } from '../src/observability/transient-retry';
import { createTestApp, type TestApp } from './setup/test-app';

/** Logs, request ids, metrics, health and the deadlock retry, through the real pipeline. */

const BUDGET = {
  name: 'Ops budget',
  scopeType: 'team',
  scopeId: 'team-ops',
  amount: 100,
  currency: 'USD',
  period: 'monthly',
  startDate: '2025-01-01T00:00:00Z',
  alerts: [{ threshold: 50, actions: ['notify'] }],
};

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp();
});
afterAll(async () => {
  await t?.close();
});

describe('X-Request-Id', () => {
  it('is honoured when acceptable and echoed on successes, errors and 404s', async () => {
    const id = 'abc-123_x.y:z';
    for (const [method, path] of [
      ['GET', '/health/live'],
      ['GET', '/api/v1/budgets'],
      ['GET', '/api/v1/budgets/not-a-uuid'],
      ['GET', '/no/such/route'],
    ]) {
      const response = await t.request(method, path, undefined, { 'x-request-id': id });
      expect(response.headers['x-request-id']).toBe(id);
    }
    const unauthorised = await t.request('GET', '/api/v1/budgets', undefined, { 'x-request-id': id, 'x-api-key': 'nope' });
    expect(unauthorised.status).toBe(401);
    expect(unauthorised.headers['x-request-id']).toBe(id);
  });

  it('is replaced by a UUID when missing, too long or with unsafe characters', async () => {
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
    for (const header of [undefined, 'x'.repeat(129), 'has space', 'quote"', 'new\\nline']) {
      const response = await t.request('GET', '/health/live', undefined, header === undefined ? {} : { 'x-request-id': header });
      expect(response.headers['x-request-id']).toMatch(uuid);
    }
    const a = await t.request('GET', '/health/live');
    const b = await t.request('GET', '/health/live');
    expect(a.headers['x-request-id']).not.toBe(b.headers['x-request-id']);
  });
});

/** Parses the Prometheus text format into `name{labels}` → value. */
function parseMetrics(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const cut = line.lastIndexOf(' ');
    samples.set(line.slice(0, cut), Number(line.slice(cut + 1)));
  }
  return samples;
}

describe('GET /metrics', () => {
  it('after some traffic: latency by route pattern, checks by outcome and rule, usage, alerts, pool gauges, process metrics', async () => {
    const budget = await t.request('POST', '/api/v1/budgets', BUDGET);
    expect(budget.status).toBe(201);
    const id = budget.body.id;
    expect((await t.request('POST', `/api/v1/budgets/${id}/check-constraints`, { estimatedCost: 10 })).body.canProceed).toBe(true);
    expect((await t.request('POST', `/api/v1/budgets/${id}/usage`, { amount: 30, currency: 'USD' }, { 'idempotency-key': 'm-1' })).status).toBe(201);
    expect((await t.request('POST', `/api/v1/budgets/${id}/usage`, { amount: 30, currency: 'USD' }, { 'idempotency-key': 'm-1' })).status).toBe(200);
    const batch = await t.request('POST', `/api/v1/budgets/${id}/usage/batch`, {
      records: [
        { amount: 25, currency: 'USD', idempotencyKey: 'm-2' },
        { amount: 5, currency: 'USD', idempotencyKey: 'm-3' },
      ],
    });
    expect(batch.status).toBe(200);
    // An integration write counts once; its replay and a refused write count nothing.
    const integration = { teamId: 'team-ops', amount: 2, currency: 'USD', requestId: 'm-int' };
    expect((await t.request('POST', '/api/v1/integration/usage', integration)).status).toBe(201);
    expect((await t.request('POST', '/api/v1/integration/usage', integration)).status).toBe(200);
    expect((await t.request('POST', `/api/v1/budgets/${id}/usage`, { amount: 7, currency: 'EUR' }, { 'idempotency-key': 'm-eur' })).status).toBe(422);
    const blocked = await t.request('POST', `/api/v1/budgets/${id}/check-constraints`, { estimatedCost: 1000 });
    expect(blocked.body.canProceed).toBe(false);
    expect((await t.request('GET', '/no/such/route')).status).toBe(404);

    const response = await t.request('GET', '/metrics', undefined, { authorization: '' });
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/plain/);
    const metrics = parseMetrics(response.body);
    const get = (sample: string) => metrics.get(sample);
    const usageRoute = 'route="/api/v1/budgets/:id/usage"';
    expect(get(`http_request_duration_seconds_count{method="POST",${usageRoute},status_code="201"}`)).toBe(1);
    expect(get(`http_request_duration_seconds_count{method="POST",${usageRoute},status_code="200"}`)).toBe(1);
    expect(get('http_request_duration_seconds_count{method="GET",route="unmatched",status_code="404"}')).toBeGreaterThanOrEqual(1);
    expect([...metrics.keys()].some((k) => k.includes(id))).toBe(false);
    expect(get('budget_checks_total{outcome="allowed",rule="allowed"}')).toBe(1);
    expect(get('budget_checks_total{outcome="blocked",rule="hard-limit"}')).toBe(1);
    expect(get('budget_usage_records_total')).toBe(4);
    expect(get('budget_usage_amount_total{currency="USD"}')).toBe(62);
    expect(get('budget_usage_amount_total{currency="EUR"}')).toBeUndefined();
    expect(get('budget_alerts_fired_total')).toBeGreaterThanOrEqual(1);
    for (const gauge of ['db_pool_connections_in_use', 'db_pool_connections_idle', 'db_pool_requests_waiting', 'db_pool_connections_max']) {
      expect(get(gauge)).toBeGreaterThanOrEqual(0);
    }
    expect(get('db_pool_connections_max')).toBe(30);
    expect(get('process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(get('db_transient_retries_total')).toBeUndefined(); // no sample until a retry happens

    // A second instance in the same process has a registry of its own.
    const other = await createTestApp();
    try {
      const otherMetrics = parseMetrics((await other.request('GET', '/metrics')).body);
      expect(otherMetrics.get('budget_usage_records_total')).toBe(0);
    } finally {
      await other.close();
    }
  });
});

describe('health', () => {
  it('/health/live and /health/ready answer 200 without a key', async () => {
    const live = await t.request('GET', '/health/live', undefined, { authorization: '' });
    expect(live.status).toBe(200);
    expect(live.body.status).toBe('ok');
    const ready = await t.request('GET', '/health/ready', undefined, { authorization: '' });
    expect(ready.status).toBe(200);
    expect(ready.body.info.database.status).toBe('up');
    expect(ready.body.info.migrations).toMatchObject({ status: 'up', pending: 0 });
  });

  it('/health/ready is 503 problem+json while a migration is pending', async () => {
    const [row] = await t.sql('DELETE FROM migrations WHERE id = (SELECT max(id) FROM migrations) RETURNING *');
    try {
      const ready = await t.request('GET', '/health/ready');
      expect(ready.status).toBe(503);
      expect(ready.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(ready.headers['retry-after']).toBeDefined();
      expect(ready.body.code).toBe('NOT_READY');
      expect(ready.body.detail).toContain('migrations (1 pending)');
      expect((await t.request('GET', '/health/live')).status).toBe(200);
    } finally {
      await t.sql('INSERT INTO migrations (id, timestamp, name) VALUES ($1, $2, $3)', [row.id, row.timestamp, row.name]);
    }
    expect((await t.request('GET', '/health/ready')).status).toBe(200);
  });
});

describe('shutdown', () => {
  it('while draining (after SIGTERM, before close) /health/ready is 503 and requests are still served', async () => {
    const other = await createTestApp();
    try {
      other.app.get(ShutdownState).begin();
      const ready = await other.request('GET', '/health/ready');
      expect(ready.status).toBe(503);
      expect(ready.body.detail).toContain('lifecycle (shutting down)');
      expect((await other.request('GET', '/api/v1/budgets')).status).toBe(200);
    } finally {
      await other.close();
    }
  });
});

describe('deadlock and serialization failures', () => {
  const policy = { attempts: 4, baseDelayMs: 1, maxDelayMs: 5 };
  const conflict = (code: string) => Object.assign(new Error('conflict'), { code });

  it('withRetry: runs again on 40P01/40001 up to the limit, never on other errors', async () => {
    let calls = 0;
    await expect(withRetry(async () => (++calls < 3 ? Promise.reject(conflict('40P01')) : 'done'), policy)).resolves.toBe('done');
    expect(calls).toBe(3);
    calls = 0;
    await expect(withRetry(() => (++calls, Promise.reject(conflict('40001'))), policy)).rejects.toMatchObject({ code: '40001' });
    expect(calls).toBe(4);
    calls = 0;
    await expect(withRetry(() => (++calls, Promise.reject(conflict('23505'))), policy)).rejects.toMatchObject({ code: '23505' });
    expect(calls).toBe(1);
  });

  it('backoff is jittered and capped', () => {
    expect(backoffDelayMs(1, { attempts: 5, baseDelayMs: 10, maxDelayMs: 200 }, () => 0.999)).toBe(9);
    expect(backoffDelayMs(10, { attempts: 5, baseDelayMs: 10, maxDelayMs: 200 }, () => 0.999)).toBe(199);
    expect(backoffDelayMs(3, { attempts: 5, baseDelayMs: 10, maxDelayMs: 200 }, () => 0)).toBe(0);
  });

  it('is installed on the DataSource: a statement failing with 40001 twice succeeds on the third try, counted in /metrics', async () => {
    await t.sql('CREATE SEQUENCE IF NOT EXISTS ops_conflicts');
    const flaky = `DO $$ BEGIN IF nextval('ops_conflicts') % 3 <> 0 THEN RAISE EXCEPTION 'simulated' USING ERRCODE = '40001'; END IF; END $$`;
    await t.sql(`SELECT setval('ops_conflicts', 3)`); // next values: 4, 5 fail; 6 passes
    await t.dataSource.query(flaky);
    expect(Number((await t.sql(`SELECT last_value FROM ops_conflicts`))[0].last_value)).toBe(6);

    // A whole transaction is run again; a statement inside one is not retried on its own.
    await t.sql(`SELECT setval('ops_conflicts', 3)`);
    let runs = 0;
    await t.dataSource.transaction(async (manager) => {
      runs++;
      await manager.query(flaky);
    });
    expect(runs).toBe(3);

    const metrics = parseMetrics((await t.request('GET', '/metrics')).body);
    expect(metrics.get('db_transient_retries_total{sqlstate="40001"}')).toBe(4);
  });

  it('a real deadlock between two transactions ends with both committed', async () => {
    await t.sql('CREATE TABLE IF NOT EXISTS ops_deadlock (id int PRIMARY KEY, n int NOT NULL)');
    await t.sql('INSERT INTO ops_deadlock VALUES (1, 0), (2, 0) ON CONFLICT DO NOTHING');
    const sleepMs = (ms: number) => new Promise((done) => setTimeout(done, ms));
    const crossing = (first: number, second: number) =>
      t.dataSource.transaction(async (manager) => {
        await manager.query('UPDATE ops_deadlock SET n = n + 1 WHERE id = $1', [first]);
        await sleepMs(100);
        await manager.query('UPDATE ops_deadlock SET n = n + 1 WHERE id = $1', [second]);
      });
    await Promise.all([crossing(1, 2), crossing(2, 1)]);
    const rows = await t.sql('SELECT n FROM ops_deadlock ORDER BY id');
    expect(rows.map((r) => r.n)).toEqual([2, 2]);
    const metrics = parseMetrics((await t.request('GET', '/metrics')).body);
    expect(metrics.get('db_transient_retries_total{sqlstate="40P01"}')).toBeGreaterThanOrEqual(1);
  });
});

describe('a database error without a SQLSTATE', () => {
  it('the driver\'s connection failures map to 503 DATABASE_UNAVAILABLE with Retry-After, not 500', () => {
    for (const message of ['timeout exceeded when trying to connect', 'Connection terminated unexpectedly', 'Query read timeout']) {
      const problem = toProblem(new Error(message), '/api/v1/budgets');
      expect(problem.body.status).toBe(503);
      expect(problem.body.code).toBe('DATABASE_UNAVAILABLE');
      expect(problem.headers['Retry-After']).toBeDefined();
    }
  });
});
