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

/** A fresh database cloned from the migrated template; returns its URL. */
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
  return databaseUrlFor(serverUrl, name);
}
