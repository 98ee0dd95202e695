// vitest globalSetup: dist/ (the built commands the process tests run, as users run them)
// built once before any test file when it is missing or older than src/ (npm ci builds
// it; after an edit, npm test or vitest alone gets a fresh build here), once, not one per
// worker inside some test's timeout.
import { ensureBuilt } from '../helpers/built.js';

export default function setup(): void {
  ensureBuilt();
}
