import { setTimeout as sleep } from 'node:timers/promises';
import type { DataSource, QueryRunner } from 'typeorm';

/** deadlock_detected and serialization_failure: PostgreSQL rolled the statement back; running it again is safe. */
export const TRANSIENT_SQLSTATES = new Set(['40P01', '40001']);

export interface RetryPolicy {
  /** Tries in all, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { attempts: 4, baseDelayMs: 10, maxDelayMs: 200 };

export function transientSqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && TRANSIENT_SQLSTATES.has(code) ? code : undefined;
}

/** "Full jitter" backoff: a random wait up to base × 2^(n−1), capped, so colliding callers spread out. */
export function backoffDelayMs(retry: number, policy: RetryPolicy, random: () => number = Math.random): number {
  return Math.floor(random() * Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (retry - 1)));
}

/**
 * Runs `operation` again after a deadlock or serialization failure, at most `policy.attempts`
 * times in all; any other error, or the last conflict, goes to the caller (mapped to 503
 * CONCURRENT_UPDATE with Retry-After by the error filter).
 */
export async function withRetry<T>(
  operation: () => Promise<T>,
  policy: RetryPolicy = DEFAULT_RETRY_POLICY,
  onRetry?: (sqlState: string, retry: number) => void,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation();
    } catch (error) {
      const sqlState = transientSqlState(error);
      if (!sqlState || attempt >= policy.attempts) throw error;
      onRetry?.(sqlState, attempt);
      await sleep(backoffDelayMs(attempt, policy));
    }
  }
}

/**
 * Installs the retry once, on the DataSource every repository queries through, instead of in each
 * repository (src/usage, src/constraint, src/budget stay as they are):
 *
 * - `dataSource.query(sql, params)` without a query runner is one statement in its own implicit
 *   transaction (all our hot paths: one SQL function call per request). A 40P01/40001 rolled
 *   all of it back, so the statement is simply sent again.
 * - `dataSource.transaction(work)` is retried as a whole: the transaction is rolled back and
 *   `work` runs again from the start on a fresh connection. `work` must therefore only touch
 *   the database (true of every caller today).
 * - A statement inside a transaction (a query runner is passed, e.g. `manager.query` within
 *   `transaction()`) is never retried on its own: its transaction is aborted, and the retry
 *   belongs to the whole transaction above.
 */
export function installTransientRetry(
  dataSource: DataSource,
  policy: RetryPolicy,
  onRetry?: (sqlState: string, retry: number) => void,
): void {
  const query = dataSource.query.bind(dataSource);
  const transaction = dataSource.transaction.bind(dataSource) as (...args: unknown[]) => Promise<unknown>;
  Object.assign(dataSource, {
    query: (sql: string, parameters?: unknown[], queryRunner?: QueryRunner) =>
      queryRunner ? query(sql, parameters, queryRunner) : withRetry(() => query(sql, parameters), policy, onRetry),
    transaction: (...args: unknown[]) => withRetry(() => transaction(...args), policy, onRetry),
  });
}
