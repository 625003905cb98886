import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { runApiKeyCli } from '../src/cli/api-key.cli';
import { createTestApp, type TestApp } from './setup/test-app';

/** `npm run apikey -- …` as a real process (ts-node without type-checking, to stay quick). */
interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function apikey(args: string[], env: Record<string, string>): Promise<Run> {
  const { ADMIN_API_KEY: _ignored, ...inherited } = process.env;
  return new Promise((done, fail) => {
    const argv = ['-r', 'ts-node/register/transpile-only', 'src/cli/api-key.cli.ts', ...args];
    const child = spawn(process.execPath, argv, {
      cwd: resolve(__dirname, '..'),
      env: { ...inherited, TS_NODE_TRANSPILE_ONLY: 'true', ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

/** The same command in this process, for the error paths. */
async function apikeyInProcess(args: string[], env: Record<string, string>) {
  const out: string[] = [];
  const err: string[] = [];
  const output = { out: (line: string) => out.push(line), err: (line: string) => err.push(line) };
  const code = await runApiKeyCli(args, { NODE_ENV: 'test', ...env }, output);
  return { code, stdout: out.join('\n'), stderr: err.join('\n') };
}

let t: TestApp;
let env: Record<string, string>;
beforeAll(async () => {
  // No cache, so that what the CLI (another process) changes is seen by the next request.
  t = await createTestApp({ config: { apiKeyCacheTtlMs: 0 }, defaultKey: 'none' });
  env = { DATABASE_URL: t.databaseUrl, NODE_ENV: 'test' };
});
afterAll(async () => {
  await t.close();
});

it('create prints a key once; the key works at its role; list shows it without the key; revoke ends it', async () => {
  const created = await apikey(['create', '--name', 'relaycore', '--role', 'service'], env);
  expect(created.code).toBe(0);
  const key = /rcb_[A-Za-z0-9_-]{43}/.exec(created.stdout)?.[0];
  expect(key).toBeDefined();
  const id = /id ([0-9a-f-]{36})/.exec(created.stdout)![1];

  const headers = { authorization: `Bearer ${key}` };
  expect((await t.request('GET', '/api/v1/budgets', undefined, headers)).status).toBe(200);
  expect((await t.request('POST', '/api/v1/api-keys', { name: 'x', role: 'viewer' }, headers)).status).toBe(403);
  const [row] = await t.sql('SELECT name, role, key_hash, created_by FROM api_keys WHERE id = $1', [id]);
  expect(row).toEqual({
    name: 'relaycore',
    role: 'service',
    key_hash: createHash('sha256').update(key!).digest('hex'),
    created_by: 'cli',
  });

  const listed = await apikeyInProcess(['list'], env);
  expect(listed.code).toBe(0);
  expect(listed.stdout).toMatch(new RegExp(`${id}\\s+relaycore\\s+service\\s+${key!.slice(0, 12)}`));
  expect(listed.stdout).not.toContain(key);
  expect(listed.stdout).not.toContain(row.key_hash);

  const revoked = await apikey(['revoke', id], env);
  expect(revoked.code).toBe(0);
  expect(revoked.stdout).toContain(`Revoked API key ${id}`);
  expect((await t.request('GET', '/api/v1/budgets', undefined, headers)).status).toBe(401);
  expect((await apikeyInProcess(['list'], env)).stdout).not.toContain(id);
  expect((await apikeyInProcess(['list', '--all'], env)).stdout).toMatch(new RegExp(`${id}.*revoked`));
});

it('explains its mistakes and exits non-zero', async () => {
  const noCommand = await apikeyInProcess([], env);
  expect(noCommand.code).toBe(2);
  expect(noCommand.stderr).toContain('npm run apikey -- create --name <name> --role <admin|service|viewer>');
  expect((await apikeyInProcess(['create', '--name', 'x'], env)).code).toBe(2);
  expect((await apikeyInProcess(['list', '--colour'], env)).code).toBe(2);

  const badRole = await apikeyInProcess(['create', '--name', 'x', '--role', 'root'], env);
  expect(badRole).toMatchObject({ code: 1, stderr: expect.stringContaining('role') });
  const notAnId = await apikeyInProcess(['revoke', 'relaycore'], env);
  expect(notAnId).toMatchObject({ code: 1, stderr: expect.stringContaining('UUID') });
  const unknown = await apikeyInProcess(['revoke', '6f1c3a43-6b5f-4d3e-9a59-1f0c2b0a7c11'], env);
  expect(unknown).toMatchObject({ code: 1, stderr: expect.stringContaining('No live API key') });
  const badUrl = await apikeyInProcess(['list'], { DATABASE_URL: 'mysql://nope' });
  expect(badUrl).toMatchObject({ code: 1, stderr: expect.stringContaining('DATABASE_URL') });
});
