import { MigrationInterface, QueryRunner } from 'typeorm';
import { editedFrozenDefinition, frozenDefinition } from '../src/database/frozen-definition';
import { TokenPricedUsage1764308000000 } from './1764308000000-TokenPricedUsage';

/**
 * Retention for the gateway's request ids (`budget_integration_requests`), as the PartitionedLedger
 * migration gave it to the idempotency keys of budget_usage_keys (docs/scale.md "Partitions, keys
 * and retention"):
 * - with USAGE_RETENTION_MONTHS set, a request id whose ledger rows retention removed is deleted
 *   once it was recorded more than that many months ago (the replay horizon); the table grew by one
 *   row per integration write forever before;
 * - until then, a replay of such a request answers 409 USAGE_RECORD_EXPIRED, as the budget route
 *   does, and records nothing. It answered 201 with no records, which reads as "no budget matched".
 */
export class IntegrationRequestRetention1764314000000 implements MigrationInterface {
  name = 'IntegrationRequestRetention1764314000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    // The purge finds the oldest request ids by this range.
    await queryRunner.query(`CREATE INDEX budget_integration_requests_recorded_idx ON budget_integration_requests (recorded_at)`);
    await queryRunner.query(`
      CREATE FUNCTION budget_integration_requests_purge(p_at timestamptz, p_months integer, p_limit integer) RETURNS integer
      LANGUAGE sql AS $fn$
        WITH doomed AS (
          SELECT q.request_id
          FROM budget_integration_requests q
          WHERE q.recorded_at < (date_trunc('month', p_at AT TIME ZONE 'UTC') - make_interval(months => p_months)) AT TIME ZONE 'UTC'
            AND NOT EXISTS (SELECT 1 FROM budget_usage_records u WHERE u.id = ANY (q.usage_ids))
          ORDER BY q.recorded_at
          LIMIT p_limit
        ), deleted AS (
          DELETE FROM budget_integration_requests q USING doomed d
          WHERE q.request_id = d.request_id
          RETURNING 1
        )
        SELECT count(*)::integer FROM deleted
      $fn$`);
    await queryRunner.query(`
      COMMENT ON FUNCTION budget_integration_requests_purge(timestamptz, integer, integer) IS
        'Removes up to p_limit gateway request ids whose ledger rows retention removed and that were recorded more than p_months months ago (the replay horizon); returns how many.'`);
    await queryRunner.query(await editedFrozenDefinition(new TokenPricedUsage1764308000000(), 'record_integration_usage', [EXPIRED_REPLAY]));
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(await frozenDefinition(new TokenPricedUsage1764308000000(), 'record_integration_usage'));
    await queryRunner.query(`DROP FUNCTION budget_integration_requests_purge(timestamptz, integer, integer)`);
    await queryRunner.query(`DROP INDEX budget_integration_requests_recorded_idx`);
  }
}

/** The replay of a request whose rows retention removed: refused, as record_usage refuses it. */
const EXPIRED_REPLAY = {
  what: 'a replay finds none of its rows: retention removed them',
  from: `          ORDER BY array_position(earlier.usage_ids, u.id);
          RETURN;`,
  to: `          ORDER BY array_position(earlier.usage_ids, u.id);
          IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'RB409', MESSAGE = 'USAGE_RECORD_EXPIRED',
              DETAIL = format('The request id "%s" recorded usage at %s; retention has since removed that month, and the usage is not recorded again.',
                              p_request_id, earlier.recorded_at);
          END IF;
          RETURN;`,
};
