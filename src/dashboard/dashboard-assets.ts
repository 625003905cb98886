import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** Where `npm run build` (web/build.mjs) writes the dashboard, relative to the package root. */
export const DASHBOARD_BUILD_DIR = join('web', 'dist');

/**
 * The folder of the built dashboard: `web/dist` beside the package.json this file belongs to.
 * Found by walking up, because this file runs from `src/dashboard` (ts-node, tests) and from
 * `dist/src/dashboard` (the built service) alike.
 */
export function dashboardAssetsDir(from: string = __dirname): string {
  let dir = from;
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) return join(from, DASHBOARD_BUILD_DIR);
    dir = parent;
  }
  return join(dir, DASHBOARD_BUILD_DIR);
}

/** The dashboard is built when its page and its script are there. */
export const dashboardIsBuilt = (dir: string) => existsSync(join(dir, 'index.html')) && existsSync(join(dir, 'app.js'));
