import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

/**
 * The one-way doors (STYLE.md): pricing sits below usage, constraint and budget, so it imports
 * only common, config and database (and the RequireRole decorator, as every controller does).
 */
const ROOM = __dirname;
const SRC = resolve(ROOM, '..');
const ALLOWED = [/^pricing\//, /^common\//, /^config\//, /^database\//, /^auth\/require-role\.decorator$/];

const files = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? files(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [],
  );

it('src/pricing imports nothing from the rooms above it', () => {
  const outside: string[] = [];
  for (const file of files(ROOM)) {
    for (const [, specifier] of readFileSync(file, 'utf8').matchAll(/\b(?:from|import)\s+'(\.[^']+)'/g)) {
      const target = relative(SRC, resolve(dirname(file), specifier));
      if (!ALLOWED.some((rule) => rule.test(target))) outside.push(`${relative(SRC, file)} → ${target}`);
    }
  }
  expect(outside).toEqual([]);
});
