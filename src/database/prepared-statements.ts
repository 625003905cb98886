import type { Pool } from 'pg';
import type { DataSource, QueryRunner } from 'typeorm';
import type { DatabasePoolMode } from './data-source.options';

/** How a statement is marked as prepared: a leading comment naming it (see `prepared`). */
const MARK = /^\/\* prepared: ([a-z][a-z0-9_]*) \*\/ /;

/**
 * A statement of the hot path (run on every check or usage write), marked to run as a named,
 * protocol-level prepared statement: PostgreSQL parses and plans it once per connection instead
 * of on every request (about 0.1 ms of a check's round trip here, docs/performance.md). Behind a
 * transaction-mode pooler it runs unnamed like every other statement, since PgBouncer 1.18
 * cannot route prepared statements; the mark is then only a comment.
 */
export function prepared(name: string, text: string): string {
  if (!/^[a-z][a-z0-9_]*$/.test(name)) throw new Error(`prepared statement name "${name}": lower-case letters, digits and _`);
  return `/* prepared: ${name} */ ${text}`;
}

/**
 * Routes the marked statements of `dataSource.query` (outside an explicit transaction) to the
 * driver's pool as named statements when the pool talks to PostgreSQL sessions (DATABASE_POOL_MODE
 * `session`); `transaction` leaves everything unnamed. Installed when the DataSource is created,
 * under the transient retry (which wraps `query` afterwards), so a named statement is retried
 * alike. Errors are the driver's own (code, detail, column), which the error mapping reads.
 */
export function installPreparedStatements(dataSource: DataSource, poolMode: DatabasePoolMode): void {
  if (poolMode !== 'session') return;
  const query = dataSource.query.bind(dataSource);
  const pool = () => (dataSource.driver as unknown as { master: Pool }).master;
  Object.assign(dataSource, {
    query: async (sql: string, parameters?: unknown[], queryRunner?: QueryRunner) => {
      const name = queryRunner ? undefined : MARK.exec(sql)?.[1];
      if (!name) return query(sql, parameters, queryRunner);
      // Not pool.query(): it releases a connection with the statement's error, which destroys it,
      // and our functions raise business errors on purpose. As TypeORM's query runner does, the
      // connection is watched while it is out: one that errors (PostgreSQL gone) is released with
      // that error, so the pool drops it, and the error is never left unhandled.
      const client = await pool().connect();
      let broken: Error | undefined;
      const onError = (error: Error) => (broken = error);
      client.on('error', onError);
      try {
        return (await client.query({ name, text: sql, values: parameters })).rows;
      } finally {
        client.removeListener('error', onError);
        client.release(broken);
      }
    },
  });
}
