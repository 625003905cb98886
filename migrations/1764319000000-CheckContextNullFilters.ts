import { MigrationInterface, QueryRunner } from 'typeorm';
import { editedFrozenDefinition, frozenDefinition } from '../src/database/frozen-definition';
import { CheckContextOfBudget1764315000000 } from './1764315000000-CheckContextOfBudget';

/**
 * `budget_check_context_of` with p_apply_filters NULL and a filter that refuses the request:
 * budget_check_context answers the budget as refused (`matches` false); the inlined function
 * answered `matches` NULL, which the decision would not read as filtered. The service always passes
 * a boolean; a direct SQL caller now gets the same rows from both functions in this case too.
 */
export class CheckContextNullFilters1764319000000 implements MigrationInterface {
  name = 'CheckContextNullFilters1764319000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(await editedFrozenDefinition(new CheckContextOfBudget1764315000000(), 'budget_check_context_of', [NULL_FILTERS]));
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(await frozenDefinition(new CheckContextOfBudget1764315000000(), 'budget_check_context_of'));
  }
}

/** A refusal under unknown p_apply_filters is a refusal, as budget_seeds' WHERE makes it. */
const NULL_FILTERS = {
  what: 'matches is never NULL',
  from: `d.filter IS NULL OR NOT p_apply_filters OR budget_filter_accepts(d.filter, p_model_id, p_tags) AS matches`,
  to: `coalesce(d.filter IS NULL OR NOT p_apply_filters OR budget_filter_accepts(d.filter, p_model_id, p_tags), false) AS matches`,
};
