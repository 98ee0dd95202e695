// Validators and serializers compiled when first used (compiled-on-first-use.ts), or one a
// turn of the event loop once a server listens (compileInTurns).
import { describe, expect, it } from 'vitest';
import { CompiledOnFirstUse, compileInTurns } from '../src/http/compiled-on-first-use.js';

describe('CompiledOnFirstUse', () => {
  it('compiles a key once, on first use or by compileNext, which passes over those used already', () => {
    const compiled: string[] = [];
    const cache = new CompiledOnFirstUse<string>();
    const [a, b, c] = ['a', 'b', 'c'].map((key) => cache.onFirstUse(key, () => (compiled.push(key), key.toUpperCase())));
    expect(cache.waiting()).toBe(3);
    expect(b!()).toBe('B');
    expect(cache.waiting()).toBe(2);
    expect([cache.compileNext(), cache.compileNext(), cache.compileNext()]).toEqual([true, true, false]);
    expect([a!(), c!(), cache.ready('a')]).toEqual(['A', 'C', 'A']);
    expect(compiled).toEqual(['b', 'a', 'c']);
    expect(cache.waiting()).toBe(0);
  });
});

describe('compileInTurns', () => {
  it('compiles one a turn of the event loop, the first compiler until it has none, then the next; one that throws is passed over', async () => {
    const log: string[] = [];
    const from = (name: string, count: number, throwAt = -1) => {
      let done = 0;
      return () => {
        if (done === count) return false;
        done += 1;
        log.push(`${name}${done}`);
        if (done === throwAt) throw new Error('does not compile');
        return true;
      };
    };
    let turns = 0;
    let counting = true;
    const tick = () => {
      if (!counting) return;
      turns += 1;
      setImmediate(tick);
    };
    setImmediate(tick);
    await compileInTurns(from('v', 2, 1), from('s', 3));
    counting = false;
    expect(log).toEqual(['v1', 'v2', 's1', 's2', 's3']);
    expect(turns).toBeGreaterThanOrEqual(5);
  });
});
