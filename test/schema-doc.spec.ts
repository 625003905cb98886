import { readFileSync } from 'node:fs';
import { DUMP_COMMAND, dumpSchemaOf, SCHEMA_FILE } from '../src/database/schema-dump';
import { createTestDatabase } from './setup/test-database';

/**
 * docs/schema.sql is the one place to read the schema (every table, index, constraint, function
 * and trigger): it must be what the migrations produce. The dump of a clone of the migrated test
 * template is compared with the committed file; the text is the same on PostgreSQL 15 and 18.
 */
function firstDifference(committed: string, generated: string): string {
  const a = committed.split('\n');
  const b = generated.split('\n');
  const line = a.findIndex((text, i) => text !== b[i]);
  const at = line === -1 ? a.length : line;
  const excerpt = (lines: string[]) => lines.slice(at, at + 5).map((text) => `    ${text}`).join('\n');
  return `First difference at line ${at + 1}:\n  committed:\n${excerpt(a)}\n  generated:\n${excerpt(b)}`;
}

it('docs/schema.sql is what the migrations produce', async () => {
  const generated = await dumpSchemaOf(await createTestDatabase());
  const committed = readFileSync(SCHEMA_FILE, 'utf8');
  const problem =
    generated === committed
      ? ''
      : `docs/schema.sql differs from the migrated schema: run \`${DUMP_COMMAND}\` and commit docs/schema.sql.\n` +
        firstDifference(committed, generated);
  expect(problem).toBe('');
});

it('covers every kind of object the migrations create', () => {
  const schema = readFileSync(SCHEMA_FILE, 'utf8');
  for (const heading of ['-- Tables', '-- Indexes', '-- Functions', '-- Triggers']) expect(schema).toContain(heading);
  expect(schema).toContain('CREATE TABLE public.budget_usage_records (');
  expect(schema).toContain('CREATE OR REPLACE FUNCTION public.record_usage(');
  expect(schema).toContain('CREATE TRIGGER budget_usage_records_rollup ');
  expect(schema).not.toContain('public.migrations');
});
