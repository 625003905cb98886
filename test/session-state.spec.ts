import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * SPEC §17: behind PgBouncer in transaction mode each transaction may run on another server
 * connection, so the service must rely on no session state. test/pgbouncer.spec.ts runs the API
 * through a real PgBouncer; this reads every statement the service can run (src/ and migrations/)
 * for the session state a run would only catch by luck (a session lock released on another
 * connection is a warning, not an error).
 */
const ROOT = resolve(__dirname, '..');

/** Tools that run on a connection of their own, never through the pooler, with the reason. */
const ALLOWED: Record<string, string> = {
  'src/database/schema-dump.ts': 'npm run schema:dump opens its own client on a throwaway database',
};

const SESSION_STATE: { what: string; pattern: RegExp; allowedIn?: Record<string, string> }[] = [
  { what: 'a session-level advisory lock (use pg_advisory_xact_lock)', pattern: /\bpg_(try_)?advisory_(un)?lock(_shared)?\b|\bpg_advisory_unlock_all\b/ },
  { what: 'LISTEN/UNLISTEN', pattern: /\b(UN)?LISTEN\s+[\w"*]/ },
  {
    what: 'a SET outside SET LOCAL (it stays on the server connection for the next client)',
    pattern: /(query|execute)\(\s*[`'"]\s*SET\s+(?!LOCAL\b|TRANSACTION\b|CONSTRAINTS\b)/i,
  },
  { what: 'set_config(…, false): a session-level setting', pattern: /set_config\([^)]*,\s*false\s*\)/i },
  {
    what: 'a named prepared statement (PgBouncer 1.18 cannot route them)',
    pattern: /\.query\(\s*\{[^}]*\bname\s*[:,}]|\bPREPARE\s+\w+\s*(\(|AS\b)/,
    allowedIn: {
      'src/database/prepared-statements.ts':
        'names the hot statements only under DATABASE_POOL_MODE=session; unnamed behind a transaction pooler (test/prepared-statements.spec.ts)',
    },
  },
  { what: 'a temporary table or a cursor WITH HOLD (they outlive the transaction)', pattern: /\bCREATE\s+(TEMP|TEMPORARY)\s+TABLE\b|\bWITH\s+HOLD\b/i },
];

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.spec.ts') ? [path] : [];
  });
}

describe('No session state in what the service runs', () => {
  const files = [...sources('src'), ...sources('migrations')].filter((file) => !(file in ALLOWED));

  it('reads the service and its migrations', () => {
    expect(files.length).toBeGreaterThan(50);
    expect(files).toContain('src/pricing/price-catalog.repository.ts');
  });

  it.each(SESSION_STATE)('none uses $what', ({ pattern, allowedIn = {} }) => {
    const found = files.filter((file) => !(file in allowedIn)).flatMap((file) => {
      const text = readFileSync(join(ROOT, file), 'utf8');
      const global = new RegExp(pattern.source, `${pattern.flags}g`);
      return [...text.matchAll(global)].map((match) => `${file}:${text.slice(0, match.index).split('\n').length}: ${match[0]}`);
    });
    expect(found).toEqual([]);
  });

  it('the patterns find what they look for', () => {
    const samples = [
      "await manager.query(`SELECT pg_advisory_lock(hashtext('x'))`)",
      'PERFORM pg_try_advisory_lock_shared(1);',
      'LISTEN budget_events',
      "await this.dataSource.query('SET statement_timeout = 0')",
      "SELECT set_config('statement_timeout', '0', false)",
      "client.query({ name: 'status', text: 'SELECT 1' })",
      'pool.query({ name, text, values })',
      'CREATE TEMP TABLE scratch (id int)',
    ];
    const harmless = [
      "await manager.query(`SELECT pg_advisory_xact_lock(hashtext('x'))`)",
      'PERFORM pg_advisory_xact_lock_shared(1);',
      "await manager.query('SET LOCAL lock_timeout = 100')",
      'UPDATE budget_reservations SET state = $1',
      "SELECT set_config('app.x', '1', true)",
      'await app.listen({ port })',
    ];
    for (const sample of samples) expect(SESSION_STATE.filter(({ pattern }) => pattern.test(sample))).toHaveLength(1);
    for (const sample of harmless) expect(SESSION_STATE.filter(({ pattern }) => pattern.test(sample))).toHaveLength(0);
  });
});
