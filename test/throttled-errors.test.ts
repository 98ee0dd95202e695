// Background work failing on every tick (storage down) is reported once a minute, not on every
// tick; and once it works again after a failure that was reported, that is reported too.
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

  /** A reporter on a clock the test moves (`clock.now`), writing its lines to `lines`. */
  function reporter() {
    const clock = { now: 0 };
    const lines: string[] = [];
    const onError = throttledErrors((error, heldBack) => lines.push(`${String(error)} (${heldBack} held back)`), {
      intervalMs: 60_000,
      now: () => clock.now,
      recovered: (failures) => lines.push(`works again after ${failures}`),
    });
    return { clock, lines, onError };
  }

  it('reports the first success after a reported failure, with how many failed since the last success', () => {
    const { clock, lines, onError } = reporter();
    onError.succeeded(); // nothing failed: nothing to say
    for (let tick = 0; tick < 8; tick += 1, clock.now += 250) onError(`failure ${tick}`);
    onError.succeeded();
    onError.succeeded();
    expect(lines).toEqual(['failure 0 (0 held back)', 'works again after 8']);
  });

  it('says nothing of an outage it held back whole, and counts it in the next line: a task that flaps makes at most two lines a minute', () => {
    const { clock, lines, onError } = reporter();
    for (let tick = 0; tick < 4 * 60; tick += 1, clock.now += 250) {
      onError(`failure ${tick}`);
      onError.succeeded();
    }
    onError('a minute on');
    onError.succeeded();
    expect(lines).toEqual(['failure 0 (0 held back)', 'works again after 1', 'a minute on (239 held back)', 'works again after 1']);
  });

  it('counts in "works again" the failures since the task last worked, not those before an unlogged recovery', () => {
    let at = 0;
    const lines: string[] = [];
    const failed = throttledErrors((_e, heldBack) => lines.push(`failed heldBack=${heldBack}`), { now: () => at, recovered: (n) => lines.push(`works again failures=${n}`) });
    failed(new Error('a')); // logged
    failed.succeeded(); // works again, 1
    at = 1000;
    failed(new Error('b')); // held back (within the minute)
    failed.succeeded(); // worked: not logged (no logged failure)
    at = 120_000;
    failed(new Error('c')); // logged
    failed.succeeded(); // works again: 1 failure since it last worked
    expect(lines).toEqual(['failed heldBack=0', 'works again failures=1', 'failed heldBack=1', 'works again failures=1']);
  });
});
