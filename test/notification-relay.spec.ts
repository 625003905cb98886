import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { DeliveryRelay } from '../src/notification/delivery-relay.service';
import { DeliveryRepository } from '../src/notification/delivery.repository';
import { ADMIN_KEY, HttpClient, startService, type ServiceProcess } from './faults.support';
import { createTestApp, type TestApp } from './setup/test-app';
import { createTestDatabase } from './setup/test-database';
import { notifyConfig, Receiver, sleep } from './notification.support';

/**
 * The relay under concurrency (SPEC §13): a claim whose instance died is retried once its lease
 * ends; two service processes deliver the same outbox while the receiver is down, then up, and
 * one of them is SIGKILLed mid-run: every event is delivered, none attempted by two at once.
 */

/** Pairs of attempts of one delivery whose time spans overlap (must be none). */
const OVERLAPPING_ATTEMPTS = `
  SELECT count(*)::int AS n FROM notification_attempts a JOIN notification_attempts b
      ON a.delivery_id = b.delivery_id AND a.id < b.id
   WHERE b.attempted_at < a.attempted_at + make_interval(secs => a.duration_ms / 1000.0)`;

describe('a killed instance\'s claim', () => {
  let t: TestApp;
  let receiver: Receiver;
  // One configuration (one SECRETS_KEY) for both instances, as a deployment has; a generous timeout on a busy CPU.
  const config = { notify: notifyConfig({ timeoutMs: 10_000 }) };

  beforeAll(async () => {
    receiver = await Receiver.start();
    t = await createTestApp({ config });
  });

  afterAll(async () => {
    await t.close();
    await receiver.close();
  });

  it('is left alone while its lease holds, then retried; the dead claim can no longer record anything', async () => {
    const channel = await t.request('POST', '/api/v1/notification-channels', { name: 'lease-hook', type: 'webhook', url: receiver.url });
    const test = await t.request('POST', `/api/v1/notification-channels/${channel.body.id}/test`);
    expect(test.status).toBe(202);
    // An instance claims it for 1 s and dies before sending.
    const [dead] = await t.app.get(DeliveryRepository).claimDue(10, 1);
    expect(dead.id).toBe(test.body.deliveryId);
    const relay = t.app.get(DeliveryRelay);
    await relay.deliverDue();
    expect(receiver.received).toHaveLength(0);
    await sleep(1100);
    await relay.deliverDue();
    expect(receiver.ids()).toEqual([dead.event.id]);
    const late = await t.app.get(DeliveryRepository).recordAttempts([
      { id: dead.id, claimToken: dead.claimToken, attempt: { status: 'failed', attemptedAt: new Date(), durationMs: 1, outcome: 'failed', error: 'late' } },
    ]);
    expect(late.has(dead.id)).toBe(false);
    const [row] = await t.sql(`SELECT status, attempt_count FROM notification_deliveries WHERE id = $1`, [dead.id]);
    expect(row).toEqual({ status: 'delivered', attempt_count: 1 });
  });

  it('two relays draining the same outbox side by side never hold one delivery at once and deliver each', async () => {
    const other = await createTestApp({ databaseUrl: t.databaseUrl, config });
    try {
      receiver.received.length = 0;
      receiver.reply = () => ({ status: 204, delayMs: 5 });
      const channel = await t.request('POST', '/api/v1/notification-channels', { name: 'pair-hook', type: 'webhook', url: receiver.url });
      await t.sql(`SELECT notification_enqueue('notification.test', jsonb_build_object('n', g), jsonb_build_array($1::text))
                   FROM generate_series(1, 300) g`, [channel.body.id]);
      const relays = [t.app.get(DeliveryRelay), other.app.get(DeliveryRelay)];
      const made = await Promise.all(relays.flatMap((relay) => [relay.deliverDue(), relay.deliverDue()]));
      expect(made.reduce((a, b) => a + b, 0)).toBe(300);
      expect(made.filter((n) => n > 0).length).toBeGreaterThan(1);
      expect(receiver.received).toHaveLength(300);
      expect(new Set(receiver.ids()).size).toBe(300);
      expect(receiver.maxConcurrentPerId).toBe(1);
      expect(await t.sql(OVERLAPPING_ATTEMPTS)).toEqual([{ n: 0 }]);
    } finally {
      await other.close();
    }
  });
});

describe('two service processes, the receiver down for 20 s while 500 alerts fire, one process SIGKILLed', () => {
  const ALERTS = 500;
  let receiver: Receiver;
  let sql: Client;
  const services: ServiceProcess[] = [];

  beforeAll(async () => {
    receiver = await Receiver.start();
    const databaseUrl = await createTestDatabase();
    sql = new Client({ connectionString: databaseUrl });
    await sql.connect();
    const env = {
      DATABASE_URL: databaseUrl,
      NODE_ENV: 'development',
      SECRETS_KEY: randomBytes(32).toString('hex'),
      NOTIFY_ALLOW_PRIVATE_NETWORKS: 'true',
      NOTIFY_RELAY_ENABLED: 'true',
      NOTIFY_POLL_INTERVAL_MS: '100',
      NOTIFY_RETRY_SCHEDULE: Array(40).fill('1s').join(','),
      NOTIFY_TIMEOUT_MS: '2000',
      NOTIFY_LEASE_SECONDS: '3',
    };
    services.push(...(await Promise.all([startService(env), startService(env)])));
  }, 120_000);

  afterAll(async () => {
    for (const service of services) if (service.child.exitCode === null) service.child.kill('SIGKILL');
    await sql?.end();
    await receiver.close();
  });

  it('delivers 500 of 500, each webhook-id at least once, none before its alert committed, none attempted twice at once', async () => {
    const http = services.map((service) => new HttpClient(service.baseUrl, { authorization: `Bearer ${ADMIN_KEY}` }));
    const channel = await http[0].send('POST', '/api/v1/notification-channels', { name: 'ops-hook', type: 'webhook', url: receiver.url });
    expect(channel.status).toBe(201);
    const { rows: budgets } = await sql.query<{ id: string }>(
      `INSERT INTO budget_definitions (name, scope_type, scope_id, amount, currency, period, start_date, alerts, created_by)
       SELECT 'Relay ' || g, 'team', 'relay-' || g, 100, 'USD', 'monthly', '2025-01-01T00:00:00Z',
              '[{"id": "half", "threshold": 50, "actions": ["notify"], "notificationChannels": ["webhook"]}]', 'spec'
         FROM generate_series(1, ${ALERTS}) g RETURNING id`,
    );
    await receiver.stop();
    const downSince = Date.now();
    // A usage that rolls back fires nothing: its alert and event vanish with it.
    await sql.query('BEGIN');
    await sql.query(`INSERT INTO budget_usage_records (budget_id, amount, currency, occurred_at) VALUES ($1, 90, 'USD', now())`, [budgets[0].id]);
    await sql.query('ROLLBACK');
    for (let i = 0; i < budgets.length; i += 25) {
      const outcomes = await Promise.all(
        budgets.slice(i, i + 25).map((budget, j) =>
          http[(i + j) % 2].send('POST', `/api/v1/budgets/${budget.id}/usage`, { amount: 60, currency: 'USD', requestId: `r-${budget.id}` }),
        ),
      );
      expect(outcomes.map((o) => o.status)).toEqual(outcomes.map(() => 201));
    }
    const [{ n: events }] = (await sql.query(`SELECT count(*)::int AS n FROM notification_events WHERE type = 'budget.alert.triggered'`)).rows;
    expect(events).toBe(ALERTS);
    await sleep(Math.max(0, 20_000 - (Date.now() - downSince)));
    const [{ n: refused }] = (await sql.query(`SELECT count(*)::int AS n FROM notification_attempts WHERE error LIKE 'ECONNREFUSED%'`)).rows;
    expect(refused).toBeGreaterThan(0);

    receiver.reply = () => ({ status: 204, delayMs: 20 });
    await receiver.resume();
    while (receiver.received.length < 50) await sleep(20);
    services[1].child.kill('SIGKILL');
    await services[1].exited;

    const deadline = Date.now() + 60_000;
    let pending = ALERTS;
    while (pending > 0 && Date.now() < deadline) {
      await sleep(250);
      pending = (await sql.query(`SELECT count(*)::int AS n FROM notification_deliveries WHERE status <> 'delivered'`)).rows[0].n;
    }
    expect(pending).toBe(0);
    const { rows: committed } = await sql.query<{ id: string }>(
      `SELECT e.id FROM notification_events e JOIN budget_alert_history h ON h.id = e.alert_history_id`,
    );
    const eventIds = new Set(committed.map((row) => row.id));
    const receivedIds = receiver.ids();
    expect(eventIds.size).toBe(ALERTS);
    expect(new Set(receivedIds)).toEqual(eventIds);
    for (const request of receiver.received) {
      expect(JSON.parse(request.body).data.alert.id).toBeDefined();
    }
    expect(receiver.maxConcurrentPerId).toBe(1);
    expect((await sql.query(OVERLAPPING_ATTEMPTS)).rows).toEqual([{ n: 0 }]);
    const duplicates = receivedIds.length - eventIds.size;
    process.stdout.write(
      `notification-relay: ${ALERTS}/${ALERTS} delivered, ${receivedIds.length} requests received (${duplicates} duplicates, same webhook-id), ` +
        `${refused} refused attempts while down\n`,
    );
    for (const client of http) client.close();
  }, 180_000);
});
