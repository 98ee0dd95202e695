// Mutation score, second half (see conformance-mutations-1.test.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectCaught, mutants, runThrough, selectionOf } from './helpers/conformance-mutants.js';
import { fastClock, serveOurs, type Target } from './helpers/conformance-target.js';

// 600× the wall clock: a 5-minute session expires in half a second, so the 410 flow runs.
let server: Target;
beforeAll(async () => {
  server = await serveOurs({ clock: fastClock(600) });
});
afterAll(async () => {
  await server.close();
});

const half = mutants.slice(Math.ceil(mutants.length / 2));

describe('the conformance suite catches every injected fault (second half)', { timeout: 120_000 }, () => {
  it('passes through the proxy injecting nothing with each selection the faults are run with', async () => {
    const selections = new Map(mutants.map((mutant) => [JSON.stringify(selectionOf(mutant)), selectionOf(mutant)]));
    for (const [name, selection] of selections) {
      const report = await runThrough(server.url, {}, selection);
      expect(report.cases.length, name).toBeGreaterThan(0);
      expect(report.cases.filter((c) => !c.passed).map((c) => `${name} ${c.key}: ${c.violations.map((v) => v.message).join('; ')}`)).toEqual([]);
    }
  });

  it.each(half.map((m) => [m.name, m] as const))('catches: %s', async (_name, mutant) => {
    await expectCaught(server.url, mutant);
  });
});
