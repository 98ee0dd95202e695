// `npm run <script>` starts a command in the package's folder; INIT_CWD is where it was
// run. This package's own commands (`npm run conformance`, `mock`, `backup`) take a
// relative path from there, as a shell user expects. Run any other way (the conformance
// bin in another project's script, node directly), the process's folder is the caller's.
// A leaf module: the conformance suite imports nothing from the server.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** This package's folder (src/conformance/ and dist/conformance/ are both two below it). */
const PACKAGE_ROOT = fileURLToPath(new URL('../..', import.meta.url));

const same = (a: string, b: string) => {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
};

/** The folder a relative path on the command line is taken from. */
export function callersFolder(): string {
  const caller = process.env.INIT_CWD;
  return caller && same(process.cwd(), PACKAGE_ROOT) ? caller : process.cwd();
}
