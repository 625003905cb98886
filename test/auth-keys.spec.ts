import { createHash } from 'node:crypto';
import { Logger } from '@nestjs/common';
import { ApiKeyRepository } from '../src/auth/api-key.repository';
import { createTestApp, type TestApp } from './setup/test-app';

const BUDGET = {
  name: 'Auth spec budget',
  scopeType: 'team',
  scopeId: 'team-auth',
  amount: 100,
  currency: 'USD',
  period: 'monthly',
  startDate: '2025-01-01T00:00:00Z',
};
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const waitFor = async (predicate: () => Promise<boolean>, timeoutMs = 3000) => {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((done) => setTimeout(done, 25));
  }
};

describe('API keys', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  describe('the endpoints', () => {
    it('POST /api-keys answers 201 with the key, once, and the key works at its role at once', async () => {
      const created = await t.request('POST', '/api/v1/api-keys', { name: 'relaycore', role: 'service' });
      expect(created.status).toBe(201);
      expect(Object.keys(created.body).sort()).toEqual(['createdAt', 'id', 'key', 'name', 'prefix', 'role']);
      expect(created.body).toMatchObject({ name: 'relaycore', role: 'service' });
      expect(created.body.key).toMatch(/^rcb_[A-Za-z0-9_-]{43}$/);
      expect(created.body.prefix).toBe(created.body.key.slice(0, 12));
      expect(new Date(created.body.createdAt).toISOString()).toBe(created.body.createdAt);

      const key = created.body.key;
      expect((await t.request('GET', '/api/v1/budgets', undefined, bearer(key))).status).toBe(200);
      expect((await t.request('GET', '/api/v1/budgets', undefined, { 'x-api-key': key })).status).toBe(200);
      const denied = await t.request('POST', '/api/v1/budgets', BUDGET, bearer(key));
      expect(denied.status).toBe(403);
      expect(denied.body).toMatchObject({ status: 403, code: 'ROLE_TOO_LOW' });
    });

    it('GET /api-keys lists keys without the key or its hash', async () => {
      const created = await t.request('POST', '/api/v1/api-keys', { name: 'listed', role: 'viewer' });
      const list = await t.request('GET', '/api/v1/api-keys?limit=500');
      expect(list.status).toBe(200);
      expect(list.body.nextCursor).toBeNull();
      const listed = list.body.data.find((key: { id: string }) => key.id === created.body.id);
      expect(listed).toEqual({
        id: created.body.id,
        name: 'listed',
        role: 'viewer',
        prefix: created.body.prefix,
        createdBy: 'test-admin',
        createdAt: created.body.createdAt,
        lastUsedAt: null,
        revokedAt: null,
      });
      expect(JSON.stringify(list.body)).not.toContain(created.body.key);
      expect(JSON.stringify(list.body)).not.toContain(sha256(created.body.key));
    });

    it('GET /api-keys pages with a cursor and hides revoked keys unless asked', async () => {
      const first = await t.request('GET', '/api/v1/api-keys?limit=2');
      expect(first.body.data).toHaveLength(2);
      const second = await t.request('GET', `/api/v1/api-keys?limit=2&cursor=${first.body.nextCursor}`);
      expect(second.status).toBe(200);
      expect(second.body.data[0].id).not.toBe(first.body.data[1].id);

      const forgeries = [
        ['2025-01-01T00:00:00.000000Z', 'x\u0000'],
        ['\u0000', '6f1c3a43-6b5f-4d3e-9a59-1f0c2b0a7c11'],
        'x',
      ];
      for (const forged of forgeries) {
        const cursor = Buffer.from(JSON.stringify(forged)).toString('base64url');
        const refused = await t.request('GET', `/api/v1/api-keys?cursor=${cursor}`);
        expect({ status: refused.status, code: refused.body.code }).toEqual({ status: 400, code: 'INVALID_CURSOR' });
      }

      const revoked = await t.createKey('viewer', 'to-hide');
      await t.request('DELETE', `/api/v1/api-keys/${revoked.id}`);
      const live = await t.request('GET', '/api/v1/api-keys?limit=500');
      expect(live.body.data.map((key: { id: string }) => key.id)).not.toContain(revoked.id);
      const all = await t.request('GET', '/api/v1/api-keys?limit=500&includeRevoked=true');
      const hidden = all.body.data.find((key: { id: string }) => key.id === revoked.id);
      expect(hidden.revokedAt).toEqual(expect.any(String));
    });

    it('DELETE /api-keys/:id revokes (204); the key is refused at once; again or unknown → 404', async () => {
      const created = await t.createKey('admin', 'short-lived');
      expect((await t.request('GET', '/api/v1/budgets', undefined, bearer(created.key))).status).toBe(200);
      expect((await t.request('DELETE', `/api/v1/api-keys/${created.id}`)).status).toBe(204);
      const refused = await t.request('GET', '/api/v1/budgets', undefined, bearer(created.key));
      expect(refused.status).toBe(401);
      expect(refused.body.code).toBe('API_KEY_INVALID');
      const again = await t.request('DELETE', `/api/v1/api-keys/${created.id}`);
      expect({ status: again.status, code: again.body?.code }).toEqual({ status: 404, code: 'API_KEY_NOT_FOUND' });
      expect((await t.request('DELETE', '/api/v1/api-keys/6f1c3a43-6b5f-4d3e-9a59-1f0c2b0a7c11')).status).toBe(404);
      expect((await t.request('DELETE', '/api/v1/api-keys/not-a-uuid')).status).toBe(400);
    });

    it('refuses bad bodies with 400 listing the fields', async () => {
      const bad = await t.request('POST', '/api/v1/api-keys', { name: ' ', role: 'root', extra: 1 });
      expect(bad.status).toBe(400);
      expect(bad.body.errors.map((error: { field: string }) => error.field).sort()).toEqual(['extra', 'name', 'role']);
      expect((await t.request('POST', '/api/v1/api-keys', { name: 'x'.repeat(101), role: 'viewer' })).status).toBe(400);
    });

    it('only admin keys manage keys', async () => {
      for (const role of ['viewer', 'service'] as const) {
        const headers = bearer(t.keys[role]);
        expect((await t.request('POST', '/api/v1/api-keys', { name: 'x', role: 'admin' }, headers)).status).toBe(403);
        expect((await t.request('GET', '/api/v1/api-keys', undefined, headers)).status).toBe(403);
      }
    });
  });

  describe('storage', () => {
    it('stores only a SHA-256 hash: no column of any row holds a key', async () => {
      const created = await t.request('POST', '/api/v1/api-keys', { name: 'stored', role: 'service' });
      const plaintextKeys = [...Object.values(t.keys), created.body.key];
      const rows = await t.sql('SELECT * FROM api_keys');
      expect(rows.length).toBeGreaterThanOrEqual(plaintextKeys.length);
      const everything = JSON.stringify(rows);
      for (const key of plaintextKeys) {
        expect(everything).not.toContain(key);
        expect(everything).not.toContain(key.slice(12));
      }
      const row = rows.find((r) => r.id === created.body.id);
      expect(row.key_hash).toBe(sha256(created.body.key));
      expect(row.prefix).toBe(created.body.key.slice(0, 12));
      expect(row.created_by).toBe('test-admin');
    });

    it('records last use asynchronously, at most once a minute', async () => {
      const created = await t.createKey('viewer', 'touched');
      await t.request('GET', '/api/v1/budgets', undefined, bearer(created.key));
      const lastUsed = async () =>
        (await t.sql('SELECT last_used_at FROM api_keys WHERE id = $1', [created.id]))[0].last_used_at;
      await waitFor(async () => (await lastUsed()) !== null);
      const first = (await lastUsed()).getTime();
      await t.request('GET', '/api/v1/budgets', undefined, bearer(created.key));
      await new Promise((done) => setTimeout(done, 200));
      expect((await lastUsed()).getTime()).toBe(first);
    });
  });

  describe('the request path', () => {
    it('looks a key up once, then answers from memory; concurrent first requests share one query', async () => {
      const repository = t.app.get(ApiKeyRepository);
      const lookups = jest.spyOn(repository, 'findLiveByHash');
      try {
        const created = await t.createKey('viewer', 'hot');
        const statuses = await Promise.all(
          Array.from({ length: 20 }, () => t.request('GET', '/api/v1/budgets', undefined, bearer(created.key))),
        );
        for (let i = 0; i < 20; i++) await t.request('GET', '/api/v1/budgets', undefined, bearer(created.key));
        expect(statuses.every((response) => response.status === 200)).toBe(true);
        expect(lookups).toHaveBeenCalledTimes(1);

        // Malformed keys never reach the database.
        lookups.mockClear();
        expect((await t.request('GET', '/api/v1/budgets', undefined, bearer('not-a-key'))).status).toBe(401);
        expect(lookups).not.toHaveBeenCalled();
      } finally {
        lookups.mockRestore();
      }
    });

    it('401 says how to authenticate (WWW-Authenticate, problem+json)', async () => {
      const missing = await t.request('GET', '/api/v1/budgets', undefined, { authorization: '' });
      expect(missing.status).toBe(401);
      expect(missing.headers['www-authenticate']).toBe('Bearer realm="relaycore-budget"');
      expect(missing.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(missing.body).toMatchObject({ status: 401, code: 'API_KEY_MISSING', instance: '/api/v1/budgets' });

      const unknown = await t.request('GET', '/api/v1/budgets', undefined, bearer(`rcb_${'B'.repeat(43)}`));
      expect(unknown.headers['www-authenticate']).toBe('Bearer realm="relaycore-budget", error="invalid_token"');
      expect(unknown.body.code).toBe('API_KEY_INVALID');
    });

    it('accepts "bearer" in any case; refuses other schemes and two different keys', async () => {
      const withAuthorization = (authorization: string) =>
        t.request('GET', '/api/v1/budgets', undefined, { authorization });
      expect((await withAuthorization(`bearer ${t.keys.viewer}`)).status).toBe(200);
      expect((await withAuthorization(`Basic ${t.keys.viewer}`)).status).toBe(401);
      const both = { authorization: `Bearer ${t.keys.viewer}`, 'x-api-key': t.keys.admin };
      expect((await t.request('GET', '/api/v1/budgets', undefined, both)).status).toBe(401);
      const same = { authorization: `Bearer ${t.keys.viewer}`, 'x-api-key': t.keys.viewer };
      expect((await t.request('GET', '/api/v1/budgets', undefined, same)).status).toBe(200);
    });

    it('createdBy is the name of the key that made the request', async () => {
      const created = await t.request('POST', '/api/v1/budgets', BUDGET);
      expect(created.status).toBe(201);
      expect(created.body.createdBy).toBe('test-admin');
    });

    it('never logs a key', async () => {
      const calls: unknown[] = [];
      const spies = (['log', 'warn', 'error', 'debug', 'verbose'] as const).map((level) =>
        jest.spyOn(Logger.prototype, level).mockImplementation((...args: unknown[]) => void calls.push(args)),
      );
      try {
        const created = await t.request('POST', '/api/v1/api-keys', { name: 'quiet', role: 'admin' });
        await t.request('GET', '/api/v1/budgets', undefined, bearer(created.body.key));
        await t.request('DELETE', `/api/v1/api-keys/${created.body.id}`);
        await t.request('GET', '/api/v1/budgets', undefined, bearer(created.body.key));
        expect(calls.length).toBeGreaterThan(0);
        expect(JSON.stringify(calls)).not.toContain(created.body.key);
      } finally {
        for (const spy of spies) spy.mockRestore();
      }
    });
  });
});

describe('a revoke on another instance', () => {
  it('takes effect here once the cached verification expires (the TTL)', async () => {
    const t = await createTestApp({ config: { apiKeyCacheTtlMs: 300 } });
    try {
      const created = await t.createKey('viewer', 'elsewhere');
      expect((await t.request('GET', '/api/v1/budgets', undefined, bearer(created.key))).status).toBe(200);
      await t.sql('UPDATE api_keys SET revoked_at = now() WHERE id = $1', [created.id]); // the other instance
      expect((await t.request('GET', '/api/v1/budgets', undefined, bearer(created.key))).status).toBe(200);
      await new Promise((done) => setTimeout(done, 350));
      expect((await t.request('GET', '/api/v1/budgets', undefined, bearer(created.key))).status).toBe(401);
    } finally {
      await t.close();
    }
  });
});

describe('ADMIN_API_KEY', () => {
  it('is an admin key named env-admin, accepted without a row', async () => {
    const adminApiKey = 'env-admin-key-for-the-auth-spec-0123456789';
    const t = await createTestApp({ config: { adminApiKey }, defaultKey: 'none' });
    try {
      const headers = { 'x-api-key': adminApiKey };
      const created = await t.request('POST', '/api/v1/budgets', BUDGET, headers);
      expect(created.status).toBe(201);
      expect(created.body.createdBy).toBe('env-admin');
      const key = await t.request('POST', '/api/v1/api-keys', { name: 'from-env', role: 'viewer' }, headers);
      expect(key.status).toBe(201);
      expect(await t.sql('SELECT 1 FROM api_keys WHERE key_hash = $1', [sha256(adminApiKey)])).toHaveLength(0);
      const almost = await t.request('GET', '/api/v1/budgets', undefined, { 'x-api-key': `${adminApiKey}x` });
      expect(almost.status).toBe(401);
    } finally {
      await t.close();
    }
  });
});

describe('security headers and Swagger UI', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ defaultKey: 'none' });
  });
  afterAll(async () => {
    await t.close();
  });

  it('every response carries helmet headers', async () => {
    for (const path of ['/api/v1/budgets', '/health/live', '/docs']) {
      const response = await t.request('GET', path);
      expect(response.headers['x-content-type-options']).toBe('nosniff');
      expect(response.headers['x-frame-options']).toBe('SAMEORIGIN');
      expect(response.headers['content-security-policy']).toContain("default-src 'self'");
    }
  });

  it('the CSP lets Swagger UI run: no inline script, its assets from this origin, inline styles allowed', async () => {
    const page = await t.request('GET', '/docs');
    expect(page.status).toBe(200);
    const csp = String(page.headers['content-security-policy']);
    expect(csp).toContain("script-src 'self'");
    expect(csp).toMatch(/style-src [^;]*'unsafe-inline'/);
    expect(csp).toMatch(/img-src [^;]*data:/);
    expect(csp).not.toContain('upgrade-insecure-requests');
    const html: string = page.body;
    const scripts = [...html.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts.length).toBeGreaterThanOrEqual(3);
    for (const [, attributes, body] of scripts) {
      expect(attributes).toMatch(/src="\.\/docs\/[\w.-]+\.js"/); // a file from this origin, not inline code
      expect(body.trim()).toBe('');
    }
    expect(html).not.toMatch(/\son[a-z]+=/i); // no inline event handlers (script-src-attr 'none')
    const assets = ['swagger-ui-init.js', 'swagger-ui-bundle.js', 'swagger-ui-standalone-preset.js', 'swagger-ui.css'];
    for (const asset of assets) {
      expect({ asset, status: (await t.request('GET', `/docs/${asset}`)).status }).toEqual({ asset, status: 200 });
    }
  });

  it('OpenAPI declares both schemes for /api/v1 ("Authorize", "Try it out") and none for public routes', async () => {
    const doc = (await t.request('GET', '/docs-json')).body;
    expect(doc.components.securitySchemes).toEqual({
      bearer: expect.objectContaining({ type: 'http', scheme: 'bearer' }),
      apiKey: expect.objectContaining({ type: 'apiKey', in: 'header', name: 'X-API-Key' }),
    });
    expect(doc.security).toEqual([{ bearer: [] }, { apiKey: [] }]);
    expect(doc.paths['/health/live'].get.security).toEqual([]);
    const create = doc.paths['/api/v1/api-keys'].post;
    expect(create.operationId).toBe('createApiKey');
    expect(create['x-required-role']).toBe('admin');
    expect(Object.keys(create.responses)).toEqual(expect.arrayContaining(['201', '400', '401', '403']));
    expect(doc.paths['/api/v1/api-keys/{id}'].delete.responses).toHaveProperty('404');
    expect(doc.paths['/api/v1/budgets'].get['x-required-role']).toBe('viewer');
    expect(doc.paths['/api/v1/budgets'].post['x-required-role']).toBe('admin');
  });

  it('a key typed into "Authorize" works for "Try it out" (the same request the UI sends)', async () => {
    const accept = 'application/json';
    const authorization = `Bearer ${t.keys.admin}`;
    const viaBearer = await t.request('GET', '/api/v1/api-keys', undefined, { authorization, accept });
    const viaApiKey = await t.request('GET', '/api/v1/api-keys', undefined, { 'x-api-key': t.keys.admin, accept });
    expect([viaBearer.status, viaApiKey.status]).toEqual([200, 200]);
  });
});
