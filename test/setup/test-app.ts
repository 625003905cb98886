import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { DataSource } from 'typeorm';
import { Client } from 'pg';
import { createApp } from '../../src/app.setup';
import { API_KEY_ROLES, type ApiKeyRole } from '../../src/auth/api-key-role';
import { ApiKeyService } from '../../src/auth/api-key.service';
import { loadConfig, type AppConfig } from '../../src/config/configuration';
import { createTestDatabase, routedThroughPooler } from './test-database';

export interface TestResponse<T = any> {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: T;
}

export interface TestApp {
  app: NestFastifyApplication;
  databaseUrl: string;
  dataSource: DataSource;
  /** Base URL once `listen()` was called. */
  baseUrl?: string;
  request<T = any>(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<TestResponse<T>>;
  /** A stored key of each role, created for this app (named test-admin, test-service, test-viewer). */
  keys: Record<ApiKeyRole, string>;
  /** Stores one more key. */
  createKey(role: ApiKeyRole, name?: string): Promise<{ id: string; name: string; key: string }>;
  /** Every route Fastify registered during init, for specs that walk the routes. */
  routes: { method: string; url: string }[];
  /** A plain pg client on the test database, for assertions below the API. */
  sql<T = any>(text: string, params?: unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

export interface TestAppOptions {
  listen?: boolean;
  config?: Partial<AppConfig>;
  /** Reuse an existing database instead of cloning a new one. */
  databaseUrl?: string;
  /**
   * The key `request()` sends when the caller passes neither an `authorization` nor an
   * `x-api-key` header: the admin key by default; 'none' sends no key.
   */
  defaultKey?: ApiKeyRole | 'none';
}

/** The real application (configureApp pipeline) on its own freshly migrated database. */
export async function createTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const databaseUrl = options.databaseUrl ?? (await createTestDatabase());
  const config: AppConfig = {
    ...loadConfig({ NODE_ENV: 'test' }),
    databaseUrl,
    databasePoolSize: 30,
    ...(routedThroughPooler() ? { databasePoolMode: 'transaction' as const } : {}),
    ...options.config,
  };
  const app = await createApp(config);
  const routes: TestApp['routes'] = [];
  app.getHttpAdapter().getInstance().addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) routes.push({ method: String(method), url: route.url });
  });
  await app.init();
  await app.getHttpAdapter().getInstance().ready();
  let baseUrl: string | undefined;
  if (options.listen) {
    await app.listen({ port: 0, host: '127.0.0.1' });
    const address = app.getHttpServer().address();
    baseUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  }
  const client = new Client({ connectionString: databaseUrl });
  // A spec may stop PostgreSQL on purpose; the assertion client must not crash the run then.
  client.on('error', () => undefined);
  await client.connect();
  const keyService = app.get(ApiKeyService);
  const createKey = async (role: ApiKeyRole, name = `test-${role}`) => {
    const created = await keyService.createKey({ name, role }, 'test-setup');
    return { id: created.id, name: created.name, key: created.key };
  };
  const keys = {} as Record<ApiKeyRole, string>;
  for (const role of API_KEY_ROLES) keys[role] = (await createKey(role)).key;
  const defaultKey = options.defaultKey ?? 'admin';
  return {
    app,
    databaseUrl,
    dataSource: app.get(DataSource),
    baseUrl,
    keys,
    createKey,
    routes,
    async request(method, path, body, headers = {}) {
      const sendsKey = Object.keys(headers).some((name) => ['authorization', 'x-api-key'].includes(name.toLowerCase()));
      const response = await app.inject({
        method: method as any,
        url: path,
        headers: {
          ...(body !== undefined && typeof body !== 'string' ? { 'content-type': 'application/json' } : {}),
          ...(sendsKey || defaultKey === 'none' ? {} : { authorization: `Bearer ${keys[defaultKey]}` }),
          ...headers,
        },
        payload: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = response.body;
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        // not JSON: keep the text
      }
      return { status: response.statusCode, headers: response.headers as TestResponse['headers'], body: parsed as any };
    },
    async sql(text, params) {
      const result = await client.query(text, params as unknown[]);
      return result.rows;
    },
    async close() {
      await client.end();
      await app.close();
    },
  };
}
