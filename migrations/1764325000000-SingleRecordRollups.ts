import { MigrationInterface, QueryRunner } from 'typeorm';
import { editedCurrentDefinition, frozenDefinition, undone } from '../src/database/frozen-definition';
import { Attribution1764304000000 } from './1764304000000-Attribution';

/**
 * Two costs every usage write paid in PostgreSQL, found with `perf` on a backend recording single
 * writes (docs/performance.md, "Single writes in PostgreSQL (sixth pass)"):
 *
 * - `budget_tags_valid`, in the ledger's CHECK on tags, was an inlinable SQL function. PostgreSQL
 *   prepares a table's CHECK expressions once per INSERT statement, and preparing inlined the
 *   function: its body was parsed and analysed again for every statement that wrote the ledger
 *   (single write, group or batch), even with no tags. As PL/pgSQL it is called only when a row has
 *   tags, and its query is planned once per session. Same expression, same answers.
 * - The roll-up step of the ledger trigger ran its general statement (group the records by key, join
 *   their leaves, fan out, group again) for a statement of one record, and claimed the leaf with an
 *   INSERT … ON CONFLICT DO NOTHING (an identity value and a speculative insertion) though the leaf
 *   almost always exists. A statement of one record now finds its leaf first and upserts its
 *   roll-up rows from its own values, in the same key order (leaf, grain, dimension, bucket, value)
 *   as the general statement, so concurrent writers still lock them in one order; statements of
 *   several records insert only the leaves that are missing.
 *
 * The roll-ups are the same sums (test/usage-rollups.spec.ts holds them to the ledger after every
 * kind of write). Measured on one connection, this migration reverted and run again four times:
 * PostgreSQL CPU per single write (record_usage) 970–1,230 → 770–1,030 µs (medians 1,170 → 920);
 * per group of 32 writes over 16 leaves 8.2–10.0 → 7.2–9.5 ms (medians 8.7 → 7.8).
 */
export class SingleRecordRollups1764325000000 implements MigrationInterface {
  name = 'SingleRecordRollups1764325000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION budget_tags_valid(p_tags text[]) RETURNS boolean
      LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $fn$
      BEGIN
        RETURN cardinality(p_tags) <= 20 AND array_position(p_tags, NULL) IS NULL
               AND NOT EXISTS (SELECT 1 FROM unnest(p_tags) t WHERE char_length(t) NOT BETWEEN 1 AND 64);
      END
      $fn$`);
    await queryRunner.query(await editedCurrentDefinition(queryRunner, 'budget_usage_records_rollup()', ROLLUP_EDITS));
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(await editedCurrentDefinition(queryRunner, 'budget_usage_records_rollup()', undone(ROLLUP_EDITS)));
    await queryRunner.query(await frozenDefinition(new Attribution1764304000000(), 'budget_tags_valid'));
  }
}

const ROLLUP_EDITS = [
  {
    what: 'a variable for the leaf of a statement of one record',
    from: `        at_time     timestamptz;
`,
    to: `        at_time     timestamptz;
        one_leaf    bigint;
`,
  },
  {
    what: 'a statement of one record finds its leaf, then upserts its roll-up rows from its own values',
    from: `        INSERT INTO budget_usage_leaves (budget_id, matched_budget_ids)
        SELECT DISTINCT i.budget_id, i.matched_budget_ids FROM inserted_rows i
        ORDER BY 1, 2
        ON CONFLICT DO NOTHING;
        INSERT INTO budget_usage_rollups AS u (leaf_id, grain, dimension, bucket, value, amount, usage_count)
        SELECT l.id, g.grain, d.dimension, date_trunc(g.grain, i.hour, 'UTC'), d.value, sum(i.amount), sum(i.n)::bigint
        FROM (SELECT i.budget_id, i.matched_budget_ids, i.model_id, i.source, i.user_id, i.tags,
                     date_trunc('hour', i.occurred_at, 'UTC') AS hour, sum(i.amount) AS amount, count(*) AS n
              FROM inserted_rows i
              GROUP BY 1, 2, 3, 4, 5, 6, 7) i
        JOIN budget_usage_leaves l ON l.budget_id = i.budget_id AND l.matched_budget_ids IS NOT DISTINCT FROM i.matched_budget_ids
        CROSS JOIN LATERAL budget_usage_dimensions(i.model_id, i.source, i.user_id, i.tags) d
        CROSS JOIN (VALUES ('hour'), ('day'), ('month')) g (grain)
        GROUP BY 1, 2, 3, 4, 5
        ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT ON CONSTRAINT budget_usage_rollups_key DO UPDATE
          SET amount = u.amount + EXCLUDED.amount, usage_count = u.usage_count + EXCLUDED.usage_count;
`,
    to: `        IF n = 1 THEN
          -- One record: its leaf (almost always there already), then its roll-up rows from its own
          -- values, in the general statement's key order (the leaf and each grain's bucket are fixed).
          SELECT i.budget_id, i.matched_budget_ids, i.amount, i.occurred_at, i.model_id, i.source, i.user_id, i.tags
            INTO r FROM inserted_rows i;
          SELECT l.id INTO one_leaf FROM budget_usage_leaves l
          WHERE l.budget_id = r.budget_id AND l.matched_budget_ids IS NOT DISTINCT FROM r.matched_budget_ids;
          IF NOT FOUND THEN
            INSERT INTO budget_usage_leaves (budget_id, matched_budget_ids) VALUES (r.budget_id, r.matched_budget_ids)
            ON CONFLICT DO NOTHING;
            SELECT l.id INTO one_leaf FROM budget_usage_leaves l
            WHERE l.budget_id = r.budget_id AND l.matched_budget_ids IS NOT DISTINCT FROM r.matched_budget_ids;
          END IF;
          INSERT INTO budget_usage_rollups AS u (leaf_id, grain, dimension, bucket, value, amount, usage_count)
          SELECT one_leaf, g.grain, d.dimension, date_trunc(g.grain, r.occurred_at, 'UTC'), d.value, sum(r.amount), count(*)
          FROM budget_usage_dimensions(r.model_id, r.source, r.user_id, r.tags) d
          CROSS JOIN (VALUES ('hour'), ('day'), ('month')) g (grain)
          GROUP BY g.grain, d.dimension, d.value
          ORDER BY g.grain, d.dimension, d.value
          ON CONFLICT ON CONSTRAINT budget_usage_rollups_key DO UPDATE
            SET amount = u.amount + EXCLUDED.amount, usage_count = u.usage_count + EXCLUDED.usage_count;
        ELSE
          -- Only the leaves not there yet are inserted (no identity value or speculative insertion
          -- spent on the others).
          INSERT INTO budget_usage_leaves (budget_id, matched_budget_ids)
          SELECT DISTINCT i.budget_id, i.matched_budget_ids FROM inserted_rows i
          WHERE NOT EXISTS (SELECT 1 FROM budget_usage_leaves l
                            WHERE l.budget_id = i.budget_id AND l.matched_budget_ids IS NOT DISTINCT FROM i.matched_budget_ids)
          ORDER BY 1, 2
          ON CONFLICT DO NOTHING;
          INSERT INTO budget_usage_rollups AS u (leaf_id, grain, dimension, bucket, value, amount, usage_count)
          SELECT l.id, g.grain, d.dimension, date_trunc(g.grain, i.hour, 'UTC'), d.value, sum(i.amount), sum(i.n)::bigint
          FROM (SELECT i.budget_id, i.matched_budget_ids, i.model_id, i.source, i.user_id, i.tags,
                       date_trunc('hour', i.occurred_at, 'UTC') AS hour, sum(i.amount) AS amount, count(*) AS n
                FROM inserted_rows i
                GROUP BY 1, 2, 3, 4, 5, 6, 7) i
          JOIN budget_usage_leaves l ON l.budget_id = i.budget_id AND l.matched_budget_ids IS NOT DISTINCT FROM i.matched_budget_ids
          CROSS JOIN LATERAL budget_usage_dimensions(i.model_id, i.source, i.user_id, i.tags) d
          CROSS JOIN (VALUES ('hour'), ('day'), ('month')) g (grain)
          GROUP BY 1, 2, 3, 4, 5
          ORDER BY 1, 2, 3, 4, 5
          ON CONFLICT ON CONSTRAINT budget_usage_rollups_key DO UPDATE
            SET amount = u.amount + EXCLUDED.amount, usage_count = u.usage_count + EXCLUDED.usage_count;
        END IF;
`,
  },
];
