import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';

/**
 * The one-way doors (STYLE.md) as a test: the rules of .dependency-cruiser.cjs over src/,
 * migrations/ and ormconfig.ts. dependency-cruiser is an ES module jest cannot load, so it runs as
 * its own process and answers in JSON.
 */
const ROOT = resolve(__dirname, '..');
const CLI = resolve(ROOT, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs');

interface Violation {
  rule: { name: string; severity: string };
  from: string;
  to: string;
  cycle?: Array<{ name: string } | string>;
}

interface CruiseResult {
  summary: { violations: Violation[]; totalCruised: number };
  modules: Array<{ source: string }>;
}

async function cruise(): Promise<CruiseResult> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [CLI, 'src', 'migrations', 'ormconfig.ts', '--config', '.dependency-cruiser.cjs', '--output-type', 'json'],
    { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 },
  ).catch((error: { stdout?: string; stderr?: string }) => {
    // The CLI exits non-zero when it finds violations; the JSON is on stdout all the same.
    if (error.stdout) return { stdout: error.stdout };
    throw new Error(`dependency-cruiser failed: ${error.stderr ?? String(error)}`);
  });
  return JSON.parse(stdout) as CruiseResult;
}

function describeViolation(violation: Violation): string {
  const cycle = violation.cycle?.map((step) => (typeof step === 'string' ? step : step.name));
  const path = cycle?.length ? [violation.from, ...cycle].join(' → ') : `${violation.from} → ${violation.to}`;
  return `${violation.rule.name}: ${path}`;
}

let result: CruiseResult;
beforeAll(async () => {
  result = await cruise();
});

it('cruises every room (the rules are not vacuous)', () => {
  const sources = result.modules.map((module) => module.source);
  for (const file of ['src/main.ts', 'src/budget/budget.module.ts', 'src/usage/usage.module.ts', 'src/constraint/constraint.module.ts', 'ormconfig.ts']) {
    expect(sources).toContain(file);
  }
  expect(sources.some((source) => source.startsWith('migrations/'))).toBe(true);
});

it('imports point down only, reach no internals of another room, and make no circle', () => {
  // Each line: rule: importer → imported. The rules and the rooms are explained at the top of
  // .dependency-cruiser.cjs; `npx depcruise src --config .dependency-cruiser.cjs` prints the same.
  expect(result.summary.violations.map(describeViolation).sort()).toEqual([]);
});
