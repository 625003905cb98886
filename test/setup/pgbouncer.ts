import { spawn } from 'node:child_process';
import { accessSync, chmodSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { freePort } from '../../src/database/embedded-database';

/** A PgBouncer started for one spec file, in front of the run's PostgreSQL server. */
export interface PgBouncer {
  /** postgres://user@127.0.0.1:<port>/<database>: the database's URL through the pooler. */
  urlFor(database: string): string;
  /** Everything it logged (login attempts, refused startup parameters…). */
  log(): string;
  stop(): Promise<void>;
}

export interface PgBouncerOptions {
  /** Server connections per database (PgBouncer's default_pool_size). */
  poolSize?: number;
  /** What every server connection runs with (connect_query), standing for `ALTER ROLE … SET statement_timeout`. */
  statementTimeoutMs: number;
}

/** The pgbouncer binary: PGBOUNCER_BIN, else PATH, else Debian's /usr/sbin (not on a non-root PATH). */
export function findPgBouncer(): string | undefined {
  const candidates = process.env.PGBOUNCER_BIN
    ? [process.env.PGBOUNCER_BIN]
    : [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin'].filter(Boolean).map((dir) => join(dir, 'pgbouncer'));
  return candidates.find((file) => {
    try {
      accessSync(file, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** A connstring value of PgBouncer's [databases] section, quoted. */
function quoted(value: string): string {
  if (/['\\]/.test(value)) throw new Error(`cannot hand PgBouncer a value with a quote or backslash: ${value}`);
  return `'${value}'`;
}

async function listening(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      done(true);
    });
    socket.once('error', () => done(false));
  });
}

/**
 * Starts `binary` with pool_mode = transaction on a free port. Every database of `serverUrl`'s
 * server is reachable through it (the `*` fallback entry), logged in as the server URL's user;
 * clients are not authenticated (auth_type = any: a test pooler on 127.0.0.1). No
 * ignore_startup_parameters: a client sending one PgBouncer does not track is refused, as in
 * production. Runs as `nobody` when the tests run as root (PgBouncer refuses root).
 */
export async function startPgBouncer(binary: string, serverUrl: string, options: PgBouncerOptions): Promise<PgBouncer> {
  const server = new URL(serverUrl);
  const user = decodeURIComponent(server.username) || 'postgres';
  const password = decodeURIComponent(server.password);
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'budget-pgbouncer-'));
  chmodSync(dir, 0o755);
  const ini = join(dir, 'pgbouncer.ini');
  const target = [
    `host=${quoted(server.hostname)}`,
    `port=${server.port || '5432'}`,
    `user=${quoted(user)}`,
    ...(password ? [`password=${quoted(password)}`] : []),
    `connect_query=${quoted(`SET statement_timeout = ${options.statementTimeoutMs}`)}`,
  ].join(' ');
  writeFileSync(
    ini,
    [
      '[databases]',
      `* = ${target}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = any',
      'pool_mode = transaction',
      'max_client_conn = 2000',
      `default_pool_size = ${options.poolSize ?? 20}`,
      '',
    ].join('\n'),
  );
  chmodSync(ini, 0o644);
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const child = spawn(binary, [...(asRoot ? ['-u', 'nobody'] : []), ini], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk) => (output = (output + chunk).slice(-200_000)));
  child.stderr.on('data', (chunk) => (output = (output + chunk).slice(-200_000)));
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  const kill = () => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL');
  process.once('exit', kill);

  const deadline = Date.now() + 10_000;
  while (!(await listening(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      kill();
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`pgbouncer did not start (${child.exitCode === null ? 'not listening after 10 s' : `exit ${child.exitCode}`}):\n${output}`);
    }
    await new Promise((done) => setTimeout(done, 50));
  }

  return {
    urlFor: (database) => `postgres://${encodeURIComponent(user)}@127.0.0.1:${port}/${encodeURIComponent(database)}`,
    log: () => output,
    stop: async () => {
      process.removeListener('exit', kill);
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(kill, 5_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
