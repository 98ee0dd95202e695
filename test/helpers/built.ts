// The built command line tools (dist/), as users run them. vitest's global setup builds
// them first when dist/ is missing or older than src/ (test/setup/built-dist.ts).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const dist = join(root, 'dist');

function newestIn(folder: string): number {
  return Math.max(
    0,
    ...readdirSync(folder, { withFileTypes: true }).map((entry) => {
      const path = join(folder, entry.name);
      return entry.isDirectory() ? newestIn(path) : statSync(path).mtimeMs;
    }),
  );
}

/** Whether dist/'s last build (tsc writes every file) is newer than every source file. */
export function distIsFresh(): boolean {
  const built = join(dist, 'main.js');
  return existsSync(built) && statSync(built).mtimeMs >= newestIn(join(root, 'src'));
}

/** Builds dist/ unless it is fresh. */
export function ensureBuilt(): void {
  if (distIsFresh()) return;
  try {
    execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: root, encoding: 'utf8' });
  } catch (error) {
    // tsc writes dist/ despite type errors (npm run typecheck fails on them): the tests run, the errors are shown.
    const { stdout } = error as { stdout?: string };
    if (!distIsFresh()) throw new Error(`npm run build failed:\n${stdout ?? String(error)}`);
    console.warn(`dist/ was built with type errors (npm run typecheck fails on them):\n${stdout ?? ''}`);
  }
}

/** The absolute path of `dist/<file>`. */
export const builtFile = (file: string): string => join(dist, file);
