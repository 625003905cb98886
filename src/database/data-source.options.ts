import type { DataSourceOptions } from 'typeorm';
import { BudgetDefinitions1764300000000 } from '../../migrations/1764300000000-BudgetDefinitions';
import { BudgetDefinitionEntity } from '../budget/budget.entity';

/** Entities and migrations are listed as classes so ts-jest, ts-node and dist/ all find them. */
export const ENTITIES = [BudgetDefinitionEntity];
export const MIGRATIONS = [BudgetDefinitions1764300000000];

export interface DatabaseSettings {
  url: string;
  poolSize?: number;
  statementTimeoutMs?: number;
  connectionTimeoutMs?: number;
}

/** The one definition of how the service (and the TypeORM CLI, and the tests) reach PostgreSQL. */
export function dataSourceOptions(settings: DatabaseSettings): DataSourceOptions {
  return {
    type: 'postgres',
    url: settings.url,
    entities: ENTITIES,
    migrations: MIGRATIONS,
    migrationsTableName: 'migrations',
    migrationsTransactionMode: 'each',
    synchronize: false,
    logging: ['error', 'warn', 'migration'] as const,
    poolSize: settings.poolSize ?? 20,
    extra: {
      // Fail fast instead of hanging while PostgreSQL is unreachable (answered as 503).
      connectionTimeoutMillis: settings.connectionTimeoutMs ?? 3000,
      statement_timeout: settings.statementTimeoutMs ?? 15000,
      idleTimeoutMillis: 30000,
      keepAlive: true,
      application_name: 'relaycore-budget',
    },
  };
}
