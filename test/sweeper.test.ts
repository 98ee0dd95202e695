import Database from 'better-sqlite3';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { openSqliteStore } from '../src/storage/sqlite/sqlite-store.js';
import { StorageFault, type Store } from '../src/storage/store.js';
import { nextPosition } from '../src/domain/message-order.js';
import { createSweeper, OFF_LOOP_BATCH_SCALE, OFF_LOOP_BUDGET_SCALE } from '../src/sweeper.js';
import { MINUTE, T0, fakeClock } from './helpers/fake-clock.js';
import { createSession, registerAgent } from './helpers/fixtures.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';

/** A batch step's stand-in over `total` items: each call takes up to its limit of what is left, and its limit is recorded. */
function batchesOver(total: number) {
  let left = total;
  const limits: number[] = [];
  const take = (limit: number) => {
    limits.push(limit);
    const done = Math.min(limit, left);
    left -= done;
    return done;
  };
  return { limits, take };
}

/**
 * The store with every step of a pass answered at once, trimming as `trim` says: a pass
 * then ends within the tick its timer fires in (the store's own writes would wait for a
 * real turn of the event loop, which fake time does not give).
 */
function answeringAtOnce(store: Store, trim: Store['purgeIdempotencyRecords']): Store {
  return { ...store, purgeExpired: async () => ({ purged: 0, more: false }), moveCountMarks: undefined, purgeIdempotencyRecords: trim };
}

let t: TestApp | undefined;
afterEach(async () => {
  vi.useRealTimers();
  await t?.close();
  t = undefined;
});

async function appWithSessions(count: number, batchSize: number, timeoutMinutes = 5): Promise<TestApp> {
  t = await startTestApp({ sweepBatchSize: batchSize, retentionMs: 60 * MINUTE });
  const agentId = await registerAgent(t);
  for (let i = 0; i < count; i += 1) await createSession(t, { agentId, timeoutConfig: { timeoutMinutes } });
  return t;
}

describe('the sweeper', () => {
  it('holds its deletions for a pass when the wall clock jumped ahead of the time that passed (a clock set days ahead for a moment deletes nothing)', async () => {
    const app = await appWithSessions(3, 10);
    let steady = 0;
    const clock = { now: () => app.clock.now(), monotonic: () => steady };
    const sweeper = createSweeper({ store: app.store, clock, retentionMs: 60 * MINUTE, intervalMs: 60_000, batchSize: 10, eventRetentionMs: 72 * 60 * MINUTE });
    expect(await sweeper.sweep()).toMatchObject({ purged: 0 });

    // Five days ahead, 60 s after the last pass: every session would be past retention, every event past its 72 h.
    app.clock.set(T0 + 5 * 24 * 60 * MINUTE);
    steady += 60_000;
    expect(await sweeper.sweep()).toMatchObject({ purged: 0, trimmedEvents: 0 });

    // Set right again: nothing is past retention, nothing was lost.
    app.clock.set(T0 + 2 * MINUTE);
    steady += 60_000;
    expect(await sweeper.sweep()).toMatchObject({ purged: 0, trimmedEvents: 0 });
    expect(app.rowCounts().sessions).toBe(3);

    // A jump that holds (a clock corrected forward) is followed at the next pass.
    app.clock.set(T0 + 5 * 24 * 60 * MINUTE);
    steady += 60_000;
    expect(await sweeper.sweep()).toMatchObject({ purged: 0 });
    app.clock.advance(60_000);
    steady += 60_000;
    expect(await sweeper.sweep()).toMatchObject({ purged: 3 });
  });

  it('announces what is due before it purges, in bounded batches: a clock moved past expiry and retention at once deletes no session unannounced', async () => {
    const app = await appWithSessions(4, 3);
    const after = await app.store.lastEventId();
    app.clock.set(T0 + 5 * MINUTE + 60 * MINUTE);
    // 3 + 1 announced (their warnings were announced when they were created), then the purge.
    expect(await app.sweeper.sweep()).toMatchObject({ announced: 4, purged: 4 });
    expect(app.rowCounts().sessions).toBe(0);
    const expired = (await app.store.listEvents({ after, limit: 100 })).filter((event) => event.type === 'session.expired');
    expect(expired.map((event) => event.occurredAt)).toEqual(Array(4).fill(T0 + 5 * MINUTE));
  });

  it('deletes nothing in a pass stopped while it announces (some may be left unannounced)', async () => {
    const app = await appWithSessions(4, 1);
    const real = app.store.announceDue.bind(app.store);
    let stopping: Promise<void> | undefined;
    app.store.announceDue = async (now, limit, announce) => ((stopping ??= app.sweeper.stop()), real(now, limit, announce));
    const deletions: string[] = [];
    for (const name of ['purgeExpired', 'purgeIdempotencyRecords', 'purgeEvents'] as const) {
      app.store[name] = async () => (deletions.push(name), Promise.reject(new Error(`${name} after stop()`)));
    }
    app.clock.set(T0 + 5 * MINUTE + 60 * MINUTE);
    // The pass ends after the batch it was in: the expiry announced, nothing deleted.
    expect(await app.sweeper.sweep()).toEqual({ announced: 1, purged: 0, trimmed: 0, trimmedEvents: 0, batches: 1 });
    await stopping;
    expect(deletions).toEqual([]);
    expect(app.rowCounts().sessions).toBe(4);
  });

  it('reports a pass whose announcing failed as having done nothing', async () => {
    const store = openSqliteStore(':memory:');
    const failing: Store = { ...store, announceDue: async () => Promise.reject(new StorageFault('the database cannot be reached (test)')) };
    const reports: unknown[] = [];
    const sweeper = createSweeper({ store: failing, clock: fakeClock(), retentionMs: 0, intervalMs: 1000, batchSize: 10, onSweep: (report, _seconds, failed) => reports.push([report, failed]) });
    expect(await sweeper.sweep()).toEqual({ announced: 0, purged: 0, trimmed: 0, trimmedEvents: 0, batches: 0 });
    expect(reports).toEqual([[{ announced: 0, purged: 0, trimmed: 0, trimmedEvents: 0, batches: 0 }, true]]);
    await store.close();
  });

  it('leaves active sessions alone and purges only past retention', async () => {
    const app = await appWithSessions(4, 3);
    app.clock.set(T0 + 5 * MINUTE - 1);
    expect(await app.sweeper.sweep()).toMatchObject({ purged: 0 });
    app.clock.set(T0 + 5 * MINUTE + 60 * MINUTE - 1);
    expect(await app.sweeper.sweep()).toMatchObject({ announced: 4, purged: 0 }); // expired by their announcements
    app.clock.set(T0 + 5 * MINUTE + 60 * MINUTE);
    expect(await app.sweeper.sweep()).toMatchObject({ purged: 4 });
    expect(app.rowCounts().sessions).toBe(0);
    // Each pass also moved the count marks to its instant and cutoff (SQLite's running totals).
    const db = new Database(app.databasePath, { readonly: true });
    expect(db.prepare('SELECT now_mark, cut_mark FROM session_count_marks').get()).toEqual({ now_mark: T0 + 65 * MINUTE, cut_mark: T0 + 5 * MINUTE });
    expect(db.prepare('SELECT count(*) FROM session_counts').pluck().get()).toBe(0);
    db.close();
  });

  it('purges a long conversation in bounded batches: at most 10 messages per session of the batch size (10 times the batch off the event loop)', async () => {
    const app = await appWithSessions(1, 2);
    const [session] = (await app.store.listSessions({ now: T0, purgeCutoff: 0, status: 'all', limit: 1, offset: 0 })).sessions;
    // The store's purge runs on its worker thread: batches of 2 × 10 sessions, 200 messages.
    expect(app.store.purgesOffEventLoop).toBe(true);
    expect(OFF_LOOP_BATCH_SCALE).toBe(10);
    const message = (i: number, lastPosition: number | undefined) => ({
      id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, sessionId: session!.id, position: nextPosition(T0 + i, lastPosition),
      createdAt: T0 + i, authorId: 'u', isAgent: false, content: `m${i}`, attachments: [], metadata: {},
    });
    // One group commit: 450 messages.
    await Promise.all(Array.from({ length: 450 }, (_, i) => app.store.appendMessage(session!.id, (current, last) => ({ session: current!, message: message(i, last) }))));
    const deletedPerBatch: number[] = [];
    const real = app.store.purgeExpired.bind(app.store);
    app.store.purgeExpired = async (cutoff, limit) => {
      const before = app.rowCounts().messages!;
      const outcome = await real(cutoff, limit);
      deletedPerBatch.push(before - app.rowCounts().messages!);
      return outcome;
    };
    app.clock.set(T0 + 5 * MINUTE + 60 * MINUTE);
    // 1 announcing batch; purging: 200 + 200 messages, then the last 50 with the session; 1 trim batch.
    expect(await app.sweeper.sweep()).toEqual({ announced: 1, purged: 1, trimmed: 0, trimmedEvents: 0, batches: 5 });
    expect(deletedPerBatch).toEqual([200, 200, 50]);
    expect(app.rowCounts()).toMatchObject({ sessions: 0, messages: 0 });
  });

  it('halves the batch when one takes longer than its budget, and doubles it back when batches are quick', async () => {
    const store = openSqliteStore(':memory:');
    let elapsed = 0;
    let trimmed = 0;
    const limits: number[] = [];
    const timed: Store = {
      ...store,
      // 0.1 ms a record for the first 600 (a cold database), then 0.001 ms.
      purgeIdempotencyRecords: async (_now, limit) => {
        limits.push(limit);
        const done = Math.min(limit, 1000 - trimmed);
        elapsed += done * (trimmed < 600 ? 0.1 : 0.001);
        trimmed += done;
        return done;
      },
    };
    const sweeper = createSweeper({ store: timed, clock: fakeClock(), retentionMs: 0, intervalMs: 1000, batchSize: 100, batchBudgetMs: 5, elapsedMs: () => elapsed });
    expect((await sweeper.sweep()).trimmed).toBe(1000);
    // 100 took 10 ms: halved; 50 take 5 ms, within budget: kept; quick again: back to 100, no further.
    expect(limits).toEqual([100, ...Array(10).fill(50), 50, 100, 100, 100, 100]);
    await store.close();
  });

  it('sizes a purge run off the event loop by its own budget of lock time, up to ten times the batch', async () => {
    const store = openSqliteStore(':memory:');
    let elapsed = 0;
    let purged = 0;
    const trimming: number[] = [];
    const purging: number[] = [];
    const offLoop: Store = {
      ...store,
      purgesOffEventLoop: true,
      purgeIdempotencyRecords: async (_now, limit) => {
        trimming.push(limit);
        elapsed += 4; // 4 ms a batch: on the event loop, over a quarter of its 5 ms budget, kept
        return trimming.length < 3 ? limit : 0;
      },
      // 0.06 ms a session: 1,000 take 60 ms, over the 50 ms budget; 500 take 30 ms, kept.
      purgeExpired: async (_cutoff, limit) => {
        purging.push(limit);
        const done = Math.min(limit, 3000 - purged);
        elapsed += done * 0.06;
        purged += done;
        return { purged: done, more: purged < 3000 };
      },
    };
    const sweeper = createSweeper({ store: offLoop, clock: fakeClock(), retentionMs: 0, intervalMs: 1000, batchSize: 100, batchBudgetMs: 5, elapsedMs: () => elapsed });
    expect((await sweeper.sweep()).purged).toBe(3000);
    expect(trimming).toEqual([100, 100, 100]);
    expect(OFF_LOOP_BUDGET_SCALE).toBe(10);
    expect(purging).toEqual([1000, 500, 500, 500, 500]);
    await store.close();
  });

  it('never shrinks a batch below one session, and keeps its size after a batch of exactly a quarter of the budget', async () => {
    const store = openSqliteStore(':memory:');
    let elapsed = 0;
    const { limits, take } = batchesOver(6);
    // Over budget twice (2 → 1 → still 1), exactly a quarter (kept), under a quarter (doubled).
    const took = [10, 10, 1, 0.5];
    const timed: Store = {
      ...store,
      purgeIdempotencyRecords: async (_now, limit) => {
        if (limits.length >= 20) throw new Error(`no progress: ${limits.join(',')}`);
        elapsed += took[limits.length] ?? 0;
        return take(limit);
      },
    };
    const sweeper = createSweeper({ store: timed, clock: fakeClock(), retentionMs: 0, intervalMs: 1000, batchSize: 2, batchBudgetMs: 4, elapsedMs: () => elapsed });
    const report = await sweeper.sweep();
    expect(sweeper.lastError()).toBeUndefined();
    expect(report.trimmed).toBe(6);
    expect(limits).toEqual([2, 1, 1, 1, 2]);
    await store.close();
  });

  it('moves the count marks off the event loop in batches sized like its purges', async () => {
    const store = openSqliteStore(':memory:');
    let elapsed = 0;
    const moving: number[] = [];
    const offLoop: Store = {
      ...store,
      purgesOffEventLoop: true,
      purgeExpired: async () => ({ purged: 0, more: false }),
      // 0.06 ms a session, as a purge: 1,000 take 60 ms, over the 50 ms budget; 500 take 30 ms, kept.
      moveCountMarks: async (_now, _cutoff, limit) => {
        moving.push(limit);
        elapsed += limit * 0.06;
        return { passed: limit, more: moving.length < 3 };
      },
    };
    const sweeper = createSweeper({ store: offLoop, clock: fakeClock(), retentionMs: 0, intervalMs: 1000, batchSize: 100, batchBudgetMs: 5, elapsedMs: () => elapsed });
    await sweeper.sweep();
    expect(moving).toEqual([100 * OFF_LOOP_BATCH_SCALE, 500, 500]);
    await store.close();
  });

  it('trims expired idempotency records in as many batches as they take', async () => {
    const store = openSqliteStore(':memory:');
    const { limits: trimming, take } = batchesOver(25);
    const records: Store = { ...store, purgeIdempotencyRecords: async (_now, limit) => take(limit) };
    const sweeper = createSweeper({ store: records, clock: fakeClock(), retentionMs: 0, intervalMs: 1000, batchSize: 10, batchBudgetMs: Infinity });
    expect((await sweeper.sweep()).trimmed).toBe(25);
    expect(trimming).toEqual([10, 10, 10]);
    await store.close();
  });

  it('ends a pass in progress after its current batch once stopped', async () => {
    const store = openSqliteStore(':memory:');
    const trimming: number[] = [];
    let stopping: Promise<void> | undefined;
    const endless: Store = {
      ...store,
      purgeIdempotencyRecords: async (_now, limit) => {
        trimming.push(limit);
        if (trimming.length > 50) throw new Error('the pass went on after stop()');
        stopping ??= sweeper.stop();
        return limit;
      },
    };
    const sweeper = createSweeper({ store: endless, clock: fakeClock(), retentionMs: 0, intervalMs: 1000, batchSize: 10, batchBudgetMs: Infinity });
    const report = await sweeper.sweep();
    await stopping;
    expect(sweeper.lastError()).toBeUndefined();
    expect(report.trimmed).toBe(10);
    expect(trimming).toEqual([10]);
    await store.close();
  });

  it('gives the event loop a turn between batches', async () => {
    const store = openSqliteStore(':memory:');
    const turns: string[] = [];
    let batch = 0;
    const counting: Store = {
      ...store,
      purgeIdempotencyRecords: async () => {
        turns.push(`batch ${batch}`);
        batch += 1;
        setImmediate(() => turns.push('turn'));
        return batch < 3 ? 2 : 0;
      },
    };
    // Batches take no time here: a slow one on a loaded machine would halve the batch size.
    const sweeper = createSweeper({ store: counting, clock: fakeClock(), retentionMs: 0, intervalMs: 1000, batchSize: 2, elapsedMs: () => 0 });
    await sweeper.sweep();
    expect(turns.slice(0, 5)).toEqual(['batch 0', 'turn', 'batch 1', 'turn', 'batch 2']);
    await store.close();
  });

  it('runs on its interval once started (twice: one chain of timers), and not after stop()', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const store = openSqliteStore(':memory:');
    const calls: number[] = [];
    const counting = answeringAtOnce(store, async () => (calls.push(1), 0));
    const sweeper = createSweeper({ store: counting, clock: fakeClock(), retentionMs: 0, intervalMs: 1000, batchSize: 10 });
    sweeper.start();
    sweeper.start();
    await vi.advanceTimersByTimeAsync(999);
    expect(calls).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls).toHaveLength(2);
    await sweeper.stop();
    await vi.advanceTimersByTimeAsync(5000);
    expect(calls).toHaveLength(2);
    await store.close();
  });

  it('keeps one pass per interval when started again while a stopping pass still runs (stop() not awaited)', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const store = openSqliteStore(':memory:');
    const calls: number[] = [];
    let release: (() => void) | undefined;
    // The first pass waits until released; the others end at once.
    const counting = answeringAtOnce(store, async () => (calls.push(1), calls.length === 1 ? new Promise<number>((resolve) => (release = () => resolve(0))) : 0));
    const sweeper = createSweeper({ store: counting, clock: fakeClock(), retentionMs: 0, intervalMs: 1000, batchSize: 10 });
    sweeper.start();
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls).toHaveLength(1); // the pass is running
    const stopping = sweeper.stop();
    sweeper.start();
    await vi.advanceTimersByTimeAsync(500);
    release!();
    await stopping;
    // The next pass is timed from the end of the running one, not from start().
    await vi.advanceTimersByTimeAsync(999);
    expect(calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(3000);
    expect(calls).toHaveLength(5); // one pass a second: two chains of timers made two
    await sweeper.stop();
    await store.close();
  });

  it('tries a failed pass again after 1 s, doubling up to its interval, and keeps its interval again once one passes', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const store = openSqliteStore(':memory:');
    const passes: number[] = [];
    let failing = 4; // the passes at 60 s, +1 s, +2 s and +4 s fail; the one at +8 s passes
    const flaky: Store = {
      ...store,
      purgeIdempotencyRecords: async () => {
        passes.push(Date.now());
        if (failing-- > 0) throw new StorageFault('the database cannot be reached (test)');
        return 0;
      },
      purgeExpired: async () => ({ purged: 0, more: false }),
      moveCountMarks: undefined,
    };
    const sweeper = createSweeper({ store: flaky, clock: fakeClock(), retentionMs: 0, intervalMs: 60_000, batchSize: 10 });
    const started = Date.now();
    sweeper.start();
    await vi.advanceTimersByTimeAsync(60_000 + 1_000 + 2_000 + 4_000 + 8_000 + 60_000);
    await sweeper.stop();
    expect(passes.map((at) => at - started)).toEqual([60_000, 61_000, 63_000, 67_000, 75_000, 135_000]);
    expect(sweeper.lastError()).toBeUndefined();
    await store.close();
  });

  it('records a failed pass and recovers on the next, telling onSweep which failed (the metrics count result failed or ok)', async () => {
    const store = openSqliteStore(':memory:');
    const errors: unknown[] = [];
    const passes: boolean[] = [];
    let fail = true;
    const flaky: Store = {
      ...store,
      purgeExpired: async (cutoff, limit) => {
        if (fail) throw new Error('locked');
        return store.purgeExpired(cutoff, limit);
      },
    };
    const sweeper = createSweeper({
      store: flaky,
      clock: fakeClock(),
      retentionMs: 0,
      intervalMs: 1000,
      batchSize: 10,
      onError: (e) => errors.push(e),
      onSweep: (_report, _seconds, failed) => passes.push(failed),
    });
    await sweeper.sweep();
    expect(sweeper.lastError()).toBeInstanceOf(Error);
    expect(errors).toHaveLength(1);
    fail = false;
    await sweeper.sweep();
    expect(sweeper.lastError()).toBeUndefined();
    expect(passes).toEqual([true, false]);
    await store.close();
  });
});
