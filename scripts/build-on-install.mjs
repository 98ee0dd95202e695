// npm's `prepare` (run by `npm ci` and `npm install`): compiles src/ to dist/, so that
// `npm start` runs `node dist/main.js` at once. A production install
// (`npm ci --omit=dev`) has no TypeScript: it keeps the dist/ a full install built.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

let tsc;
try {
  tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
} catch {
  if (existsSync('dist/main.js')) {
    console.log('prepare: TypeScript is not installed (production install); dist/ is kept as built');
    process.exit(0);
  }
  console.error('prepare: dist/ is not built and TypeScript is not installed: run `npm ci` with dev dependencies (or `npm run build`) first');
  process.exit(1);
}
execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
