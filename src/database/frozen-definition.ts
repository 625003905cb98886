import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The statement with which an earlier (frozen) migration defined function `name`, as CREATE OR
 * REPLACE: read from that migration's own up() (recorded, not run), so a later migration's down()
 * restores the text verbatim instead of keeping a second copy of it.
 */
export async function frozenDefinition(migration: MigrationInterface, name: string): Promise<string> {
  const statements: string[] = [];
  await migration.up({ query: async (sql: string) => void statements.push(sql) } as unknown as QueryRunner);
  const found = statements.filter((sql) => new RegExp(`^\\s*CREATE (OR REPLACE )?FUNCTION ${name}\\(`).test(sql));
  if (found.length !== 1) throw new Error(`${migration.constructor.name} does not define function ${name} exactly once`);
  return found[0].replace(/CREATE (OR REPLACE )?FUNCTION/, 'CREATE OR REPLACE FUNCTION');
}

/** An edit of a frozen function's text: `from` must occur in it exactly once. */
export interface FunctionEdit {
  what: string;
  from: string;
  to: string;
}

/**
 * frozenDefinition with edits applied, for a later migration that changes a few lines of a long
 * function: each edit names what it does, and fails loudly if the text it edits is not there
 * exactly once (so the frozen text it reads cannot drift under it unnoticed).
 */
export async function editedFrozenDefinition(migration: MigrationInterface, name: string, edits: FunctionEdit[]): Promise<string> {
  let text = await frozenDefinition(migration, name);
  for (const edit of edits) {
    const count = text.split(edit.from).length - 1;
    if (count !== 1) throw new Error(`${name}: the text of "${edit.what}" occurs ${count} times, expected once`);
    text = text.replace(edit.from, () => edit.to);
  }
  return text;
}
