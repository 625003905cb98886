import { DATABASE_POOL_MODES, type DatabasePoolMode } from '../database/data-source.options';

/**
 * Typed, validated configuration. Every setting the service reads from the environment is
 * declared here once; a bad value stops the process at start-up with a message naming it.
 */
export interface AppConfig {
  nodeEnv: 'development' | 'production' | 'test';
  port: number;
  host: string;
  /** Unset means: start an embedded PostgreSQL (development and tests only). */
  databaseUrl: string | undefined;
  databasePoolSize: number;
  /** `transaction` behind a transaction-mode pooler (PgBouncer): no startup parameters, no session state. */
  databasePoolMode: DatabasePoolMode;
  /** PostgreSQL itself, past the pooler: where migrations run when set. */
  databaseDirectUrl: string | undefined;
  /** Where the embedded PostgreSQL keeps its data between runs. */
  embeddedDataDir: string;
  embeddedPort: number;
  /** Milliseconds a query may run before it is cancelled. */
  statementTimeoutMs: number;
  /** Milliseconds to wait for a pooled connection before answering 503. */
  connectionTimeoutMs: number;
  /** Attempts (first try included) for a statement that failed on a deadlock or serialization conflict. */
  databaseRetryAttempts: number;
  /** After SIGTERM: milliseconds /health/ready answers 503 while requests are still served (load balancer drain). */
  shutdownDrainMs: number;
  /** After SIGTERM: milliseconds in-flight requests get to finish before the process stops anyway. */
  shutdownTimeoutMs: number;
  adminApiKey: string | undefined;
  /**
   * How long a verified API key is trusted without asking the database again. A key revoked on
   * another instance stops working there within this time (at once on the instance that revoked it).
   */
  apiKeyCacheTtlMs: number;
  logLevel: string;
  /** What-if refuses (422) to replay more usage records than this. */
  whatIfMaxRows: number;
  /** Bound on a streamed read of the ledger (CSV export, what-if), in place of the statement timeout. */
  reportStreamTimeoutMs: number;
  /** How often the anomaly detector runs; 0 turns it off (the default under NODE_ENV=test). */
  anomalyDetectorIntervalMs: number;
  /**
   * Whole UTC months of usage kept before the current one (USAGE_RETENTION_MONTHS); older month
   * partitions are dropped unless a budget's open window reaches into them. Undefined keeps all.
   */
  usageRetentionMonths: number | undefined;
  /** How often the ledger's partitions are created ahead and retention applied; 0 runs it only at start-up. */
  ledgerMaintenanceIntervalMs: number;
  /**
   * Most single usage writes committed together in one transaction, whatever their budgets
   * (group commit, docs/performance.md); 1 commits each write on its own.
   */
  usageGroupMax: number;
  /**
   * Most checks whose contexts are read together in one statement (CheckContextGroups); 1 reads
   * each check on its own.
   */
  checkGroupMax: number;
  /** Alert delivery (SPEC §13, README "Alert delivery"). */
  notify: NotifyConfig;
}

export interface NotifyConfig {
  /** Whether this instance runs the delivery relay (default: yes, except under NODE_ENV=test, where specs drive it). */
  relayEnabled: boolean;
  /** Milliseconds between two polls of the outbox. */
  pollIntervalMs: number;
  /** Deliveries one poll claims at most (and sends in parallel). */
  batchSize: number;
  /** Days an event whose deliveries are all delivered or failed is kept (0: kept for ever); then purged with them. */
  retentionDays: number;
  /** Seconds a claim holds a delivery; a claim of a killed instance is retried after it. Above the timeout. */
  leaseSeconds: number;
  /** Milliseconds one attempt may take (connect, send, answer) before it counts as failed. */
  timeoutMs: number;
  /** Seconds to wait after the 1st, 2nd… failed attempt; one more failure than it has entries → failed. */
  retrySchedule: number[];
  /** Each delay is scaled by a random factor in [1 − jitter, 1 + jitter]. */
  retryJitter: number;
  /** Lets webhook and Slack URLs reach loopback and private networks (never link-local or metadata). */
  allowPrivateNetworks: boolean;
  /** smtp:// or smtps:// URL of the mail relay; email channels fail their deliveries without it. */
  smtpUrl: string | undefined;
  notifyFrom: string;
  /** 32 bytes (64 hex digits or base64) that encrypt webhook secrets at rest. */
  secretsKey: Buffer | undefined;
  /** Where development and tests keep a generated key when SECRETS_KEY is unset. */
  secretsKeyFile: string;
  /** Base URL of this service, for the links in Slack and email messages. */
  publicBaseUrl: string | undefined;
}

export class ConfigurationError extends Error {}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigurationError(`${name} must be a whole number, got "${raw}"`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigurationError(`${name} must be between ${min} and ${max}, got ${value}`);
  return value;
}

const DURATION_UNITS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 };

/** `5s,5m,30m,2h` → seconds; a bare number is seconds. */
function retrySchedule(env: NodeJS.ProcessEnv): number[] {
  const raw = env.NOTIFY_RETRY_SCHEDULE?.trim() || '5s,5m,30m,2h,5h,10h,10h';
  const delays = raw.split(',').map((part) => {
    const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(part.trim());
    if (!match) throw new ConfigurationError(`NOTIFY_RETRY_SCHEDULE must list delays like 5s,5m,2h; "${part.trim()}" is not one`);
    return Number(match[1]) * DURATION_UNITS[match[2] ?? 's'];
  });
  if (delays.length > 50 || delays.some((delay) => delay > 7 * 86400)) {
    throw new ConfigurationError('NOTIFY_RETRY_SCHEDULE takes at most 50 delays of at most 7d each');
  }
  return delays;
}

function secretsKey(env: NodeJS.ProcessEnv): Buffer | undefined {
  const raw = env.SECRETS_KEY?.trim();
  if (!raw) return undefined;
  const key = /^[0-9a-fA-F]{64}$/.test(raw) ? Buffer.from(raw, 'hex') : Buffer.from(raw, 'base64');
  if (key.length !== 32) throw new ConfigurationError('SECRETS_KEY must be 32 bytes: 64 hex digits or base64 (openssl rand -base64 32)');
  return key;
}

function flag(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === '') return fallback;
  if (raw !== 'true' && raw !== 'false') throw new ConfigurationError(`${name} must be true or false, got "${env[name]}"`);
  return raw === 'true';
}

function notifyConfig(env: NodeJS.ProcessEnv, nodeEnv: AppConfig['nodeEnv']): NotifyConfig {
  const smtpUrl = env.SMTP_URL?.trim() || undefined;
  if (smtpUrl !== undefined && !/^smtps?:\/\//.test(smtpUrl)) throw new ConfigurationError('SMTP_URL must be an smtp:// or smtps:// URL');
  const timeoutMs = integer(env, 'NOTIFY_TIMEOUT_MS', 15000, 100, 120000);
  const leaseSeconds = integer(env, 'NOTIFY_LEASE_SECONDS', 60, 1, 3600);
  if (leaseSeconds * 1000 <= timeoutMs) throw new ConfigurationError('NOTIFY_LEASE_SECONDS must be longer than NOTIFY_TIMEOUT_MS');
  return {
    relayEnabled: flag(env, 'NOTIFY_RELAY_ENABLED', nodeEnv !== 'test'),
    pollIntervalMs: integer(env, 'NOTIFY_POLL_INTERVAL_MS', 1000, 50, 600000),
    batchSize: integer(env, 'NOTIFY_BATCH_SIZE', 20, 1, 500),
    retentionDays: integer(env, 'NOTIFY_RETENTION_DAYS', 90, 0, 36500),
    leaseSeconds,
    timeoutMs,
    retrySchedule: retrySchedule(env),
    retryJitter: integer(env, 'NOTIFY_RETRY_JITTER_PERCENT', 20, 0, 100) / 100,
    allowPrivateNetworks: flag(env, 'NOTIFY_ALLOW_PRIVATE_NETWORKS', false),
    smtpUrl,
    notifyFrom: env.NOTIFY_FROM?.trim() || 'RelayCore Budgets <budgets@localhost>',
    secretsKey: secretsKey(env),
    secretsKeyFile: env.SECRETS_KEY_FILE?.trim() || '.data/secrets.key',
    publicBaseUrl: env.PUBLIC_BASE_URL?.trim().replace(/\/+$/, '') || undefined,
  };
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  const nodeEnv = (env.NODE_ENV ?? 'development') as AppConfig['nodeEnv'];
  if (!['development', 'production', 'test'].includes(nodeEnv)) {
    throw new ConfigurationError(`NODE_ENV must be development, production or test, got "${env.NODE_ENV}"`);
  }
  const databaseUrl = env.DATABASE_URL?.trim() || undefined;
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigurationError('DATABASE_URL must be a postgres:// or postgresql:// URL');
  }
  if (databaseUrl === undefined && nodeEnv === 'production') {
    throw new ConfigurationError('DATABASE_URL is required when NODE_ENV=production (the embedded database is for development)');
  }
  const databaseDirectUrl = env.DATABASE_DIRECT_URL?.trim() || undefined;
  if (databaseDirectUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseDirectUrl)) {
    throw new ConfigurationError('DATABASE_DIRECT_URL must be a postgres:// or postgresql:// URL');
  }
  if (databaseDirectUrl !== undefined && databaseUrl === undefined) {
    throw new ConfigurationError('DATABASE_DIRECT_URL needs DATABASE_URL (it is the way past the pooler DATABASE_URL names)');
  }
  const databasePoolMode = (env.DATABASE_POOL_MODE?.trim() || 'session') as DatabasePoolMode;
  if (!DATABASE_POOL_MODES.includes(databasePoolMode)) {
    throw new ConfigurationError(`DATABASE_POOL_MODE must be ${DATABASE_POOL_MODES.join(' or ')}, got "${env.DATABASE_POOL_MODE}"`);
  }
  const adminApiKey = env.ADMIN_API_KEY?.trim() || undefined;
  if (adminApiKey !== undefined && adminApiKey.length < 24) {
    throw new ConfigurationError('ADMIN_API_KEY must be at least 24 characters long');
  }
  const anomalyDetectorIntervalMs = integer(env, 'ANOMALY_DETECTOR_INTERVAL_MS', nodeEnv === 'test' ? 0 : 600_000, 0, 86_400_000);
  if (anomalyDetectorIntervalMs > 0 && anomalyDetectorIntervalMs < 1000) {
    throw new ConfigurationError(`ANOMALY_DETECTOR_INTERVAL_MS must be 0 (off) or at least 1000, got ${anomalyDetectorIntervalMs}`);
  }
  const usageRetentionMonths = env.USAGE_RETENTION_MONTHS?.trim()
    ? integer(env, 'USAGE_RETENTION_MONTHS', 0, 1, 1200)
    : undefined;
  const ledgerMaintenanceIntervalMs = integer(env, 'LEDGER_MAINTENANCE_INTERVAL_MS', nodeEnv === 'test' ? 0 : 3_600_000, 0, 86_400_000);
  if (ledgerMaintenanceIntervalMs > 0 && ledgerMaintenanceIntervalMs < 1000) {
    throw new ConfigurationError(`LEDGER_MAINTENANCE_INTERVAL_MS must be 0 (start-up only) or at least 1000, got ${ledgerMaintenanceIntervalMs}`);
  }
  return {
    nodeEnv,
    port: integer(env, 'PORT', 3000, 0, 65535),
    host: env.HOST?.trim() || '0.0.0.0',
    databaseUrl,
    databasePoolSize: integer(env, 'DATABASE_POOL_SIZE', 20, 1, 500),
    databasePoolMode,
    databaseDirectUrl,
    embeddedDataDir: env.EMBEDDED_PG_DIR?.trim() || '.data/postgres',
    embeddedPort: integer(env, 'EMBEDDED_PG_PORT', 54329, 1024, 65535),
    statementTimeoutMs: integer(env, 'DATABASE_STATEMENT_TIMEOUT_MS', 15000, 100, 600000),
    connectionTimeoutMs: integer(env, 'DATABASE_CONNECT_TIMEOUT_MS', 5000, 100, 60000),
    databaseRetryAttempts: integer(env, 'DATABASE_RETRY_ATTEMPTS', 4, 1, 10),
    shutdownDrainMs: integer(env, 'SHUTDOWN_DRAIN_MS', 0, 0, 120000),
    shutdownTimeoutMs: integer(env, 'SHUTDOWN_TIMEOUT_MS', 10000, 1000, 300000),
    adminApiKey,
    apiKeyCacheTtlMs: integer(env, 'API_KEY_CACHE_TTL_MS', 15000, 0, 300000),
    logLevel: env.LOG_LEVEL?.trim() || (nodeEnv === 'test' ? 'warn' : 'info'),
    whatIfMaxRows: integer(env, 'WHAT_IF_MAX_ROWS', 200_000, 1, 10_000_000),
    reportStreamTimeoutMs: integer(env, 'REPORT_STREAM_TIMEOUT_MS', 600_000, 1000, 3_600_000),
    anomalyDetectorIntervalMs,
    usageRetentionMonths,
    ledgerMaintenanceIntervalMs,
    usageGroupMax: integer(env, 'USAGE_GROUP_MAX', 100, 1, 1000),
    checkGroupMax: integer(env, 'CHECK_GROUP_MAX', 100, 1, 1000),
    notify: notifyConfig(env, nodeEnv),
  };
}

export const APP_CONFIG = Symbol('APP_CONFIG');

/** The database `npm start` (and `npm run apikey`) create in the embedded PostgreSQL. */
export const EMBEDDED_DATABASE_NAME = 'relaycore_budget';
