import { Client } from 'pg';
import type { EmbeddedDatabase } from '../../src/database/embedded-database';
import { testDbPrefix } from './test-database';

export default async function globalTeardown(): Promise<void> {
  const embedded = (globalThis as { __EMBEDDED_PG__?: EmbeddedDatabase }).__EMBEDDED_PG__;
  if (embedded) {
    await embedded.stop();
    return;
  }
  // On a shared server, drop what this run created.
  const admin = new Client({ connectionString: process.env.TEST_PG_SERVER_URL });
  await admin.connect();
  try {
    const { rows } = await admin.query('SELECT datname FROM pg_database WHERE datname LIKE $1', [`${testDbPrefix()}%`]);
    for (const { datname } of rows) await admin.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}
