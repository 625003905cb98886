import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { createTestDatabase } from './setup/test-database';

/**
 * openapi.json (committed, the source of clients/typescript) is the document the code serves.
 * The @nestjs/swagger CLI plugin runs only in `nest build`, not under ts-jest, so the running
 * app is built here exactly as `npm run openapi:generate` builds it (same nest-cli.json, plugin
 * and tsconfig.build.json; only the output folder differs, so dist/ is left alone), and the
 * generator of that build writes the document it serves at /docs-json.
 */

const run = promisify(execFile);
const ROOT = resolve(__dirname, '..');
const WORK = join(ROOT, 'node_modules', '.cache', 'openapi-check');

describe('openapi.json', () => {
  beforeAll(() => {
    rmSync(WORK, { recursive: true, force: true });
    mkdirSync(WORK, { recursive: true });
    writeFileSync(
      join(WORK, 'tsconfig.json'),
      JSON.stringify({ extends: '../../../tsconfig.build.json', compilerOptions: { outDir: './dist', sourceMap: false } }),
    );
  });

  afterAll(() => rmSync(WORK, { recursive: true, force: true }));

  it('equals the document the built app serves (run `npm run openapi:generate` after an API change)', async () => {
    await run(process.execPath, [join(ROOT, 'node_modules/@nestjs/cli/bin/nest.js'), 'build', '-p', 'node_modules/.cache/openapi-check/tsconfig.json'], {
      cwd: ROOT,
    });
    const generated = join(WORK, 'openapi.json');
    await run(process.execPath, [join(WORK, 'dist/src/cli/openapi.cli.js'), generated], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: await createTestDatabase() },
    });
    const served = readFileSync(generated, 'utf8');
    const committed = readFileSync(join(ROOT, 'openapi.json'), 'utf8');
    // The plugin's additions are present: a field documented only by it (no @ApiProperty).
    expect(JSON.parse(served).components.schemas.BudgetAlertResponseDto.properties.id).toBeDefined();
    // Content first (a readable diff of what changed), then the exact text (key order, format).
    expect(JSON.parse(committed)).toEqual(JSON.parse(served));
    expect(committed).toBe(served);
  });
});
