import { Inject, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../config/configuration';
import { DatabaseSettingsRepository } from './database-settings.repository';

/**
 * Behind a transaction-mode pooler the service cannot send its statement timeout (see
 * DatabasePoolMode): the server side must set it. At start-up this reads what the server
 * connections really run with and warns when it is missing or is not DATABASE_STATEMENT_TIMEOUT_MS
 * (the client side still gives up after that plus a second, but without a server-side timeout
 * the statement keeps running and holds its server connection).
 */
@Injectable()
export class PoolerSettingsCheck implements OnApplicationBootstrap {
  private readonly logger = new Logger('Database');

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly settings: DatabaseSettingsRepository,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const warning = await this.warning();
    if (warning) this.logger.warn(warning);
  }

  /** Undefined when the server-side statement timeout is the configured one (or the pooler is not in transaction mode). */
  async warning(): Promise<string | undefined> {
    if (this.config.databasePoolMode !== 'transaction') return undefined;
    const wanted = this.config.statementTimeoutMs;
    const fix =
      `set it on the server side: ALTER ROLE <role> SET statement_timeout = ${wanted} ` +
      `(or PgBouncer's connect_query = 'SET statement_timeout = ${wanted}')`;
    let actual: number;
    try {
      actual = await this.settings.statementTimeoutMs();
    } catch (error) {
      return `DATABASE_POOL_MODE=transaction: could not read the server's statement_timeout (${(error as Error).message})`;
    }
    if (actual === wanted) return undefined;
    return actual === 0
      ? `DATABASE_POOL_MODE=transaction: the server connections run without a statement timeout; ${fix}`
      : `DATABASE_POOL_MODE=transaction: the server connections' statement_timeout is ${actual} ms, not ` +
          `DATABASE_STATEMENT_TIMEOUT_MS=${wanted}; ${fix}`;
  }
}
