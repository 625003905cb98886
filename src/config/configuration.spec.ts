import { dataSourceOptions, migrationTarget } from '../database/data-source.options';
import { ConfigurationError, loadConfig } from './configuration';

describe('database settings behind a pooler (DATABASE_POOL_MODE, DATABASE_DIRECT_URL)', () => {
  const url = 'postgres://budget@pgbouncer:6432/budget';
  const direct = 'postgres://budget@postgres:5432/budget';

  it('defaults to session mode with no direct URL', () => {
    const config = loadConfig({ DATABASE_URL: url });
    expect(config).toMatchObject({ databasePoolMode: 'session', databaseDirectUrl: undefined });
  });

  it('reads transaction mode and a direct URL', () => {
    expect(loadConfig({ DATABASE_URL: url, DATABASE_POOL_MODE: 'transaction', DATABASE_DIRECT_URL: direct })).toMatchObject({
      databasePoolMode: 'transaction',
      databaseDirectUrl: direct,
    });
  });

  it.each([
    [{ DATABASE_URL: url, DATABASE_POOL_MODE: 'statement' }, 'DATABASE_POOL_MODE must be session or transaction, got "statement"'],
    [{ DATABASE_URL: url, DATABASE_DIRECT_URL: 'mysql://x' }, 'DATABASE_DIRECT_URL must be a postgres:// or postgresql:// URL'],
    [{ DATABASE_DIRECT_URL: direct }, 'DATABASE_DIRECT_URL needs DATABASE_URL (it is the way past the pooler DATABASE_URL names)'],
  ])('refuses %j', (env, message) => {
    expect(() => loadConfig(env)).toThrow(new ConfigurationError(message));
  });

  it('session mode sends the statement timeout as a startup parameter; transaction mode sends only application_name', () => {
    const extra = (poolMode: 'session' | 'transaction') =>
      dataSourceOptions({ url, statementTimeoutMs: 7000, poolMode }).extra as Record<string, unknown>;
    expect(extra('session')).toMatchObject({ statement_timeout: 7000, application_name: 'relaycore-budget', query_timeout: 8000 });
    expect(extra('transaction')).not.toHaveProperty('statement_timeout');
    expect(extra('transaction')).toMatchObject({ application_name: 'relaycore-budget', query_timeout: 8000 });
  });

  it('migrations run on the direct URL in session mode when one is set, else on the service URL in its mode', () => {
    expect(migrationTarget({ url, directUrl: direct, poolMode: 'transaction' })).toEqual({ url: direct, poolMode: 'session' });
    expect(migrationTarget({ url, poolMode: 'transaction' })).toEqual({ url, poolMode: 'transaction' });
  });
});

describe('usage retention (USAGE_RETENTION_MONTHS) and ledger maintenance', () => {
  it('keeps all usage when unset or empty, and runs maintenance hourly (at start-up only under test)', () => {
    expect(loadConfig({})).toMatchObject({ usageRetentionMonths: undefined, ledgerMaintenanceIntervalMs: 3_600_000 });
    expect(loadConfig({ USAGE_RETENTION_MONTHS: ' ' }).usageRetentionMonths).toBeUndefined();
    expect(loadConfig({ NODE_ENV: 'test' }).ledgerMaintenanceIntervalMs).toBe(0);
  });

  it('reads whole months', () => {
    expect(loadConfig({ USAGE_RETENTION_MONTHS: '13', LEDGER_MAINTENANCE_INTERVAL_MS: '60000' })).toMatchObject({
      usageRetentionMonths: 13,
      ledgerMaintenanceIntervalMs: 60000,
    });
  });

  it.each([
    [{ USAGE_RETENTION_MONTHS: '0' }, 'USAGE_RETENTION_MONTHS must be between 1 and 1200, got 0'],
    [{ USAGE_RETENTION_MONTHS: '1.5' }, 'USAGE_RETENTION_MONTHS must be a whole number, got "1.5"'],
    [{ USAGE_RETENTION_MONTHS: '-3' }, 'USAGE_RETENTION_MONTHS must be a whole number, got "-3"'],
    [{ LEDGER_MAINTENANCE_INTERVAL_MS: '10' }, 'LEDGER_MAINTENANCE_INTERVAL_MS must be 0 (start-up only) or at least 1000, got 10'],
  ])('refuses %j', (env, message) => {
    expect(() => loadConfig(env)).toThrow(new ConfigurationError(message));
  });
});
