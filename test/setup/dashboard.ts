import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

/**
 * Builds the dashboard (web/ → web/dist) as `npm run build` does, so a spec serves the current
 * sources on a fresh clone too. Before createTestApp: the Dashboard module looks for the files
 * when the app starts. esbuild takes well under a second.
 */
export function buildDashboard(): void {
  execFileSync(process.execPath, [join(__dirname, '..', '..', 'web', 'build.mjs')], { stdio: 'pipe' });
}
