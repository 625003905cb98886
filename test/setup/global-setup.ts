import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../../src/database/data-source.options';
import { startEmbeddedDatabase } from '../../src/database/embedded-database';
import { runMigrations } from '../../src/database/migrate';
import { seedPriceCatalog } from '../../src/pricing/price-catalog.seeder';
import { databaseUrlFor, testDbPrefix } from './test-database';

/**
 * One PostgreSQL for the whole run: DATABASE_URL when set, else an embedded server in a temporary
 * folder. The migrations are applied once to a template database; each test file clones it
 * (test-database.ts), so files never see each other's data. The template also gets the price
 * catalog seed the app runs at start-up (src/pricing), so each file's app finds it done (one
 * short read) instead of inserting ~1,500 versions again; test/pricing.e2e.spec.ts seeds
 * empty databases itself.
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
  const dataSource = new DataSource({ ...dataSourceOptions({ url: databaseUrlFor(serverUrl, template), poolSize: 1 }), logging: ['error'] });
  await dataSource.initialize();
  try {
    await seedPriceCatalog(dataSource);
  } finally {
    await dataSource.destroy();
  }
  process.env.TEST_PG_SERVER_URL = serverUrl;
  process.env.TEST_PG_TEMPLATE = template;
}
