import { randomBytes } from 'node:crypto';
import { Client } from 'pg';

/** Databases of one test run share this prefix, so concurrent runs on one server never collide. */
export function testDbPrefix(): string {
  process.env.TEST_RUN_ID ??= String(process.pid);
  return `budget_test_${process.env.TEST_RUN_ID}_`;
}

export function databaseUrlFor(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

/**
 * Whether test apps reach their databases through the PgBouncer test/pgbouncer.spec.ts puts in
 * front of the server (TEST_PG_POOLER_URL, set only inside that file) rather than the server itself.
 */
export function routedThroughPooler(): boolean {
  return process.env.TEST_PG_POOLER_URL !== undefined;
}

/** A fresh database cloned from the migrated template (created on the server); returns the URL the app uses. */
export async function createTestDatabase(): Promise<string> {
  const serverUrl = process.env.TEST_PG_SERVER_URL;
  const template = process.env.TEST_PG_TEMPLATE;
  if (!serverUrl || !template) throw new Error('The jest global setup did not run (TEST_PG_SERVER_URL unset)');
  const name = `${testDbPrefix()}${randomBytes(6).toString('hex')}`;
  const admin = new Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}" TEMPLATE "${template}"`);
  } finally {
    await admin.end();
  }
  return databaseUrlFor(process.env.TEST_PG_POOLER_URL ?? serverUrl, name);
}
