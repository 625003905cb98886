import type { DataSourceOptions } from 'typeorm';
import { BudgetDefinitions1764300000000 } from '../../migrations/1764300000000-BudgetDefinitions';
import { Reservations1764300050000 } from '../../migrations/1764300050000-Reservations';
import { UsageLedger1764300100000 } from '../../migrations/1764300100000-UsageLedger';
import { ConstraintChecks1764300200000 } from '../../migrations/1764300200000-ConstraintChecks';
import { UsageBatch1764300300000 } from '../../migrations/1764300300000-UsageBatch';
import { PlaceReservation1764300400000 } from '../../migrations/1764300400000-PlaceReservation';
import { ApiKeys1764300900000 } from '../../migrations/1764300900000-ApiKeys';
import { Hardening1764301000000 } from '../../migrations/1764301000000-Hardening';
import { PriceCatalog1764303000000 } from '../../migrations/1764303000000-PriceCatalog';
import { UsageRowsForBudget1764303500000 } from '../../migrations/1764303500000-UsageRowsForBudget';
import { AlertDelivery1764305000000 } from '../../migrations/1764305000000-AlertDelivery';

/**
 * Migrations are listed as classes so ts-jest, ts-node and dist/ all find them. There are no
 * entities: every statement is raw SQL in a repository, and the migrations own the schema.
 */
export const MIGRATIONS = [
  BudgetDefinitions1764300000000,
  Reservations1764300050000,
  UsageLedger1764300100000,
  ConstraintChecks1764300200000,
  UsageBatch1764300300000,
  PlaceReservation1764300400000,
  ApiKeys1764300900000,
  Hardening1764301000000,
  PriceCatalog1764303000000,
  UsageRowsForBudget1764303500000,
  AlertDelivery1764305000000,
];

export interface DatabaseSettings {
  url: string;
  poolSize?: number;
  statementTimeoutMs?: number;
  connectionTimeoutMs?: number;
}

/** The one definition of how the service (and the TypeORM CLI, and the tests) reach PostgreSQL. */
export function dataSourceOptions(settings: DatabaseSettings): DataSourceOptions {
  const statementTimeoutMs = settings.statementTimeoutMs ?? 15000;
  return {
    type: 'postgres',
    url: settings.url,
    entities: [],
    migrations: MIGRATIONS,
    migrationsTableName: 'migrations',
    migrationsTransactionMode: 'each',
    synchronize: false,
    // Migrations own the schema, extensions included (btree_gist: PriceCatalog1764303000000).
    installExtensions: false,
    // Failed statements are expected (business rules raise in SQL) and mapped by the error filter.
    logging: ['migration'] as const,
    poolSize: settings.poolSize ?? 20,
    extra: {
      // Fail fast instead of hanging while PostgreSQL is unreachable (answered as 503): a new
      // connection gets connectionTimeoutMillis, a statement statement_timeout on the server, and
      // query_timeout bounds it on our side too, for a connection whose server vanished without
      // a word (a network partition sends no RST; TCP keep-alive then notices within a minute).
      connectionTimeoutMillis: settings.connectionTimeoutMs ?? 1500,
      statement_timeout: statementTimeoutMs,
      query_timeout: statementTimeoutMs + 1000,
      idleTimeoutMillis: 30000,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10000,
      application_name: 'relaycore-budget',
    },
  };
}
