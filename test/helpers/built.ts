// The built command line tools (dist/), as users run them. npm test builds before vitest;
// a test file run alone builds first when dist/ is missing or older than src/.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

function newestIn(folder: string): number {
  return Math.max(
    0,
    ...readdirSync(folder, { withFileTypes: true }).map((entry) => {
      const path = join(folder, entry.name);
      return entry.isDirectory() ? newestIn(path) : statSync(path).mtimeMs;
    }),
  );
}

/** The absolute path of `dist/<file>`, built if it is missing or older than any source file. */
export function builtFile(file: string): string {
  const path = join(root, 'dist', file);
  if (!existsSync(path) || statSync(path).mtimeMs < newestIn(join(root, 'src'))) {
    execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: root });
  }
  return path;
}
