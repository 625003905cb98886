import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `record_usage_batch` answers each record with one index probe for its key and one for its row
 * (issue 17: single writes are committed in groups through this function, so its cost per call
 * is on the hot path).
 *
 * Its answer joined the records to *every* key of the budget and then to *every* ledger row of
 * the budget's partitions: with the planner's estimate of a few rows per budget it hashed the
 * keys and merge-joined a sequential scan of the ledger, so a batch of one record into a budget
 * holding 11,000 rows took 12–18 ms, growing with the budget. Both joins become LATERAL
 * subqueries with LIMIT 1 (never flattened back into a join), keyed on (budget_id,
 * idempotency_key) and on the ledger's primary key (id, occurred_at), which also prunes the
 * partitions at run time. The answers are unchanged.
 *
 * The function is edited where it stands (its text is read from the catalog), the way back
 * undoes the same edit; each fails loudly unless the text it replaces occurs exactly once.
 */
export class BatchAnswerLookups1764311000000 implements MigrationInterface {
  name = 'BatchAnswerLookups1764311000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(await edited(queryRunner, JOINS, LOOKUPS));
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(await edited(queryRunner, LOOKUPS, JOINS));
  }
}

/** record_usage_batch as the database holds it, with `from` replaced by `to`. */
async function edited(queryRunner: QueryRunner, from: string, to: string): Promise<string> {
  const [{ definition }] = await queryRunner.query(
    `SELECT pg_get_functiondef('record_usage_batch(uuid, jsonb)'::regprocedure) AS definition`,
  );
  const count = (definition as string).split(from).length - 1;
  if (count !== 1) throw new Error(`record_usage_batch: the answer's joins occur ${count} times, expected once`);
  return (definition as string).replace(from, () => to);
}

/** The answer's joins as the PartitionedLedger migration left them. */
const JOINS = `        LEFT JOIN (SELECT k.usage_id AS id, k.occurred_at, k.request_hash, k.idempotency_key
                   FROM budget_usage_keys k WHERE k.budget_id = p_budget_id) r
          ON NOT (i.id = ANY (new_ids)) AND r.idempotency_key = i.idempotency_key
        LEFT JOIN budget_usage_records u
          ON u.id = CASE WHEN i.id = ANY (new_ids) THEN i.id
                         WHEN r.request_hash IS NOT DISTINCT FROM i.request_hash THEN r.id END
         AND u.occurred_at = CASE WHEN i.id = ANY (new_ids) THEN i.occurred_at ELSE r.occurred_at END`;

/** The same answer, one probe of the key and one of the row per record. */
const LOOKUPS = `        -- One index probe per record for its key and one for its row (LIMIT 1 keeps each a
        -- LATERAL probe rather than a join over every key and row of the budget).
        LEFT JOIN LATERAL (
          SELECT k.usage_id AS id, k.occurred_at, k.request_hash, k.idempotency_key
          FROM budget_usage_keys k
          WHERE NOT (i.id = ANY (new_ids)) AND k.budget_id = p_budget_id AND k.idempotency_key = i.idempotency_key
          LIMIT 1) r ON true
        LEFT JOIN LATERAL (
          SELECT u.* FROM budget_usage_records u
          WHERE u.id = CASE WHEN i.id = ANY (new_ids) THEN i.id
                            WHEN r.request_hash IS NOT DISTINCT FROM i.request_hash THEN r.id END
            AND u.occurred_at = CASE WHEN i.id = ANY (new_ids) THEN i.occurred_at ELSE r.occurred_at END
          LIMIT 1) u ON true`;
