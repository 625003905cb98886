import { DataSource } from 'typeorm';
import { DATABASE_POOL_MODES, dataSourceOptions, migrationTarget, type DatabasePoolMode } from './src/database/data-source.options';

/**
 * The DataSource of the TypeORM CLI, built from the same options as the service:
 *   npx typeorm-ts-node-commonjs migration:run -d ./ormconfig.ts
 * DATABASE_URL selects the server (default: the machine's local PostgreSQL, database postgres);
 * DATABASE_DIRECT_URL, when set, goes past a pooler (README "Behind PgBouncer").
 */
const poolMode = process.env.DATABASE_POOL_MODE as DatabasePoolMode | undefined;
if (poolMode !== undefined && !DATABASE_POOL_MODES.includes(poolMode)) {
  throw new Error(`DATABASE_POOL_MODE must be ${DATABASE_POOL_MODES.join(' or ')}, got "${poolMode}"`);
}
const target = migrationTarget({
  url: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
  directUrl: process.env.DATABASE_DIRECT_URL || undefined,
  poolMode: poolMode ?? 'session',
});

export default new DataSource(dataSourceOptions(target));
