import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { startEmbeddedDatabase } from '../../src/database/embedded-database';
import { runMigrations } from '../../src/database/migrate';
import { databaseUrlFor, testDbPrefix } from './test-database';

/**
 * One PostgreSQL for the whole run: DATABASE_URL when set, else an embedded server in a temporary
 * folder. The migrations are applied once to a template database; each test file clones it
 * (test-database.ts), so files never see each other's data.
 */
export default async function globalSetup(): Promise<void> {
  let serverUrl = process.env.DATABASE_URL;
  if (!serverUrl) {
    const dir = mkdtempSync(join(tmpdir(), 'budget-test-pg-'));
    chmodSync(dir, 0o755);
    const embedded = await startEmbeddedDatabase({
      dataDir: join(dir, 'data'),
      port: 0,
      database: 'postgres',
      persistent: false,
    });
    (globalThis as { __EMBEDDED_PG__?: unknown }).__EMBEDDED_PG__ = embedded;
    serverUrl = embedded.url;
  }
  const template = `${testDbPrefix()}tpl`;
  const admin = new Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${template}" WITH (FORCE)`);
    await admin.query(`CREATE DATABASE "${template}"`);
  } finally {
    await admin.end();
  }
  await runMigrations(databaseUrlFor(serverUrl, template));
  process.env.TEST_PG_SERVER_URL = serverUrl;
  process.env.TEST_PG_TEMPLATE = template;
}
