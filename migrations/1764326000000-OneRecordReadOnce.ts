import { MigrationInterface, QueryRunner } from 'typeorm';
import { editedCurrentDefinition, undone } from '../src/database/frozen-definition';

/**
 * The ledger trigger read a statement's one record from its transition table twice: for its
 * roll-ups (migration SingleRecordRollups) and again for the cache walk. It now reads every
 * column both steps use once, for the roll-ups, and the walk uses that row. Same values, one
 * statement less per single write.
 */
export class OneRecordReadOnce1764326000000 implements MigrationInterface {
  name = 'OneRecordReadOnce1764326000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(await editedCurrentDefinition(queryRunner, 'budget_usage_records_rollup()', EDITS));
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(await editedCurrentDefinition(queryRunner, 'budget_usage_records_rollup()', undone(EDITS)));
  }
}

const EDITS = [
  {
    what: 'the one record read with every column the roll-ups and the cache walk use',
    from: `          SELECT i.budget_id, i.matched_budget_ids, i.amount, i.occurred_at, i.model_id, i.source, i.user_id, i.tags
            INTO r FROM inserted_rows i;`,
    to: `          SELECT i.id, i.budget_id, i.matched_budget_ids, i.amount, i.currency, i.occurred_at, i.model_id, i.source,
                 i.user_id, i.tags
            INTO r FROM inserted_rows i;`,
  },
  {
    what: 'the cache walk uses the record read for the roll-ups',
    from: `        IF n = 1 THEN
          SELECT i.id, i.budget_id, i.amount, i.currency, i.occurred_at, i.matched_budget_ids INTO r FROM inserted_rows i;
          -- One chain holds every match: the fast path walks it.`,
    to: `        IF n = 1 THEN
          -- r is the record (read for its roll-ups). One chain holds every match: the fast path walks it.`,
  },
];
