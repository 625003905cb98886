import 'reflect-metadata';
import { mkdtempSync, chmodSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Logger } from '@nestjs/common';
import { configure } from 'safe-stable-stringify';
import { createApp } from '../app.setup';
import { loadConfig } from '../config/configuration';
import { startEmbeddedDatabase, withTimeout } from '../database/embedded-database';
import { runMigrations } from '../database/migrate';

const USAGE = `Writes the service's OpenAPI document (what /docs-json serves) to a file.

  npm run openapi:generate                     builds with \`nest build\`, writes openapi.json
  node dist/src/cli/openapi.cli.js <file>      from an existing build

Run it from the build: the @nestjs/swagger CLI plugin's additions exist only in \`nest build\`
output. Uses DATABASE_URL (migrated first) when set; else a throwaway embedded PostgreSQL.`;

/** Keys sorted at every level, 2-space indentation, a trailing newline: one text per document. */
const stableJson = configure({ deterministic: true });
export const formatOpenApiDocument = (document: unknown): string => `${stableJson(document, null, 2)}\n`;

/** The document the application serves at /docs-json, read without listening. */
export async function readOpenApiDocument(databaseUrl: string): Promise<unknown> {
  const app = await createApp({ ...loadConfig({ NODE_ENV: 'test' }), databaseUrl, databasePoolSize: 2 });
  try {
    await app.init();
    await app.getHttpAdapter().getInstance().ready();
    const response = await app.inject({ method: 'GET', url: '/docs-json' });
    if (response.statusCode !== 200) throw new Error(`/docs-json answered ${response.statusCode}`);
    return JSON.parse(response.body);
  } finally {
    await app.close();
  }
}

async function withDatabase<T>(work: (url: string) => Promise<T>): Promise<T> {
  const given = process.env.DATABASE_URL?.trim();
  if (given) {
    await runMigrations(given);
    return work(given);
  }
  const dir = mkdtempSync(join(tmpdir(), 'openapi-pg-'));
  chmodSync(dir, 0o755);
  const embedded = await startEmbeddedDatabase({ dataDir: join(dir, 'data'), port: 0, database: 'openapi', persistent: false });
  try {
    await runMigrations(embedded.url);
    return await work(embedded.url);
  } finally {
    await withTimeout(embedded.stop(), 10_000);
  }
}

export async function runOpenApiCli(argv: string[]): Promise<number> {
  if (argv.length !== 1 || argv[0] === '--help' || argv[0] === '-h') {
    console.error(USAGE);
    return argv[0] === '--help' || argv[0] === '-h' ? 0 : 2;
  }
  Logger.overrideLogger(['error']);
  const target = resolve(argv[0]);
  const document = await withDatabase(readOpenApiDocument);
  writeFileSync(target, formatOpenApiDocument(document));
  console.error(`Wrote ${target}`);
  return 0;
}

if (require.main === module) {
  runOpenApiCli(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(`The OpenAPI document could not be written: ${error instanceof Error ? error.message : String(error)}`);
      process.exit(1);
    },
  );
}
