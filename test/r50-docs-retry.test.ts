// R50: a first load of /docs that ran out of descriptors inside Scalar's dependencies (a few
// descriptors left, not none) fails at every later attempt: Node keeps the dependency's failed
// load under its URL, and only the entry's URL changes with ?attempt=N.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const probe = fileURLToPath(new URL('./helpers/r50-docs-probe.mjs', import.meta.url));
it.each([0, 1, 3])('with %i descriptors free at the first load, a later attempt loads Scalar', (free) => {
  const run = spawnSync('prlimit', ['--nofile=64:64', process.execPath, probe, String(free)], { encoding: 'utf8' });
  const { first, later } = JSON.parse(run.stdout);
  expect(first).toBe('EMFILE');
  expect(later.at(-1)).toBe('ok');
});
