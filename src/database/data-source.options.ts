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
import { Attribution1764304000000 } from '../../migrations/1764304000000-Attribution';
import { AlertDelivery1764305000000 } from '../../migrations/1764305000000-AlertDelivery';
import { Reporting1764306000000 } from '../../migrations/1764306000000-Reporting';
import { AnomalyEvents1764307000000 } from '../../migrations/1764307000000-AnomalyEvents';
import { TokenPricedUsage1764308000000 } from '../../migrations/1764308000000-TokenPricedUsage';
import { UsageRollups1764309000000 } from '../../migrations/1764309000000-UsageRollups';
import { PartitionedLedger1764310000000 } from '../../migrations/1764310000000-PartitionedLedger';
import { BatchAnswerLookups1764311000000 } from '../../migrations/1764311000000-BatchAnswerLookups';
import { FilterAcceptsPlanned1764312000000 } from '../../migrations/1764312000000-FilterAcceptsPlanned';
import { UsageWriteGroups1764313000000 } from '../../migrations/1764313000000-UsageWriteGroups';
import { IntegrationRequestRetention1764314000000 } from '../../migrations/1764314000000-IntegrationRequestRetention';
import { CheckContextOfBudget1764315000000 } from '../../migrations/1764315000000-CheckContextOfBudget';
import { CheckContextOfScopes1764316000000 } from '../../migrations/1764316000000-CheckContextOfScopes';
import { IntegrationWriteGroups1764317000000 } from '../../migrations/1764317000000-IntegrationWriteGroups';
import { CheckContextPlannedOnce1764318000000 } from '../../migrations/1764318000000-CheckContextPlannedOnce';
import { CheckContextNullFilters1764319000000 } from '../../migrations/1764319000000-CheckContextNullFilters';
import { ReservationExpiryOrder1764320000000 } from '../../migrations/1764320000000-ReservationExpiryOrder';
import { RollupsGroupedFirst1764321000000 } from '../../migrations/1764321000000-RollupsGroupedFirst';
import { AnswersFromInsertedRows1764322000000 } from '../../migrations/1764322000000-AnswersFromInsertedRows';
import { CheckContextGroups1764323000000 } from '../../migrations/1764323000000-CheckContextGroups';
import { CheckContextsReadOnce1764324000000 } from '../../migrations/1764324000000-CheckContextsReadOnce';
import { SingleRecordRollups1764325000000 } from '../../migrations/1764325000000-SingleRecordRollups';
import { OneRecordReadOnce1764326000000 } from '../../migrations/1764326000000-OneRecordReadOnce';

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
  Attribution1764304000000,
  AlertDelivery1764305000000,
  Reporting1764306000000,
  AnomalyEvents1764307000000,
  TokenPricedUsage1764308000000,
  UsageRollups1764309000000,
  PartitionedLedger1764310000000,
  BatchAnswerLookups1764311000000,
  FilterAcceptsPlanned1764312000000,
  UsageWriteGroups1764313000000,
  IntegrationRequestRetention1764314000000,
  CheckContextOfBudget1764315000000,
  CheckContextOfScopes1764316000000,
  IntegrationWriteGroups1764317000000,
  CheckContextPlannedOnce1764318000000,
  CheckContextNullFilters1764319000000,
  ReservationExpiryOrder1764320000000,
  RollupsGroupedFirst1764321000000,
  AnswersFromInsertedRows1764322000000,
  CheckContextGroups1764323000000,
  CheckContextsReadOnce1764324000000,
  SingleRecordRollups1764325000000,
  OneRecordReadOnce1764326000000,
];

/**
 * What stands between the service and PostgreSQL (DATABASE_POOL_MODE).
 * - `session`: PostgreSQL itself, or a pooler in session mode. A client connection is one server
 *   session, so the statement timeout is sent as a startup parameter.
 * - `transaction`: a pooler in transaction mode (PgBouncer `pool_mode = transaction`): each
 *   transaction may run on another server connection, shared with other clients. The service then
 *   relies on no session state, and sends no startup parameter but `application_name` (one of the
 *   few PgBouncer tracks; 1.18 refuses the rest: "unsupported startup parameter"). The server-side
 *   statement timeout comes from the server: `ALTER ROLE … SET statement_timeout`, or PgBouncer's
 *   `connect_query`; a `SET` from the service would land on whichever server connection it got and
 *   stay there for the next client. README "Behind PgBouncer".
 * In both modes every advisory lock is transaction-scoped (`pg_advisory_xact_lock`) and nothing
 * LISTENs (test/session-state.spec.ts). Queries use unnamed statements, except the hot path's
 * four in `session` mode, which run as named prepared statements (prepared-statements.ts);
 * in `transaction` mode those run unnamed too, since PgBouncer 1.18 cannot route prepared ones.
 */
export type DatabasePoolMode = 'session' | 'transaction';
export const DATABASE_POOL_MODES: readonly DatabasePoolMode[] = ['session', 'transaction'];

export interface DatabaseSettings {
  url: string;
  poolSize?: number;
  statementTimeoutMs?: number;
  connectionTimeoutMs?: number;
  poolMode?: DatabasePoolMode;
}

/**
 * Where migrations run: DATABASE_DIRECT_URL (PostgreSQL itself, past the pooler) when it is set,
 * so a long migration holds none of the server connections the requests share; else the
 * service's own connection. Migrations take no session state either (each runs in its own
 * transaction, with transaction-scoped locks), so they also work through the pooler.
 */
export function migrationTarget(settings: { url: string; directUrl?: string; poolMode: DatabasePoolMode }): {
  url: string;
  poolMode: DatabasePoolMode;
} {
  return settings.directUrl ? { url: settings.directUrl, poolMode: 'session' } : { url: settings.url, poolMode: settings.poolMode };
}

/** The one definition of how the service (and the TypeORM CLI, and the tests) reach PostgreSQL. */
export function dataSourceOptions(settings: DatabaseSettings): DataSourceOptions {
  const statementTimeoutMs = settings.statementTimeoutMs ?? 15000;
  const sessionParameters = (settings.poolMode ?? 'session') === 'session' ? { statement_timeout: statementTimeoutMs } : {};
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
      // connection gets connectionTimeoutMillis, a statement statement_timeout on the server (a
      // startup parameter in session mode; set server-side behind a transaction pooler, see
      // DatabasePoolMode), and query_timeout bounds it on our side too, for a connection whose
      // server vanished without a word (a network partition sends no RST; TCP keep-alive then
      // notices within a minute).
      connectionTimeoutMillis: settings.connectionTimeoutMs ?? 1500,
      ...sessionParameters,
      query_timeout: statementTimeoutMs + 1000,
      idleTimeoutMillis: 30000,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10000,
      application_name: 'relaycore-budget',
    },
  };
}
