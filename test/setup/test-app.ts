import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { DataSource } from 'typeorm';
import { Client } from 'pg';
import { createApp } from '../../src/app.setup';
import { loadConfig, type AppConfig } from '../../src/config/configuration';
import { createTestDatabase } from './test-database';

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
  /** A plain pg client on the test database, for assertions below the API. */
  sql<T = any>(text: string, params?: unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

export interface TestAppOptions {
  listen?: boolean;
  config?: Partial<AppConfig>;
  /** Reuse an existing database instead of cloning a new one. */
  databaseUrl?: string;
}

/** The real application (configureApp pipeline) on its own freshly migrated database. */
export async function createTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const databaseUrl = options.databaseUrl ?? (await createTestDatabase());
  const config: AppConfig = {
    ...loadConfig({ NODE_ENV: 'test' }),
    databaseUrl,
    databasePoolSize: 30,
    ...options.config,
  };
  const app = await createApp(config);
  await app.init();
  await app.getHttpAdapter().getInstance().ready();
  let baseUrl: string | undefined;
  if (options.listen) {
    await app.listen({ port: 0, host: '127.0.0.1' });
    const address = app.getHttpServer().address();
    baseUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  }
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  return {
    app,
    databaseUrl,
    dataSource: app.get(DataSource),
    baseUrl,
    async request(method, path, body, headers = {}) {
      const response = await app.inject({
        method: method as any,
        url: path,
        headers: { ...(body !== undefined && typeof body !== 'string' ? { 'content-type': 'application/json' } : {}), ...headers },
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
