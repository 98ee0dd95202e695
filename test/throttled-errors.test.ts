// Background work failing on every tick (storage down) is reported once a minute, not on every tick.
import { describe, expect, it } from 'vitest';
import { throttledErrors } from '../src/ops/throttled-errors.js';

describe('throttledErrors', () => {
  it('passes on the first failure, then one a minute with how many it held back since', () => {
    let now = 0;
    const reported: Array<[string, number]> = [];
    const onError = throttledErrors((error, heldBack) => reported.push([String(error), heldBack]), { intervalMs: 60_000, now: () => now });
    for (let tick = 0; tick < 4 * 60; tick += 1, now += 250) onError(`failure ${tick}`); // 4 a second for a minute
    onError('after a minute');
    expect(reported).toEqual([
      ['failure 0', 0],
      ['after a minute', 239],
    ]);
    now += 59_999;
    onError('too soon');
    now += 1;
    onError('a minute on');
    expect(reported.slice(2)).toEqual([['a minute on', 1]]);
  });
});
