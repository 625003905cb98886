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
  return applyEdits(name, await frozenDefinition(migration, name), edits);
}

/**
 * The function as the database holds it now (`signature`, e.g. `f(uuid, jsonb)`), with edits
 * applied as editedFrozenDefinition applies them: for a function an earlier migration already
 * edited where it stands (its text is in no migration whole).
 */
export async function editedCurrentDefinition(queryRunner: QueryRunner, signature: string, edits: FunctionEdit[]): Promise<string> {
  const [{ definition }] = await queryRunner.query(`SELECT pg_get_functiondef($1::regprocedure) AS definition`, [signature]);
  return applyEdits(signature, definition as string, edits);
}

/** The same edits undone, for a down(): each `to` back to its `from`, last edit first. */
export const undone = (edits: FunctionEdit[]): FunctionEdit[] =>
  edits.map((edit) => ({ what: `undo: ${edit.what}`, from: edit.to, to: edit.from })).reverse();

function applyEdits(name: string, text: string, edits: FunctionEdit[]): string {
  for (const edit of edits) {
    const count = text.split(edit.from).length - 1;
    if (count !== 1) throw new Error(`${name}: the text of "${edit.what}" occurs ${count} times, expected once`);
    text = text.replace(edit.from, () => edit.to);
  }
  return text;
}
