/** The seed document's examples live beside the demo that walks them; specs import them from here. */
export { SEED_CREATE_BUDGET_EXAMPLE, SEED_RECORD_USAGE_EXAMPLE } from '../../src/demo/seed-examples';
