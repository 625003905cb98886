import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CHECKSUMS_FILE,
  compareChecksums,
  migrationFiles,
  PIN_COMMAND,
  pinNewMigrations,
  readChecksums,
} from '../src/database/migration-checksums';
import { MIGRATIONS } from '../src/database/data-source.options';

/**
 * Released migrations are frozen (STYLE.md rule 8): an upgraded database never runs an edited
 * migration again, so an edit would silently never reach it. migrations/checksums.json pins every
 * file; a function or table changes through a new migration (`CREATE OR REPLACE FUNCTION`).
 */
const pinned = readChecksums();
const report = compareChecksums(pinned);

it('no released migration was edited', () => {
  const message = report.edited.map(
    (name) =>
      `migrations/${name} differs from its checksum in migrations/checksums.json. Released migrations are ` +
      `frozen: restore it (git checkout main -- migrations/${name}) and make the change in a new migration.`,
  );
  expect(message).toEqual([]);
});

it('no pinned migration was removed', () => {
  const message = report.missing.map((name) => `migrations/${name} is pinned in migrations/checksums.json but is gone: restore it.`);
  expect(message).toEqual([]);
});

it('every migration file is pinned', () => {
  const message = report.unpinned.map(
    (name) =>
      `migrations/${name} is new: pin it with \`${PIN_COMMAND}\` (adds new files, never rewrites an entry), ` +
      'regenerate docs/schema.sql with `npm run schema:dump`, and commit both with the migration.',
  );
  expect(message).toEqual([]);
});

it('every migration file is one the data source runs, and the other way round', () => {
  const classNames = MIGRATIONS.map((migration) => migration.name);
  // <timestamp>-<Name>.ts holds the class <Name><timestamp>.
  const expected = migrationFiles().map((file) => {
    const [, timestamp, name] = /^(\d+)-(.+)\.ts$/.exec(file) ?? [];
    return `${name}${timestamp}`;
  });
  expect(classNames.sort()).toEqual(expected.sort());
});

describe('the pin command', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'migration-checksums-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('pins a new file and never rewrites an entry that is already there', () => {
    const map = join(dir, 'checksums.json');
    writeFileSync(join(dir, '1-First.ts'), 'first');
    expect(pinNewMigrations(dir, map).added).toEqual(['1-First.ts']);
    const first = readChecksums(map)['1-First.ts'];
    expect(first).toMatch(/^[0-9a-f]{64}$/);

    writeFileSync(join(dir, '1-First.ts'), 'first, edited');
    writeFileSync(join(dir, '2-Second.ts'), 'second');
    const { added, report: after } = pinNewMigrations(dir, map);
    expect(added).toEqual(['2-Second.ts']);
    expect(after.edited).toEqual(['1-First.ts']);
    expect(readChecksums(map)['1-First.ts']).toBe(first);
    expect(compareChecksums(readChecksums(map), dir)).toEqual({ edited: ['1-First.ts'], unpinned: [], missing: [] });
  });

  it('the committed map is what the command writes: sorted, one entry per file', () => {
    const text = readFileSync(CHECKSUMS_FILE, 'utf8');
    const names = Object.keys(JSON.parse(text) as object);
    expect(names).toEqual([...names].sort());
    expect(text.endsWith('}\n')).toBe(true);
  });
});
