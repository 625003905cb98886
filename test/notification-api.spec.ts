import { postJson, TransportError } from '../src/notification/guarded-http';
import { DeliveryRelay } from '../src/notification/delivery-relay.service';
import { checkSecretsKey } from '../src/notification/notification.bootstrap';
import { NotificationChannelService } from '../src/notification/notification-channel.service';
import { expectProblem } from './setup/problem';
import { createTestApp, type TestApp } from './setup/test-app';
import { notifyConfig, Receiver } from './notification.support';

/**
 * The channel and delivery endpoints (SPEC §13): bad input answers problem+json naming the field
 * and changes nothing, roles, and the SSRF rules at create time (IP literals) and at send time
 * (the resolved address).
 */
describe('notification channels and deliveries API', () => {
  let t: TestApp;
  let receiver: Receiver;
  const path = '/api/v1/notification-channels';
  const missing = '00000000-0000-4000-8000-000000000000';

  beforeAll(async () => {
    receiver = await Receiver.start();
    t = await createTestApp({ config: { notify: notifyConfig() } });
  });

  afterAll(async () => {
    await t.close();
    await receiver.close();
  });

  const channelCount = async () => (await t.sql(`SELECT count(*)::int AS n FROM notification_channels`))[0].n;

  it('refuses bad channel bodies with 400 naming the field, and stores nothing', async () => {
    const before = await channelCount();
    const cases: [unknown, string][] = [
      [{}, 'name'],
      [{ name: 'x', type: 'sms', url: receiver.url }, 'type'],
      [{ name: 'x', type: 'webhook' }, 'url'],
      [{ name: 'x', type: 'webhook', url: 'ftp://example.com/' }, 'url'],
      [{ name: 'x', type: 'webhook', url: 'https://user:pw@example.com/' }, 'url'],
      [{ name: 'x', type: 'webhook', url: 'not a url' }, 'url'],
      [{ name: 'x', type: 'webhook', url: receiver.url, secret: 'whsec_short' }, 'secret'],
      [{ name: 'x', type: 'webhook', url: receiver.url, extra: 1 }, 'extra'],
      [{ name: 'x', type: 'slack', url: receiver.url, secret: `whsec_${Buffer.alloc(24).toString('base64')}` }, 'secret'],
      [{ name: 'x', type: 'email' }, 'recipients'],
      [{ name: 'x', type: 'email', recipients: ['finance@example.com', 'not-an-address'] }, 'recipients'],
      [{ name: 'x', type: 'email', recipients: [] }, 'recipients'],
      [{ name: 'x', type: 'email', recipients: Array.from({ length: 21 }, (_, i) => `a${i}@example.com`) }, 'recipients'],
      [{ name: 'x', type: 'email', recipients: ['a@example.com'], url: receiver.url }, 'url'],
      [{ name: 'email', type: 'email', recipients: ['a@example.com'] }, 'name'],
      [{ name: missing, type: 'email', recipients: ['a@example.com'] }, 'name'],
      [{ name: '', type: 'email', recipients: ['a@example.com'] }, 'name'],
      [{ name: 'x', type: 'webhook', url: receiver.url, enabled: 'yes' }, 'enabled'],
    ];
    for (const [body, field] of cases) {
      const res = await t.request('POST', path, body);
      expectProblem(res, 400);
      expect(res.body.errors.map((e: { field: string }) => e.field)).toContain(field);
    }
    expectProblem(await t.request('POST', path, '{"name":', { 'content-type': 'application/json' }), 400);
    expectProblem(await t.request('POST', path, 'name=x', { 'content-type': 'text/plain' }), [400, 415]);
    expect(await channelCount()).toBe(before);
  });

  it('refuses link-local and metadata IP literals at create time even with private networks allowed', async () => {
    for (const url of [
      'http://169.254.169.254/latest/meta-data', 'http://[fe80::1]/hook', 'http://[fd00:ec2::254]/', 'http://[::ffff:169.254.169.254]/',
      'http://[::ffff:a9fe:a9fe]/', 'http://0.0.0.0:8080/',
    ]) {
      const res = await t.request('POST', path, { name: 'meta', type: 'webhook', url });
      expectProblem(res, 422);
      expect(res.body).toMatchObject({ code: 'URL_NOT_ALLOWED', errors: [{ field: 'url' }] });
    }
  });

  it('answers 409 for a taken name, 404 for unknown ids, 400 for malformed ones, on every channel route', async () => {
    const hook = await t.request('POST', path, { name: 'taken', type: 'webhook', url: receiver.url });
    expect(hook.status).toBe(201);
    const dup = await t.request('POST', path, { name: 'taken', type: 'slack', url: receiver.url });
    expectProblem(dup, 409);
    expect(dup.body.code).toBe('CHANNEL_NAME_TAKEN');
    for (const [method, suffix] of [['GET', ''], ['PUT', ''], ['DELETE', ''], ['POST', '/test'], ['POST', '/rotate-secret']] as const) {
      expectProblem(await t.request(method, `${path}/not-a-uuid${suffix}`, method === 'PUT' ? { enabled: false } : undefined), 400);
      const absent = await t.request(method, `${path}/${missing}${suffix}`, method === 'PUT' ? { enabled: false } : undefined);
      expectProblem(absent, 404);
      expect(absent.body.code).toBe('CHANNEL_NOT_FOUND');
    }
    const id = hook.body.id;
    for (const body of [{ type: 'slack' }, { url: null }, { recipients: ['a@example.com'] }, { secret: hook.body.secret }, { name: 'slack' }, { url: 'http://169.254.169.254/' }]) {
      expectProblem(await t.request('PUT', `${path}/${id}`, body), [400, 422]);
    }
    expect((await t.request('PUT', `${path}/${id}`, { name: 'renamed' })).body.name).toBe('renamed');
    const other = await t.request('POST', path, { name: 'other', type: 'webhook', url: receiver.url });
    expectProblem(await t.request('PUT', `${path}/${other.body.id}`, { name: 'renamed' }), 409);
    const mail = await t.request('POST', path, { name: 'mail', type: 'email', recipients: ['a@example.com'] });
    const rotate = await t.request('POST', `${path}/${mail.body.id}/rotate-secret`);
    expectProblem(rotate, 422);
    expect(rotate.body.code).toBe('NOT_A_WEBHOOK_CHANNEL');
    expect((await t.request('PUT', `${path}/${mail.body.id}`, { enabled: false })).body.enabled).toBe(false);
    expectProblem(await t.request('POST', `${path}/${mail.body.id}/test`), 409);
    expect((await t.request('DELETE', `${path}/${mail.body.id}`)).status).toBe(204);
    expectProblem(await t.request('GET', `${path}/${mail.body.id}`), 404);
    expectProblem(await t.request('GET', `${path}?limit=0`), 400);
    expectProblem(await t.request('GET', `${path}?cursor=forged`), 400);
  });

  it('refuses bad delivery queries and retries', async () => {
    for (const query of ['status=lost', 'channelId=x', 'budgetId=1', 'cursor=abc', 'limit=501', 'other=1']) {
      expectProblem(await t.request('GET', `/api/v1/notification-deliveries?${query}`), 400);
    }
    expectProblem(await t.request('POST', '/api/v1/notification-deliveries/nope/retry'), 400);
    const absent = await t.request('POST', `/api/v1/notification-deliveries/${missing}/retry`);
    expectProblem(absent, 404);
    expect(absent.body.code).toBe('DELIVERY_NOT_FOUND');
    const hook = await t.request('POST', path, { name: 'retry-hook', type: 'webhook', url: receiver.url });
    const test = await t.request('POST', `${path}/${hook.body.id}/test`);
    const pending = await t.request('POST', `/api/v1/notification-deliveries/${test.body.deliveryId}/retry`);
    expectProblem(pending, 409);
    expect(pending.body.code).toBe('DELIVERY_NOT_FAILED');
  });

  it('channels are for admins; viewers may read deliveries', async () => {
    const as = (role: 'viewer' | 'service') => ({ authorization: `Bearer ${t.keys[role]}` });
    expectProblem(await t.request('POST', path, { name: 'v', type: 'webhook', url: receiver.url }, as('service')), 403);
    expectProblem(await t.request('GET', path, undefined, as('viewer')), 403);
    expect((await t.request('GET', '/api/v1/notification-deliveries', undefined, as('viewer'))).status).toBe(200);
    expectProblem(await t.request('POST', `/api/v1/notification-deliveries/${missing}/retry`, undefined, as('service')), 403);
  });
});

describe('SSRF guard without NOTIFY_ALLOW_PRIVATE_NETWORKS', () => {
  let t: TestApp;
  let receiver: Receiver;

  beforeAll(async () => {
    receiver = await Receiver.start();
    t = await createTestApp({ config: { notify: notifyConfig({ allowPrivateNetworks: false, retrySchedule: [] }) } });
  });

  afterAll(async () => {
    await t.close();
    await receiver.close();
  });

  it('refuses loopback and private IP literals at create time', async () => {
    for (const url of ['http://127.0.0.1:8080/', 'http://10.1.2.3/', 'http://[::1]/', 'http://192.168.0.10/', 'http://[::ffff:7f00:1]/']) {
      const res = await t.request('POST', '/api/v1/notification-channels', { name: 'private', type: 'webhook', url });
      expectProblem(res, 422);
      expect(res.body.errors).toEqual([{ field: 'url', message: expect.stringMatching(/loopback or private/) }]);
    }
  });

  it('checks the resolved address at send time: a name that resolves to loopback is never connected to', async () => {
    const url = receiver.url.replace('127.0.0.1', 'localhost');
    const channel = await t.request('POST', '/api/v1/notification-channels', { name: 'by-name', type: 'webhook', url });
    expect(channel.status).toBe(201);
    const test = await t.request('POST', `/api/v1/notification-channels/${channel.body.id}/test`);
    await t.app.get(DeliveryRelay).deliverDue();
    const [delivery] = (await t.request('GET', `/api/v1/notification-deliveries?channelId=${channel.body.id}`)).body.data;
    expect(delivery).toMatchObject({ id: test.body.deliveryId, status: 'failed' });
    expect(delivery.attempts[0].error).toMatch(/localhost resolves to .* loopback or private/);
    expect(receiver.received).toHaveLength(0);
    await expect(postJson(url, '{}', {}, { timeoutMs: 1000, allowPrivateNetworks: false })).rejects.toThrow(TransportError);
    await expect(postJson('http://169.254.169.254/', '{}', {}, { timeoutMs: 1000, allowPrivateNetworks: true })).rejects.toThrow(/never reachable/);
    expect(receiver.received).toHaveLength(0);
  });

  it('refuses to start in production without SECRETS_KEY once channels exist', async () => {
    const production = await createTestApp({ databaseUrl: t.databaseUrl, config: { nodeEnv: 'production', notify: notifyConfig({ secretsKey: undefined }) } });
    try {
      await expect(checkSecretsKey(production.app.get(NotificationChannelService))).rejects.toThrow(/SECRETS_KEY is required: 1 notification channel/);
      await expect(checkSecretsKey(t.app.get(NotificationChannelService))).resolves.toBeUndefined();
      const http = await production.request('POST', '/api/v1/notification-channels', { name: 'prod', type: 'webhook', url: 'http://hooks.example.com/' });
      expectProblem(http, 400);
      expect(http.body.errors).toEqual([{ field: 'url', message: 'must be an https URL in production' }]);
      const noKey = await production.request('POST', '/api/v1/notification-channels', { name: 'prod', type: 'webhook', url: 'https://hooks.example.com/' });
      expectProblem(noKey, 503);
      expect(noKey.body.code).toBe('SECRETS_KEY_MISSING');
    } finally {
      await production.close();
    }
  });
});
