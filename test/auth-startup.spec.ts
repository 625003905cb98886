import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { DEVELOPMENT_ADMIN_KEY_NAME, prepareApiKeys, StartupRefusedError } from '../src/auth/api-key.bootstrap';
import { ApiKeyRepository } from '../src/auth/api-key.repository';
import { ApiKeyService } from '../src/auth/api-key.service';
import { loadConfig, type AppConfig } from '../src/config/configuration';
import { dataSourceOptions } from '../src/database/data-source.options';
import { freePort } from '../src/database/embedded-database';
import { createTestDatabase } from './setup/test-database';
import { createTestApp } from './setup/test-app';

// The services built by hand below would log at the default level.
Logger.overrideLogger(['error', 'warn']);

const KEY = /rcb_[A-Za-z0-9_-]{43}/;

/** An ApiKeyService on a fresh database with no key at all (createTestApp would add its own). */
async function emptyKeyStore(overrides: Partial<AppConfig> = {}) {
  const databaseUrl = await createTestDatabase();
  const options = { ...dataSourceOptions({ url: databaseUrl, poolSize: 2 }), logging: false };
  const dataSource = await new DataSource(options).initialize();
  const config: AppConfig = { ...loadConfig({ NODE_ENV: 'development' }), databaseUrl, ...overrides };
  const keys = new ApiKeyService(new ApiKeyRepository(dataSource), config);
  return { databaseUrl, dataSource, keys, config };
}

describe('the start-up checks (prepareApiKeys, as main.ts calls it)', () => {
  it('development on the embedded database: creates an admin key once, shows it once, and it works', async () => {
    const { databaseUrl, dataSource, keys, config } = await emptyKeyStore();
    try {
      const first = await prepareApiKeys(keys, config, { embeddedDatabase: true });
      const key = KEY.exec(first.join('\n'))?.[0];
      expect(key).toBeDefined();
      const second = await prepareApiKeys(keys, config, { embeddedDatabase: true });
      expect(second.join('\n')).not.toMatch(KEY);
      expect(second.join('\n')).toContain(`"${DEVELOPMENT_ADMIN_KEY_NAME}" (${key!.slice(0, 12)}…) exists`);
      expect(second.join('\n')).toContain('npm run apikey -- create');
      const rows = await dataSource.query('SELECT name, role FROM api_keys');
      expect(rows).toEqual([{ name: 'development-admin', role: 'admin' }]);

      const t = await createTestApp({ databaseUrl, defaultKey: 'none' });
      try {
        const headers = { authorization: `Bearer ${key}` };
        const created = await t.request('POST', '/api/v1/api-keys', { name: 'me', role: 'admin' }, headers);
        expect(created.status).toBe(201);
      } finally {
        await t.close();
      }
    } finally {
      await dataSource.destroy();
    }
  });

  it('development on DATABASE_URL, or tests: creates nothing', async () => {
    const { dataSource, keys, config } = await emptyKeyStore();
    try {
      expect((await prepareApiKeys(keys, config, { embeddedDatabase: false })).join('\n')).not.toMatch(KEY);
      const inTests = await prepareApiKeys(keys, { ...config, nodeEnv: 'test' }, { embeddedDatabase: true });
      expect(inTests.join('\n')).not.toMatch(KEY);
      expect(await dataSource.query('SELECT 1 FROM api_keys')).toHaveLength(0);
    } finally {
      await dataSource.destroy();
    }
  });

  it('production: refuses without ADMIN_API_KEY or a live admin key, naming ADMIN_API_KEY', async () => {
    const { dataSource, keys, config } = await emptyKeyStore({ nodeEnv: 'production' });
    try {
      const refused = prepareApiKeys(keys, config, { embeddedDatabase: false });
      await expect(refused).rejects.toThrow(StartupRefusedError);
      await expect(refused).rejects.toThrow(/ADMIN_API_KEY/);

      await keys.createKey({ name: 'only-service', role: 'service' }, 'test');
      await expect(prepareApiKeys(keys, config, { embeddedDatabase: false })).rejects.toThrow(/ADMIN_API_KEY/);
      const revokedAdmin = await keys.createKey({ name: 'revoked-admin', role: 'admin' }, 'test');
      await keys.revokeKey(revokedAdmin.id, 'test');
      await expect(prepareApiKeys(keys, config, { embeddedDatabase: false })).rejects.toThrow(/ADMIN_API_KEY/);

      const withEnvKey = { ...config, adminApiKey: 'a-long-enough-admin-api-key-0123456789' };
      const withEnvKeyLines = prepareApiKeys(keys, withEnvKey, { embeddedDatabase: false });
      await expect(withEnvKeyLines).resolves.toEqual([expect.any(String)]);
      await keys.createKey({ name: 'ops', role: 'admin' }, 'test');
      const lines = await prepareApiKeys(keys, config, { embeddedDatabase: false });
      expect(lines.join('\n')).not.toMatch(KEY);
      expect(await dataSource.query(`SELECT 1 FROM api_keys WHERE name = 'development-admin'`)).toHaveLength(0);
    } finally {
      await dataSource.destroy();
    }
  });
});

describe('src/main.ts as a process', () => {
  const children = new Set<ChildProcess>();
  afterAll(() => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  });

  /** Runs the service like `npm start` (ts-node without type-checking, to stay quick). */
  function start(env: Record<string, string>) {
    const { ADMIN_API_KEY: _a, DATABASE_URL: _d, NODE_ENV: _n, ...inherited } = process.env;
    const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', 'src/main.ts'], {
      cwd: resolve(__dirname, '..'),
      env: { ...inherited, TS_NODE_TRANSPILE_ONLY: 'true', ...env },
    });
    children.add(child);
    let output = '';
    child.stdout!.on('data', (chunk) => (output += chunk));
    child.stderr!.on('data', (chunk) => (output += chunk));
    const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    const listening = async () => {
      const deadline = Date.now() + 90_000;
      while (!output.includes('is listening')) {
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the service did not start:\n${output}`);
        await new Promise((done) => setTimeout(done, 100));
      }
    };
    return { child, exited, listening, output: () => output };
  }

  it('NODE_ENV=production without any key: exits ≠ 0 with a message naming ADMIN_API_KEY', async () => {
    const databaseUrl = await createTestDatabase();
    const service = start({ NODE_ENV: 'production', DATABASE_URL: databaseUrl, PORT: String(await freePort()) });
    expect(await service.exited).not.toBe(0);
    expect(service.output()).toContain('ADMIN_API_KEY');
    expect(service.output()).not.toContain('is listening');
  });

  it('development on a fresh embedded database: prints a working admin key, then only that it exists', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'budget-dev-start-'));
    chmodSync(folder, 0o755);
    const port = await freePort();
    const env = {
      NODE_ENV: 'development',
      PORT: String(port),
      EMBEDDED_PG_DIR: join(folder, 'postgres'),
      EMBEDDED_PG_PORT: String(await freePort()),
    };
    try {
      const first = start(env);
      await first.listening();
      const key = KEY.exec(first.output())?.[0];
      expect(key).toBeDefined();
      const base = `http://127.0.0.1:${port}`;
      const withKey = await fetch(`${base}/api/v1/api-keys`, { headers: { authorization: `Bearer ${key}` } });
      expect(withKey.status).toBe(200);
      expect((await fetch(`${base}/api/v1/api-keys`)).status).toBe(401);
      expect((await fetch(`${base}/docs`)).status).toBe(200);
      first.child.kill('SIGINT');
      expect(await first.exited).toBe(0);

      const second = start(env);
      await second.listening();
      expect(second.output()).not.toMatch(KEY);
      expect(second.output()).toContain('"development-admin"');
      expect(second.output()).toContain('npm run apikey -- create');
      second.child.kill('SIGINT');
      expect(await second.exited).toBe(0);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });
});
