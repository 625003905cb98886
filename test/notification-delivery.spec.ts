import { Webhook } from 'standardwebhooks';
import { DeliveryRelay } from '../src/notification/delivery-relay.service';
import { budgetMaker, recordUsage } from './setup/budgets';
import { expectProblem } from './setup/problem';
import { createTestApp, type TestApp } from './setup/test-app';
import { MailSink, notifyConfig, Receiver, sleep } from './notification.support';

/**
 * Alert delivery (SPEC §13, issue 14) through the real app, a real HTTP receiver on 127.0.0.1
 * and a real SMTP server: the outbox written with the alert, signed webhooks verified with
 * `standardwebhooks`, retries, 410, Retry-After, Slack and email.
 */
describe('alert delivery', () => {
  let t: TestApp;
  let receiver: Receiver;
  let mail: MailSink;
  let relay: DeliveryRelay;
  const createBudget = budgetMaker(() => t, 'Notify');

  beforeAll(async () => {
    receiver = await Receiver.start();
    mail = await MailSink.start();
    t = await createTestApp({ config: { notify: notifyConfig({ smtpUrl: mail.url, notifyFrom: 'Budgets <budgets@relaycore.test>' }) } });
    relay = t.app.get(DeliveryRelay);
  });

  afterAll(async () => {
    await t.close();
    await receiver.close();
    await mail.close();
  });

  beforeEach(() => {
    receiver.received.length = 0;
    receiver.reply = () => ({ status: 204 });
  });

  const createChannel = async (body: Record<string, unknown>) => {
    const res = await t.request('POST', '/api/v1/notification-channels', body);
    expect(res.status).toBe(201);
    return res.body;
  };

  let seq = 0;
  const webhookChannel = (extra: Record<string, unknown> = {}) =>
    createChannel({ name: `hook-${++seq}`, type: 'webhook', url: receiver.url, ...extra });

  /** A budget of 100 USD with one alert at 50 % routed to `routes`; a usage of 60 fires it. */
  const fireAlert = async (routes: string[]) => {
    const budget = await createBudget({ alerts: [{ id: 'half', threshold: 50, actions: ['notify'], notificationChannels: routes }] });
    const usage = await recordUsage(t, budget.id, 60);
    return { budget, usage };
  };

  const deliveriesOf = async (query: string) => (await t.request('GET', `/api/v1/notification-deliveries?${query}`)).body.data;

  describe('the outbox commits with the alert', () => {
    it('a usage that crosses a threshold writes the alert, its budget.alert.triggered event and a delivery, together', async () => {
      const channel = await webhookChannel();
      const { budget, usage } = await fireAlert([channel.name]);
      const [alert] = await t.sql(`SELECT * FROM budget_alert_history WHERE budget_id = $1`, [budget.id]);
      const [event] = await t.sql(`SELECT * FROM notification_events WHERE alert_history_id = $1`, [alert.id]);
      expect(event.type).toBe('budget.alert.triggered');
      expect(event.data).toEqual({
        budget: { id: budget.id, name: budget.name, scopeType: 'team', scopeId: budget.scopeId, currency: 'USD', amount: 100 },
        alert: {
          id: alert.id, alertId: 'half', type: 'actual', threshold: 50, actions: ['notify'], percentUsed: 60, amount: 60,
          periodStart: expect.stringMatching(/Z$/), periodEnd: expect.stringMatching(/Z$/), triggeredAt: expect.stringMatching(/Z$/),
        },
        status: { currentAmount: 60, remainingAmount: 40, percentUsed: 60, status: 'normal' },
        usageRecordId: usage.id,
      });
      expect(new Date(event.data.alert.periodEnd).getTime()).toBeGreaterThan(new Date(event.data.alert.periodStart).getTime());
      const deliveries = await t.sql(`SELECT channel_id, status FROM notification_deliveries WHERE event_id = $1`, [event.id]);
      expect(deliveries).toEqual([{ channel_id: channel.id, status: 'pending' }]);
    });

    it('a rolled-back usage leaves neither the alert nor any event or delivery', async () => {
      const channel = await webhookChannel();
      const budget = await createBudget({ alerts: [{ id: 'half', threshold: 50, actions: ['notify'], notificationChannels: [channel.id] }] });
      const before = await t.sql(`SELECT count(*)::int AS n FROM notification_events`);
      await t.sql('BEGIN');
      await t.sql(`INSERT INTO budget_usage_records (budget_id, amount, currency, occurred_at) VALUES ($1, 70, 'USD', now())`, [budget.id]);
      const inside = await t.sql(
        `SELECT (SELECT count(*) FROM budget_alert_history WHERE budget_id = $1)::int AS alerts,
                (SELECT count(*) FROM notification_events WHERE budget_id = $1)::int AS events,
                (SELECT count(*) FROM notification_deliveries d JOIN notification_events e ON e.id = d.event_id WHERE e.budget_id = $1)::int AS deliveries`,
        [budget.id],
      );
      expect(inside).toEqual([{ alerts: 1, events: 1, deliveries: 1 }]);
      await t.sql('ROLLBACK');
      const after = await t.sql(
        `SELECT (SELECT count(*) FROM budget_alert_history WHERE budget_id = $1)::int AS alerts,
                (SELECT count(*) FROM notification_events)::int AS events`,
        [budget.id],
      );
      expect(after).toEqual([{ alerts: 0, events: before[0].n }]);
      expect(await relay.deliverDue()).toBeGreaterThanOrEqual(0);
      expect(receiver.received.filter((r) => JSON.parse(r.body).data?.budget?.id === budget.id)).toEqual([]);
    });

    it('every alert row has exactly one event and every alert event its alert row (batch path included)', async () => {
      const budget = await createBudget({ alerts: [{ id: 'a', threshold: 10, actions: ['notify'] }, { id: 'b', threshold: 20, actions: ['notify'] }] });
      const batch = await t.request('POST', `/api/v1/budgets/${budget.id}/usage/batch`, {
        records: [{ amount: 15, currency: 'USD', requestId: 'b-1' }, { amount: 10, currency: 'USD', requestId: 'b-2' }],
      });
      expect(batch.status).toBeLessThan(300);
      const [mismatch] = await t.sql(
        `SELECT (SELECT count(*) FROM budget_alert_history h WHERE NOT EXISTS (SELECT 1 FROM notification_events e WHERE e.alert_history_id = h.id))::int AS alerts_without_event,
                (SELECT count(*) FROM notification_events e WHERE e.type = 'budget.alert.triggered' AND e.alert_history_id IS NULL)::int AS events_without_alert,
                (SELECT count(*) FROM budget_alert_history WHERE budget_id = $1)::int AS fired`,
        [budget.id],
      );
      expect(mismatch).toEqual({ alerts_without_event: 0, events_without_alert: 0, fired: 2 });
    });
  });

  describe('webhooks', () => {
    it('are signed per Standard Webhooks (verified with standardwebhooks), and a retry carries the same webhook-id', async () => {
      const channel = await webhookChannel();
      receiver.reply = (_request, index) => ({ status: index === 0 ? 500 : 204 });
      const { budget } = await fireAlert([channel.id]);
      await relay.deliverDue();
      expect(receiver.received).toHaveLength(1);
      await sleep(300);
      await relay.deliverDue();
      expect(receiver.received).toHaveLength(2);
      const [first, second] = receiver.received;
      expect(first.headers['webhook-id']).toBe(second.headers['webhook-id']);
      const verified = new Webhook(channel.secret).verify(second.body, second.headers as Record<string, string>) as any;
      expect(verified).toMatchObject({ type: 'budget.alert.triggered', timestamp: expect.any(String), data: { budget: { id: budget.id } } });
      expect(() => new Webhook(`whsec_${Buffer.alloc(32, 7).toString('base64')}`).verify(second.body, second.headers as Record<string, string>)).toThrow();
      const [delivery] = await deliveriesOf(`budgetId=${budget.id}`);
      expect(delivery).toMatchObject({ status: 'delivered', eventId: first.headers['webhook-id'], channelId: channel.id, attemptCount: 2 });
      expect(delivery.attempts).toEqual([
        expect.objectContaining({ httpStatus: 500, outcome: 'retry', durationMs: expect.any(Number), attemptedAt: expect.any(String) }),
        expect.objectContaining({ httpStatus: 204, outcome: 'delivered', error: null }),
      ]);
    });

    it('410 disables the channel; its other pending deliveries fail without being sent', async () => {
      const channel = await webhookChannel();
      receiver.reply = () => ({ status: 410 });
      const first = await fireAlert([channel.name]);
      await relay.deliverDue();
      expect(receiver.received).toHaveLength(1);
      const after = await t.request('GET', `/api/v1/notification-channels/${channel.id}`);
      expect(after.body).toMatchObject({ enabled: false, disabledReason: expect.stringContaining('410') });
      const [gone] = await deliveriesOf(`budgetId=${first.budget.id}`);
      expect(gone).toMatchObject({ status: 'failed', lastError: expect.stringContaining('410') });

      await t.sql(`SELECT notification_enqueue('notification.test', '{}'::jsonb, '[]'::jsonb)`);
      await t.sql(`INSERT INTO notification_deliveries (event_id, channel_id)
                   SELECT id, $1 FROM notification_events ORDER BY occurred_at DESC LIMIT 1`, [channel.id]);
      await relay.deliverDue();
      expect(receiver.received).toHaveLength(1);
      const [skipped] = await deliveriesOf(`channelId=${channel.id}&status=failed`);
      expect(skipped.lastError).toMatch(/disabled/);
    });

    it('429 with Retry-After is not retried before the time it names', async () => {
      const channel = await webhookChannel();
      receiver.reply = (_request, index) => (index === 0 ? { status: 429, headers: { 'retry-after': '2' } } : { status: 200 });
      const { budget } = await fireAlert([channel.id]);
      await relay.deliverDue();
      await sleep(600); // the schedule's own step (0.2 s) has passed; Retry-After has not
      await relay.deliverDue();
      expect(receiver.received).toHaveLength(1);
      const [waiting] = await deliveriesOf(`budgetId=${budget.id}`);
      const wait = new Date(waiting.nextAttemptAt).getTime() - new Date(waiting.attempts[0].attemptedAt).getTime();
      expect(wait).toBeGreaterThanOrEqual(1900);
      await sleep(Math.max(0, new Date(waiting.nextAttemptAt).getTime() - Date.now()) + 100);
      await relay.deliverDue();
      expect(receiver.received).toHaveLength(2);
      expect(receiver.received[1].receivedAt - receiver.received[0].receivedAt).toBeGreaterThanOrEqual(1900);
    });

    it('after the schedule it is failed; a manual retry sends it again with the same webhook-id', async () => {
      const channel = await webhookChannel();
      receiver.reply = () => ({ status: 503 });
      const { budget } = await fireAlert([channel.id]);
      for (let i = 0; i < 4; i++) {
        await relay.deliverDue();
        await sleep(250);
      }
      const [failed] = await deliveriesOf(`budgetId=${budget.id}`);
      expect(failed).toMatchObject({ status: 'failed', attemptCount: 4 });
      expect(receiver.received).toHaveLength(4);

      receiver.reply = () => ({ status: 202 });
      const retried = await t.request('POST', `/api/v1/notification-deliveries/${failed.id}/retry`);
      expect(retried.status).toBe(202);
      expect(retried.body).toMatchObject({ status: 'pending', attemptCount: 0 });
      await relay.deliverDue();
      const [delivered] = await deliveriesOf(`budgetId=${budget.id}`);
      expect(delivered).toMatchObject({ status: 'delivered', attempts: expect.any(Array) });
      expect(delivered.attempts).toHaveLength(5);
      expect(new Set(receiver.ids())).toEqual(new Set([failed.eventId]));
      expectProblem(await t.request('POST', `/api/v1/notification-deliveries/${failed.id}/retry`), 409);
    });

    it('a slow receiver, a redirect or a huge answer holds no worker beyond the timeout', async () => {
      const channel = await webhookChannel();
      receiver.reply = (_request, index) =>
        [{ status: 200, delayMs: 5000 }, { status: 301, headers: { location: 'http://169.254.169.254/' } }, { status: 200, body: Buffer.alloc(5 * 1024 * 1024, 120) }][index] ?? { status: 500 };
      const { budget } = await fireAlert([channel.id]);
      const started = Date.now();
      await relay.deliverDue();
      expect(Date.now() - started).toBeLessThan(3500);
      await sleep(250);
      await relay.deliverDue();
      await sleep(250);
      await relay.deliverDue();
      const [delivery] = await deliveriesOf(`budgetId=${budget.id}`);
      expect(delivery.attempts.map((a: any) => [a.httpStatus, a.outcome])).toEqual([[null, 'retry'], [301, 'retry'], [200, 'delivered']]);
      expect(delivery.attempts[0].error).toMatch(/no answer within 2000 ms/);
      expect(receiver.received).toHaveLength(3);
    });

    it('deliveries to one receiver reuse kept-alive connections (one TLS handshake per connection, not per delivery)', async () => {
      const channel = await webhookChannel();
      const connectionsBefore = receiver.connections;
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < 4; i++) await fireAlert([channel.id]);
        await relay.deliverDue();
      }
      expect(receiver.received).toHaveLength(12);
      expect(receiver.connections - connectionsBefore).toBeLessThanOrEqual(4);
    });

    it('after a rotation both secrets sign for the overlap; the new secret is only in the answer', async () => {
      const channel = await webhookChannel();
      const rotated = await t.request('POST', `/api/v1/notification-channels/${channel.id}/rotate-secret`);
      expect(rotated.status).toBe(200);
      expect(rotated.body.secret).toMatch(/^whsec_/);
      expect(rotated.body.secret).not.toBe(channel.secret);
      expect(new Date(rotated.body.previousSecretExpiresAt).getTime() - Date.now()).toBeGreaterThan(23.9 * 3600 * 1000);
      const test = await t.request('POST', `/api/v1/notification-channels/${channel.id}/test`);
      expect(test.status).toBe(202);
      await relay.deliverDue();
      const [request] = receiver.received;
      expect(String(request.headers['webhook-signature']).split(' ')).toHaveLength(2);
      for (const secret of [channel.secret, rotated.body.secret]) {
        expect(new Webhook(secret).verify(request.body, request.headers as Record<string, string>)).toMatchObject({ type: 'notification.test' });
      }
      const listed = JSON.stringify((await t.request('GET', '/api/v1/notification-channels?limit=500')).body);
      expect(listed).not.toContain(channel.secret.slice(6));
      expect(listed).not.toContain(rotated.body.secret.slice(6));
      const [stored] = await t.sql(`SELECT secret_encrypted, previous_secret_encrypted FROM notification_channels WHERE id = $1`, [channel.id]);
      expect(stored.secret_encrypted).toMatch(/^v1:/);
      expect(JSON.stringify(stored)).not.toContain(rotated.body.secret.slice(6));
      expect(JSON.stringify(stored)).not.toContain(channel.secret.slice(6));
    });
  });

  describe('retention (NOTIFY_RETENTION_DAYS, 90 by default)', () => {
    it('finished events older than it go with their deliveries and attempts; pending and recent ones, and the alerts, stay', async () => {
      const channel = await webhookChannel();
      const delivered = await fireAlert([channel.id]);
      await relay.deliverDue();
      receiver.reply = () => ({ status: 503, headers: { 'retry-after': '3600' } });
      const pending = await fireAlert([channel.id]);
      await relay.deliverDue();
      receiver.reply = () => ({ status: 204 });
      const recent = await fireAlert([channel.id]);
      await relay.deliverDue();
      const eventOf = async (budgetId: string) => (await t.sql(`SELECT id FROM notification_events WHERE budget_id = $1`, [budgetId]))[0]?.id;
      const [oldDelivered, oldPending, recentDelivered] = [await eventOf(delivered.budget.id), await eventOf(pending.budget.id), await eventOf(recent.budget.id)];
      await t.sql(`UPDATE notification_events SET occurred_at = now() - interval '91 days' WHERE id = ANY ($1::uuid[])`, [[oldDelivered, oldPending]]);

      expect(await relay.purgeFinished()).toBe(1);
      const left = await t.sql(`SELECT id FROM notification_events WHERE id = ANY ($1::uuid[]) ORDER BY id`, [[oldDelivered, oldPending, recentDelivered]]);
      expect(left.map((row: { id: string }) => row.id).sort()).toEqual([oldPending, recentDelivered].sort());
      const orphans = await t.sql(
        `SELECT (SELECT count(*) FROM notification_deliveries WHERE event_id = $1)::int AS deliveries,
                (SELECT count(*) FROM notification_attempts a JOIN notification_deliveries d ON d.id = a.delivery_id WHERE d.event_id = $1)::int AS attempts,
                (SELECT count(*) FROM budget_alert_history WHERE budget_id = $2)::int AS alerts`,
        [oldDelivered, delivered.budget.id],
      );
      expect(orphans).toEqual([{ deliveries: 0, attempts: 0, alerts: 1 }]);
      expect(await relay.purgeFinished()).toBe(0);
    });
  });

  describe('Slack and email', () => {
    it('Slack gets an incoming-webhook message: text plus blocks with the budget, percentage, amount', async () => {
      const channel = await createChannel({ name: 'slack-ops', type: 'slack', url: receiver.url });
      expect(channel.secret).toBeUndefined();
      const { budget } = await fireAlert(['slack']);
      await relay.deliverDue();
      const messages = receiver.received.map((r) => JSON.parse(r.body)).filter((m) => m.text?.includes(budget.name));
      expect(messages).toHaveLength(1);
      const [message] = messages;
      expect(message.text).toContain('60%');
      expect(message.blocks[0]).toEqual({ type: 'header', text: { type: 'plain_text', text: `Budget alert: ${budget.name}` } });
      expect(message.blocks.every((block: any) => ['header', 'section'].includes(block.type))).toBe(true);
      expect(JSON.stringify(message.blocks)).toContain('60 of 100 USD');
      await t.request('DELETE', `/api/v1/notification-channels/${channel.id}`);
    });

    it('email goes over SMTP_URL from NOTIFY_FROM with text and HTML parts', async () => {
      const channel = await createChannel({ name: 'finance-mail', type: 'email', recipients: ['finance@example.com', 'cfo@example.com'] });
      const { budget } = await fireAlert([channel.name]);
      await relay.deliverDue();
      const mails = mail.messages.filter((m) => m.subject?.includes(budget.name));
      expect(mails).toHaveLength(1);
      const [message] = mails;
      expect(message.from?.value).toEqual([{ name: 'Budgets', address: 'budgets@relaycore.test' }]);
      expect((Array.isArray(message.to) ? message.to : [message.to]).map((a) => a?.text).join(',')).toContain('cfo@example.com');
      expect(message.text).toContain('60 of 100 USD');
      expect(message.html).toContain('<table>');
      const [delivery] = await deliveriesOf(`budgetId=${budget.id}`);
      expect(delivery).toMatchObject({ status: 'delivered', channelType: 'email' });
      await t.request('DELETE', `/api/v1/notification-channels/${channel.id}`);
    });
  });

  it('metrics: attempts by channel type and outcome, attempt latency, queue depth, oldest pending age', async () => {
    const metrics = await t.request('GET', '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.body).toMatch(/notification_deliveries_total\{channel_type="webhook",outcome="delivered"\} [1-9]/);
    expect(metrics.body).toMatch(/notification_deliveries_total\{channel_type="email",outcome="delivered"\} 1/);
    expect(metrics.body).toMatch(/notification_attempt_duration_seconds_count\{channel_type="slack"\} 1/);
    expect(metrics.body).toMatch(/notification_queue_depth \d+/);
    expect(metrics.body).toMatch(/notification_oldest_pending_seconds [\d.e+-]+/);
  });

  describe('routing in alert rules', () => {
    it('accepts type words, channel names and ids; an unknown entry is a 422 naming the field', async () => {
      const channel = await webhookChannel();
      await createBudget({ alerts: [{ threshold: 80, actions: ['notify'], notificationChannels: ['email', 'slack', channel.name, channel.id] }] });
      const res = await t.request('POST', '/api/v1/budgets', {
        name: 'Routed', scopeType: 'team', scopeId: 'routed', amount: 10, currency: 'USD', period: 'monthly', startDate: '2025-01-01T00:00:00Z',
        alerts: [{ threshold: 80, actions: ['notify'], notificationChannels: ['email', 'no-such-channel'] }],
      });
      expectProblem(res, 422);
      expect(res.body).toMatchObject({ code: 'UNKNOWN_NOTIFICATION_CHANNEL', errors: [{ field: 'alerts.0.notificationChannels.1', message: expect.any(String) }] });
      const budget = await createBudget();
      const update = await t.request('PUT', `/api/v1/budgets/${budget.id}`, {
        alerts: [{ threshold: 80, actions: ['notify'], notificationChannels: ['00000000-0000-4000-8000-000000000000'] }],
      });
      expectProblem(update, 422);
      expect((await t.request('GET', `/api/v1/budgets/${budget.id}`)).body.version).toBe(1);
    });
  });
});
