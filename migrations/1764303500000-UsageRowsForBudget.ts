import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `budget_usage_rows(budget, from, to)`: the ledger rows that count toward a budget in [from, to),
 * each once. It is the one definition of "the requests of a budget" for every reader that is not
 * the cache (reports, forecasts, what-if, export), so when the rule of what counts where changes
 * (attribution, SPEC §12.2), it changes here and nowhere else.
 *
 * Today a row counts toward its own budget and every ancestor of it: the rows of the budget's
 * subtree, walked with UNION (no depth cut, so a moved or deleted descendant still counts). A
 * LANGUAGE sql, STABLE, single-SELECT function is inlined by the planner, so a caller's ORDER BY,
 * LIMIT or cursor works on the index ranges of the subtree's budgets, never on a materialised set.
 */
export class UsageRowsForBudget1764303500000 implements MigrationInterface {
  name = 'UsageRowsForBudget1764303500000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE FUNCTION budget_usage_rows(p_budget_id uuid, p_from timestamptz, p_to timestamptz)
      RETURNS SETOF budget_usage_records
      LANGUAGE sql STABLE AS $fn$
        WITH RECURSIVE tree AS (
          SELECT p_budget_id AS id
          UNION
          SELECT c.id FROM budget_definitions c JOIN tree t ON c.parent_id = t.id
        )
        SELECT r.* FROM budget_usage_records r
        WHERE r.budget_id IN (SELECT tree.id FROM tree)
          AND r.occurred_at >= p_from AND r.occurred_at < p_to
      $fn$`);
    await queryRunner.query(`
      COMMENT ON FUNCTION budget_usage_rows(uuid, timestamptz, timestamptz) IS
        'The ledger rows that count toward a budget in [from, to), each once: the one rule every report reads by.'`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP FUNCTION budget_usage_rows(uuid, timestamptz, timestamptz)`);
  }
}
