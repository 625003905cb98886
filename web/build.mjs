// Builds the dashboard into web/dist: one ES module bundle (app.js), its style sheet and page.
// `npm run build` runs it after `nest build`; test/dashboard-browser.spec.ts runs it before it starts.
import { build } from 'esbuild';
import { copyFile, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const web = dirname(fileURLToPath(import.meta.url));
const out = join(web, 'dist');
await mkdir(out, { recursive: true });
await build({
  entryPoints: [join(web, 'src', 'main.ts')],
  bundle: true,
  format: 'esm',
  target: 'es2022',
  minify: true,
  sourcemap: true,
  outfile: join(out, 'app.js'),
  logLevel: 'warning',
});
await copyFile(join(web, 'index.html'), join(out, 'index.html'));
await copyFile(join(web, 'app.css'), join(out, 'app.css'));
