import 'reflect-metadata';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { ApiKeyRole } from '../auth/api-key-role';
import { ApiKeyRepository } from '../auth/api-key.repository';
import { ApiKeyService } from '../auth/api-key.service';
import type { ApiKeyResponseDto } from '../auth/dto/api-key-response.dto';
import { DomainError } from '../common/errors/domain-error';
import { ConfigurationError, EMBEDDED_DATABASE_NAME, loadConfig, type AppConfig } from '../config/configuration';
import { dataSourceOptions, migrationTarget } from '../database/data-source.options';
import { startEmbeddedDatabase } from '../database/embedded-database';
import { runMigrations } from '../database/migrate';

const USAGE = `Manage API keys.

  npm run apikey -- create --name <name> --role <admin|service|viewer>   prints the key, once
  npm run apikey -- list [--all]                                          live keys (--all: also revoked)
  npm run apikey -- revoke <id>

Uses DATABASE_URL; when it is unset, the embedded development database of \`npm start\`.`;

export interface CliOutput {
  out(line: string): void;
  err(line: string): void;
}

interface Database {
  url: string;
  release(): Promise<void>;
}

/**
 * When `npm start` is running it holds the embedded data folder, so its PostgreSQL is used (the
 * port is in postmaster.pid; the credentials are those of src/database/embedded-database.ts).
 */
function runningEmbeddedDatabase(dataDir: string): string | undefined {
  const pidFile = resolve(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return undefined;
  const [pid, , , port] = readFileSync(pidFile, 'utf8').split('\n');
  try {
    process.kill(Number(pid), 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return undefined; // stale: not running
  }
  return `postgres://postgres:postgres@127.0.0.1:${Number(port)}/${EMBEDDED_DATABASE_NAME}`;
}

async function openDatabase(config: AppConfig, output: CliOutput): Promise<Database> {
  if (config.databaseUrl) return { url: config.databaseUrl, release: async () => undefined };
  const running = runningEmbeddedDatabase(config.embeddedDataDir);
  if (running) return { url: running, release: async () => undefined };
  output.err(`DATABASE_URL is unset: using the embedded PostgreSQL in ${config.embeddedDataDir}`);
  const embedded = await startEmbeddedDatabase({
    dataDir: config.embeddedDataDir,
    port: config.embeddedPort,
    database: EMBEDDED_DATABASE_NAME,
    persistent: true,
  });
  return { url: embedded.url, release: () => embedded.stop() };
}

const WIDTHS = [36, 24, 7, 12, 24];
const row = (cells: string[]) => cells.map((cell, i) => (i < WIDTHS.length ? cell.padEnd(WIDTHS[i]) : cell)).join('  ');

function printKeys(keys: ApiKeyResponseDto[], output: CliOutput): void {
  if (keys.length === 0) {
    output.out('No API keys.');
    return;
  }
  output.out(row(['ID', 'NAME', 'ROLE', 'PREFIX', 'CREATED', 'LAST USED / REVOKED']));
  for (const key of keys) {
    const state = key.revokedAt ? `revoked ${key.revokedAt}` : (key.lastUsedAt ?? 'never used');
    output.out(row([key.id, key.name, key.role, key.prefix, key.createdAt, state]));
  }
}

async function execute(command: string, args: ReturnType<typeof parse>, keys: ApiKeyService, output: CliOutput) {
  switch (command) {
    case 'create': {
      const request = { name: args.values.name ?? '', role: args.values.role as ApiKeyRole };
      const created = await keys.createKey(request, 'cli');
      output.out(`Created API key "${created.name}" (role ${created.role}, id ${created.id}).`);
      output.out('The key is shown this once; only its hash is stored:');
      output.out('');
      output.out(`  ${created.key}`);
      output.out('');
      output.out('Send it as "Authorization: Bearer <key>" or "X-API-Key: <key>".');
      return;
    }
    case 'list': {
      const all = args.values.all === true;
      const listed: ApiKeyResponseDto[] = [];
      let cursor: string | undefined;
      do {
        const page = await keys.listKeys({ includeRevoked: all, limit: 500, cursor });
        listed.push(...page.data);
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      printKeys(listed, output);
      return;
    }
    case 'revoke': {
      await keys.revokeKey(args.positionals[1], 'cli');
      output.out(`Revoked API key ${args.positionals[1]}.`);
      output.out('Running instances refuse it once their key cache expires (API_KEY_CACHE_TTL_MS, 15 s by default).');
      return;
    }
  }
}

const parse = (argv: string[]) =>
  parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      name: { type: 'string' },
      role: { type: 'string' },
      all: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });

/** Runs one command; returns the exit code (0 done, 1 failed, 2 usage error). */
export async function runApiKeyCli(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
  output: CliOutput = { out: (line) => console.log(line), err: (line) => console.error(line) },
): Promise<number> {
  let args: ReturnType<typeof parse>;
  try {
    args = parse(argv);
  } catch (error) {
    output.err(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const [command] = args.positionals;
  const wellFormed =
    (command === 'create' && args.positionals.length === 1 && args.values.name !== undefined &&
      args.values.role !== undefined) ||
    (command === 'list' && args.positionals.length === 1) ||
    (command === 'revoke' && args.positionals.length === 2);
  if (args.values.help || !wellFormed) {
    output[args.values.help ? 'out' : 'err'](USAGE);
    return args.values.help ? 0 : 2;
  }

  let config: AppConfig;
  try {
    config = loadConfig(env);
  } catch (error) {
    if (!(error instanceof ConfigurationError)) throw error;
    output.err(`Configuration error: ${error.message}`);
    return 1;
  }
  // The service's own log lines (no secrets in them) would only clutter the command's output.
  Logger.overrideLogger(['error']);
  const database = await openDatabase(config, output);
  try {
    const poolMode = config.databasePoolMode;
    const migrations = migrationTarget({ url: database.url, directUrl: config.databaseDirectUrl, poolMode });
    await runMigrations(migrations.url, migrations.poolMode);
    const dataSource = new DataSource({ ...dataSourceOptions({ url: database.url, poolSize: 1, poolMode }), logging: ['error'] });
    await dataSource.initialize();
    try {
      await execute(command, args, new ApiKeyService(new ApiKeyRepository(dataSource), config), output);
      return 0;
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      output.err(error.errors?.length ? error.errors.map((e) => `${e.field}: ${e.message}`).join('\n') : error.detail);
      return 1;
    } finally {
      await dataSource.destroy();
    }
  } finally {
    await database.release();
  }
}

if (require.main === module) {
  runApiKeyCli(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(`The command failed: ${error instanceof Error ? error.message : String(error)}`);
      process.exit(1);
    },
  );
}
