import 'reflect-metadata';
import { createApp } from './app.setup';
import { prepareApiKeys } from './auth/api-key.bootstrap';
import { ApiKeyService } from './auth/api-key.service';
import { ConfigurationError, EMBEDDED_DATABASE_NAME, loadConfig, type AppConfig } from './config/configuration';
import { startEmbeddedDatabase, type EmbeddedDatabase } from './database/embedded-database';
import { runMigrations } from './database/migrate';

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

  const applied = await runMigrations(config.databaseUrl!);
  if (applied.length) console.log(`Applied migrations: ${applied.join(', ')}`);

  const app = await createApp(config);
  let keyLines: string[];
  try {
    // Before listening: in production without a usable key the service refuses to start.
    keyLines = await prepareApiKeys(app.get(ApiKeyService), config, { embeddedDatabase: embedded !== undefined });
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
      `  OpenAPI:    ${base}/docs-json`,
      `  Database:   ${embedded ? `embedded PostgreSQL on port ${embedded.port}` : 'DATABASE_URL'}`,
      ...keyLines,
      '',
    ].join('\n'),
  );

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`${signal} received: finishing in-flight requests, then stopping.`);
    await app.close();
    await embedded?.stop();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

bootstrap().catch((error) => {
  console.error('The service could not start:', error instanceof Error ? error.message : error);
  process.exit(1);
});
