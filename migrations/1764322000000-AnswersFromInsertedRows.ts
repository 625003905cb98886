import { MigrationInterface, QueryRunner } from 'typeorm';
import {
  editedCurrentDefinition, editedFrozenDefinition, frozenDefinition, undone, type FunctionEdit,
} from '../src/database/frozen-definition';
import { UsageWriteGroups1764313000000 } from './1764313000000-UsageWriteGroups';
import { IntegrationWriteGroups1764317000000 } from './1764317000000-IntegrationWriteGroups';

/**
 * The writers of many records in one statement (`record_usage_batch`, `record_usage_group`,
 * `record_integration_usage_group`) answer each record they wrote with the row their INSERT
 * returned, instead of reading it back from the ledger: one probe of the partitioned ledger per
 * record less (runtime partition pruning and an index descent each). A record they did not write
 * (a replay) is still answered from its key and the ledger, as before. The answers are unchanged.
 * Measured on one connection, a batch of 100 records: 8.0 → 7.25 ms of PostgreSQL CPU
 * (docs/performance.md). record_usage_batch is edited where it stands (BatchAnswerLookups edited it
 * so); the group functions from their migrations' text.
 * Specs: test/usage-batch.e2e.spec.ts, test/usage-group-commit.spec.ts,
 * test/integration-group-commit.spec.ts (each answer equals the same write sent alone).
 */
export class AnswersFromInsertedRows1764322000000 implements MigrationInterface {
  name = 'AnswersFromInsertedRows1764322000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(await editedCurrentDefinition(queryRunner, BATCH, BATCH_EDITS));
    await queryRunner.query(await editedFrozenDefinition(new UsageWriteGroups1764313000000(), 'record_usage_group', GROUP_EDITS));
    await queryRunner.query(
      await editedFrozenDefinition(new IntegrationWriteGroups1764317000000(), 'record_integration_usage_group', INTEGRATION_GROUP_EDITS),
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(await frozenDefinition(new IntegrationWriteGroups1764317000000(), 'record_integration_usage_group'));
    await queryRunner.query(await frozenDefinition(new UsageWriteGroups1764313000000(), 'record_usage_group'));
    await queryRunner.query(await editedCurrentDefinition(queryRunner, BATCH, undone(BATCH_EDITS)));
  }
}

const BATCH = 'record_usage_batch(uuid, jsonb)';

const declared = (newIds: string): FunctionEdit => ({
  what: 'the rows the insert returned, declared',
  from: `        ${newIds}\n`,
  to: `        ${newIds}\n        new_rows budget_usage_records[];\n`,
});

const returned = (returning: string): FunctionEdit => ({
  what: 'the insert returns each whole row',
  from: `          RETURNING ${returning}\n`,
  to: `          RETURNING ${returning}, u AS new_row\n`,
});

const AGGREGATED: FunctionEdit = {
  what: 'the returned rows gathered',
  from: `SELECT array_agg(inserted.id),`,
  to: `SELECT array_agg(inserted.id), array_agg(inserted.new_row),`,
};

const KEPT: FunctionEdit = { what: 'the returned rows kept', from: `INTO new_ids, `, to: `INTO new_ids, new_rows, ` };

/** The answer's row: a record written now from its returned row, else the ledger's row its key recorded. */
const ANSWERED: FunctionEdit = {
  what: 'a written record answered from its returned row',
  from: `        LEFT JOIN LATERAL (
          SELECT u.* FROM budget_usage_records u
          WHERE u.id = CASE WHEN i.id = ANY (new_ids) THEN i.id
                            WHEN r.request_hash IS NOT DISTINCT FROM i.request_hash THEN r.id END
            AND u.occurred_at = CASE WHEN i.id = ANY (new_ids) THEN i.occurred_at ELSE r.occurred_at END
          LIMIT 1) u ON true`,
  to: `        LEFT JOIN unnest(new_rows) n ON n.id = i.id
        LEFT JOIN LATERAL (
          SELECT n.* WHERE n.id IS NOT NULL
          UNION ALL
          (SELECT u.* FROM budget_usage_records u
           WHERE n.id IS NULL AND r.request_hash IS NOT DISTINCT FROM i.request_hash
             AND u.id = r.id AND u.occurred_at = r.occurred_at
           LIMIT 1)) u ON true`,
};

const BATCH_EDITS: FunctionEdit[] = [
  declared('new_ids  uuid[];'),
  returned('u.id, u.reservation_id'),
  AGGREGATED,
  KEPT,
  {
    what: "the answer's comment",
    from: `        -- One index probe per record for its key and one for its row (LIMIT 1 keeps each a
        -- LATERAL probe rather than a join over every key and row of the budget).
`,
    to: `        -- A record written now is answered from the row its insert returned; any other with one
        -- index probe for its key and one for its row (LIMIT 1 keeps each a LATERAL probe rather
        -- than a join over every key and row of the budget).
`,
  },
  ANSWERED,
];

const GROUP_EDITS: FunctionEdit[] = [declared('new_ids uuid[];'), returned('u.id, u.reservation_id'), AGGREGATED, KEPT, ANSWERED];

const INTEGRATION_GROUP_EDITS: FunctionEdit[] = [
  declared('new_ids uuid[];'),
  returned('u.id, u.reservation_id, u.matched_budget_ids'),
  AGGREGATED,
  KEPT,
  {
    what: 'a written record answered from its returned row',
    from: `        LEFT JOIN LATERAL (
          SELECT u.* FROM budget_usage_records u
          WHERE i.id = ANY (new_ids) AND u.id = i.id AND u.occurred_at = i.occurred_at
          LIMIT 1) u ON true`,
    to: `        LEFT JOIN unnest(new_rows) u ON u.id = i.id`,
  },
];
