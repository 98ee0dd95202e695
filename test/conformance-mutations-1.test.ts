// Mutation score, first half: the conformance suite through a transparent proxy passes,
// and through one injecting a fault (test/helpers/conformance-mutants.ts) fails, caught
// by the check named. The second half is conformance-mutations-2.test.ts (two files, so
// that vitest's two workers share the runs).
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectCaught, mutants, runThrough } from './helpers/conformance-mutants.js';
import { fastClock, serveOurs, type Target } from './helpers/conformance-target.js';

// 600× the wall clock: a 5-minute session expires in half a second, so the 410 flow runs.
let server: Target;
beforeAll(async () => {
  server = await serveOurs({ clock: fastClock(600) });
});
afterAll(async () => {
  await server.close();
});

const half = mutants.slice(0, Math.ceil(mutants.length / 2));

describe('the conformance suite catches every injected fault (first half)', { timeout: 120_000 }, () => {
  it('passes through the proxy when it injects nothing, expired-session flow included', async () => {
    const report = await runThrough(server.url, {});
    expect(report.cases.filter((c) => !c.passed).map((c) => `${c.key}: ${c.violations.map((v) => v.message).join('; ')}`)).toEqual([]);
    expect(report.cases.some((c) => c.key === 'flow/sessions/expired')).toBe(true);
  });

  it('has at least 20 distinct faults, each in the README with the check that caught it', () => {
    expect(new Set(mutants.map((m) => m.name)).size).toBeGreaterThanOrEqual(20);
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    for (const mutant of mutants) expect(readme).toContain(`| ${mutant.name} | \`${mutant.caughtBy}\` |`);
  });

  it.each(half.map((m) => [m.name, m] as const))('catches: %s', async (_name, mutant) => {
    await expectCaught(server.url, mutant);
  });
});
