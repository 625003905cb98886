import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';

/**
 * The ledger's partition maintenance (migration 1764310000000, docs/scale.md "Partitions, keys and
 * retention"). Each call is one statement, so one transaction: the SQL functions take the
 * transaction-level advisory lock that lets one instance at a time do it, and a short lock_timeout.
 */
@Injectable()
export class LedgerMaintenanceRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /** Creates the month partitions from the month of `at` to `monthsAhead` after it (and of default-partition rows); returns those created. */
  async ensurePartitions(at: Date, monthsAhead: number): Promise<string[]> {
    const [row] = await this.dataSource.query(`SELECT budget_usage_partitions_ensure($1::timestamptz, $2::integer) AS created`, [
      at.toISOString(),
      monthsAhead,
    ]);
    return row.created;
  }

  /** Drops the month partitions retention allows (see budget_usage_retention_boundary); returns those dropped. */
  async dropExpiredPartitions(at: Date, months: number): Promise<string[]> {
    const [row] = await this.dataSource.query(`SELECT budget_usage_partitions_drop_expired($1::timestamptz, $2::integer) AS dropped`, [
      at.toISOString(),
      months,
    ]);
    return row.dropped;
  }

  /** Removes up to `limit` idempotency keys of removed rows past the replay horizon; returns how many. */
  async purgeKeys(at: Date, months: number, limit: number): Promise<number> {
    const [row] = await this.dataSource.query(`SELECT budget_usage_keys_purge($1::timestamptz, $2::integer, $3::integer) AS purged`, [
      at.toISOString(),
      months,
      limit,
    ]);
    return row.purged;
  }

  /** Removes up to `limit` gateway request ids of removed rows past the replay horizon; returns how many. */
  async purgeIntegrationRequests(at: Date, months: number, limit: number): Promise<number> {
    const [row] = await this.dataSource.query(
      `SELECT budget_integration_requests_purge($1::timestamptz, $2::integer, $3::integer) AS purged`,
      [at.toISOString(), months, limit],
    );
    return row.purged;
  }
}
