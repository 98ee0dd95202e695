// vitest globalSetup: dist/ (the built commands the process tests run, as users run them)
// built once before any test file when it is missing or older than src/. npm test builds
// before vitest; a run of vitest alone after an edit gets a fresh build here, once, not
// one per worker inside some test's timeout.
import { ensureBuilt } from '../helpers/built.js';

export default function setup(): void {
  ensureBuilt();
}
