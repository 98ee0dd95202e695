// The due-event pump's batch size: large batches share their fixed cost, a batch over its
// time budget halves the next (the event loop must not stall), and one within it sizes the
// next to three quarters of the budget.
import { describe, expect, it } from 'vitest';
import { createEventPump, OFF_LOOP_MIN_BATCH } from '../src/events/due-events.js';
import type { Store } from '../src/storage/store.js';
import { T0 } from './helpers/fake-clock.js';

/** A store with `due` announcements due, each batch taking `msPerAnnouncement` of the injected time. */
function dueStore(due: number, msPerAnnouncement: number, announcesOffEventLoop = false) {
  const limits: number[] = [];
  let elapsed = 0;
  const store = {
    announcesOffEventLoop,
    async announceDue(_now: number, limit: number) {
      limits.push(limit);
      const fired = Math.min(limit, due);
      due -= fired;
      elapsed += fired * msPerAnnouncement;
      return fired;
    },
  } as unknown as Store;
  return { store, limits, elapsedMs: () => elapsed };
}

describe('the due-event pump', () => {
  it('doubles its batches while they are quick, up to batchSize, and announces everything due', async () => {
    const { store, limits, elapsedMs } = dueStore(5000, 0.001);
    const pump = createEventPump({ store, clock: { now: () => T0 }, batchSize: 1000, batchBudgetMs: 8, elapsedMs });
    expect(await pump.tick()).toBe(5000);
    expect(limits).toEqual([100, 200, 400, 800, 1000, 1000, 1000, 1000]);
  });

  it('halves a batch that took longer than its budget', async () => {
    const { store, limits, elapsedMs } = dueStore(300, 0.1); // 100 announcements take 10 ms
    const pump = createEventPump({ store, clock: { now: () => T0 }, batchSize: 1000, batchBudgetMs: 8, elapsedMs });
    expect(await pump.tick()).toBe(300);
    expect(limits).toEqual([100, 50, 60, 60, 60]); // 50 take 5 ms: within budget, the next sized to 6 ms
  });

  it('keeps the size of a batch that took exactly its budget (over it is what halves)', async () => {
    const { store, limits, elapsedMs } = dueStore(300, 1 / 16); // 100 announcements take 6.25 ms
    const pump = createEventPump({ store, clock: { now: () => T0 }, batchSize: 1000, batchBudgetMs: 6.25, elapsedMs });
    expect(await pump.tick()).toBe(300);
    expect(limits).toEqual([100, 100, 100, 100]);
  });

  it('sizes a full batch within its budget to take three quarters of it', async () => {
    const { store, limits, elapsedMs } = dueStore(2000, 1 / 32); // 100 announcements take 3.125 ms
    const pump = createEventPump({ store, clock: { now: () => T0 }, batchSize: 1000, batchBudgetMs: 8, elapsedMs });
    expect(await pump.tick()).toBe(2000);
    expect(limits).toEqual([100, ...Array(10).fill(192)]); // 192 take 6 ms
  });

  it(`halves the batches of a store that mostly waits for the database (PostgreSQL) down to ${OFF_LOOP_MIN_BATCH}, not to 1`, async () => {
    const { store, limits, elapsedMs } = dueStore(700, 0.1, true); // 100 announcements take 10 ms
    const pump = createEventPump({ store, clock: { now: () => T0 }, batchSize: 1000, batchBudgetMs: 8, elapsedMs });
    expect(await pump.tick()).toBe(700);
    expect(limits).toEqual(Array(8).fill(100)); // elsewhere 100, 50, 60, …
  });
});
