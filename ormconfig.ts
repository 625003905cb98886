import { DataSource } from 'typeorm';
import { dataSourceOptions } from './src/database/data-source.options';

/**
 * The DataSource of the TypeORM CLI, built from the same options as the service:
 *   npx typeorm-ts-node-commonjs migration:run -d ./ormconfig.ts
 * DATABASE_URL selects the server (default: the machine's local PostgreSQL, database postgres).
 */
export default new DataSource(
  dataSourceOptions({ url: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres' }),
);
