import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

/**
 * Released migrations are frozen: migrations/checksums.json pins the SHA-256 of every migration
 * file, and test/migration-checksums.spec.ts fails when a pinned file changes or a new one is not
 * pinned yet. `npm run migration:checksums` pins new files; it never rewrites an existing entry.
 */
export const MIGRATIONS_DIR = resolve(__dirname, '../../migrations');
export const CHECKSUMS_FILE = resolve(MIGRATIONS_DIR, 'checksums.json');
export const PIN_COMMAND = 'npm run migration:checksums';

export type Checksums = Record<string, string>;

export const sha256OfFile = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

/** The migration files (every .ts in migrations/), sorted by name. */
export function migrationFiles(dir = MIGRATIONS_DIR): string[] {
  return readdirSync(dir)
    .filter((name) => name.endsWith('.ts'))
    .sort();
}

export function readChecksums(file = CHECKSUMS_FILE): Checksums {
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Checksums) : {};
}

export interface ChecksumReport {
  /** Pinned files whose content changed. */
  edited: string[];
  /** Files not pinned yet. */
  unpinned: string[];
  /** Pinned files that are gone. */
  missing: string[];
}

export function compareChecksums(pinned: Checksums, dir = MIGRATIONS_DIR): ChecksumReport {
  const files = migrationFiles(dir);
  return {
    edited: files.filter((name) => name in pinned && pinned[name] !== sha256OfFile(resolve(dir, name))),
    unpinned: files.filter((name) => !(name in pinned)),
    missing: Object.keys(pinned).filter((name) => !files.includes(name)),
  };
}

/** Adds the unpinned files to the map (sorted by name); pinned entries are kept as they are. */
export function pinNewMigrations(dir = MIGRATIONS_DIR, file = CHECKSUMS_FILE): { added: string[]; report: ChecksumReport } {
  const pinned = readChecksums(file);
  const report = compareChecksums(pinned, dir);
  const next: Checksums = { ...pinned };
  for (const name of report.unpinned) next[name] = sha256OfFile(resolve(dir, name));
  const sorted = Object.fromEntries(Object.keys(next).sort().map((name) => [name, next[name]]));
  if (report.unpinned.length > 0) writeFileSync(file, `${JSON.stringify(sorted, null, 2)}\n`);
  return { added: report.unpinned, report };
}

if (require.main === module) {
  const { added, report } = pinNewMigrations();
  for (const name of added) console.log(`pinned ${name}`);
  if (added.length === 0) console.log('No new migration to pin.');
  for (const name of report.edited) {
    console.error(`${name} differs from its pinned checksum: released migrations are frozen. ` +
      `Restore it and change the schema through a new migration.`);
  }
  for (const name of report.missing) console.error(`${name} is pinned but no longer exists: restore it.`);
  process.exitCode = report.edited.length + report.missing.length > 0 ? 1 : 0;
}
