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
