import { Client } from 'pg';
import type { TestApp } from './test-app';

export interface CacheVersusTruth {
  budget_id: string;
  cache_amount: string;
  truth_amount: string;
  cache_n: string;
  truth_n: string;
  same_window: boolean;
}

/** For each budget: its cache row and calculate_budget_status at the same instant, as exact text. */
export function cacheVersusTruth(t: Pick<TestApp, 'sql'>, ids: string[], at: string | null = null) {
  return t.sql<CacheVersusTruth>(
    `SELECT c.budget_id, trim_scale(c.current_amount)::text AS cache_amount, trim_scale(x.current_amount)::text AS truth_amount,
            c.usage_count::text AS cache_n, x.usage_count::text AS truth_n,
            (c.period_start, c.period_end) = (x.period_start, x.period_end) AS same_window
     FROM budget_status_cache c
     CROSS JOIN LATERAL calculate_budget_status(c.budget_id, coalesce($2::timestamptz, now())) x
     WHERE c.budget_id = ANY ($1::uuid[])`,
    [ids, at],
  );
}

/** The SPEC §2 invariant: the cache equals the ledger, exactly, for every budget given. Returns the rows compared. */
export async function expectCacheMatchesLedger(t: Pick<TestApp, 'sql'>, ids: string[]): Promise<CacheVersusTruth[]> {
  const compared = await cacheVersusTruth(t, ids);
  expect(compared.length).toBe(ids.length);
  for (const row of compared) {
    expect(row).toEqual({ ...row, cache_amount: row.truth_amount, cache_n: row.truth_n, same_window: true });
  }
  return compared;
}

/** Deadlocks PostgreSQL has counted in this database, read on a connection of its own. */
export async function deadlockCount(databaseUrl: string): Promise<number> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query(`SELECT deadlocks::int AS n FROM pg_stat_database WHERE datname = current_database()`);
    return rows[0].n;
  } finally {
    await client.end();
  }
}
