import { MigrationInterface, QueryRunner } from 'typeorm';
import { BudgetDefinitions1764300000000 } from './1764300000000-BudgetDefinitions';

/**
 * Issue 11, the rules the database holds (SPEC §12.1):
 * - a cycle is reported before the currency and amount rules of the hierarchy;
 *
 * down() restores each replaced function from the frozen migration that created it, verbatim.
 */
export class Hardening1764301000000 implements MigrationInterface {
  name = 'Hardening1764301000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    // The hierarchy rules, the cycle first: a parent that is the budget itself or one of its
    // descendants is a cycle whatever the amounts and currencies say.
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION budget_definitions_hierarchy_guard() RETURNS trigger
      LANGUAGE plpgsql AS $fn$
      DECLARE
        parent          budget_definitions%ROWTYPE;
        parent_depth    integer;
        subtree_height  integer;
        conflicting     text;
      BEGIN
        IF TG_OP = 'UPDATE' AND NEW.deleted_at IS NOT NULL AND OLD.deleted_at IS NULL THEN
          IF EXISTS (SELECT 1 FROM budget_definitions WHERE parent_id = NEW.id AND deleted_at IS NULL) THEN
            RAISE EXCEPTION USING ERRCODE = 'RB409', MESSAGE = 'BUDGET_HAS_CHILDREN',
              DETAIL = 'This budget still has live child budgets; delete or move them first.';
          END IF;
          RETURN NEW;
        END IF;
        IF NEW.deleted_at IS NOT NULL THEN
          RETURN NEW;
        END IF;

        IF TG_OP = 'UPDATE' AND NEW.parent_id IS DISTINCT FROM OLD.parent_id THEN
          PERFORM pg_advisory_xact_lock(hashtext('budget_definitions.hierarchy'));
        ELSIF NEW.parent_id IS NOT NULL THEN
          PERFORM pg_advisory_xact_lock_shared(hashtext('budget_definitions.hierarchy'));
        END IF;

        IF NEW.parent_id IS NOT NULL THEN
          SELECT * INTO parent FROM budget_definitions WHERE id = NEW.parent_id FOR SHARE;
          IF NOT FOUND OR parent.deleted_at IS NOT NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'RB422', MESSAGE = 'PARENT_NOT_FOUND',
              DETAIL = format('Parent budget %s does not exist or was deleted.', NEW.parent_id);
          END IF;
          WITH RECURSIVE chain AS (
            SELECT b.id, b.parent_id, 1 AS depth FROM budget_definitions b WHERE b.id = NEW.parent_id
            UNION ALL
            SELECT b.id, b.parent_id, c.depth + 1 FROM budget_definitions b JOIN chain c ON b.id = c.parent_id
            WHERE c.depth <= 9
          )
          SELECT max(depth), bool_or(id = NEW.id)::text INTO parent_depth, conflicting FROM chain;
          IF conflicting = 'true' THEN
            RAISE EXCEPTION USING ERRCODE = 'RB409', MESSAGE = 'HIERARCHY_CYCLE',
              DETAIL = 'That parent is this budget or one of its descendants; budgets cannot form a cycle.';
          END IF;
          IF parent.currency <> NEW.currency THEN
            RAISE EXCEPTION USING ERRCODE = 'RB422', MESSAGE = 'PARENT_CURRENCY_MISMATCH',
              DETAIL = format('A child budget must use its parent''s currency (%s), not %s.', parent.currency, NEW.currency);
          END IF;
          IF NEW.amount > parent.amount THEN
            RAISE EXCEPTION USING ERRCODE = 'RB422', MESSAGE = 'AMOUNT_EXCEEDS_PARENT',
              DETAIL = format('The amount %s is larger than the parent budget''s amount %s.',
                              trim_scale(NEW.amount), trim_scale(parent.amount));
          END IF;
        ELSE
          parent_depth := 0;
        END IF;

        IF TG_OP = 'UPDATE' THEN
          WITH RECURSIVE subtree AS (
            SELECT b.id, 1 AS height FROM budget_definitions b WHERE b.id = NEW.id
            UNION ALL
            SELECT b.id, s.height + 1 FROM budget_definitions b JOIN subtree s ON b.parent_id = s.id
            WHERE b.deleted_at IS NULL AND s.height <= 9
          )
          SELECT max(height) INTO subtree_height FROM subtree;
          IF NEW.amount IS DISTINCT FROM OLD.amount OR NEW.currency IS DISTINCT FROM OLD.currency THEN
            SELECT string_agg(c.id::text, ', ') INTO conflicting FROM budget_definitions c
            WHERE c.parent_id = NEW.id AND c.deleted_at IS NULL
              AND (c.amount > NEW.amount OR c.currency <> NEW.currency);
            IF conflicting IS NOT NULL THEN
              RAISE EXCEPTION USING ERRCODE = 'RB422', MESSAGE = 'CHILDREN_CONFLICT',
                DETAIL = format('Child budgets %s would exceed the new amount or differ from the new currency.', conflicting);
            END IF;
          END IF;
        ELSE
          subtree_height := 1;
        END IF;
        IF parent_depth + subtree_height > 8 THEN
          RAISE EXCEPTION USING ERRCODE = 'RB422', MESSAGE = 'HIERARCHY_TOO_DEEP',
            DETAIL = 'A budget hierarchy has at most 8 levels (a root and 7 generations below it).';
        END IF;
        RETURN NEW;
      END
      $fn$`);

  }

  async down(queryRunner: QueryRunner): Promise<void> {
    const restore = async (migration: MigrationInterface, name: string) =>
      queryRunner.query(await frozenDefinition(migration, name));
    await restore(new BudgetDefinitions1764300000000(), 'budget_definitions_hierarchy_guard');
  }
}

/**
 * The statement with which a frozen migration created function `name`, as CREATE OR REPLACE: read
 * from that migration's own up() (recorded, not run), so down() restores the text verbatim.
 */
async function frozenDefinition(migration: MigrationInterface, name: string): Promise<string> {
  const statements: string[] = [];
  await migration.up({ query: async (sql: string) => void statements.push(sql) } as unknown as QueryRunner);
  const found = statements.filter((sql) => new RegExp(`^\\s*CREATE FUNCTION ${name}\\(`).test(sql));
  if (found.length !== 1) throw new Error(`${migration.constructor.name} does not create function ${name} exactly once`);
  return found[0].replace('CREATE FUNCTION', 'CREATE OR REPLACE FUNCTION');
}
