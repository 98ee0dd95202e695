// The background sweeper: announces whatever is due that the event pump has not (a
// session is never deleted unannounced), purges sessions past retention and moves the
// count marks (a store with running totals), in bounded batches with a turn of the event
// loop between them, so that requests keep being served while a million sessions expire.
// Reads never depend on it having run.
// It also trims the records of idempotent requests once they expire (24 h), and the
// event log past its retention.
import { type Clock, steadyWallTime } from './domain/clock.js';
import { purgeCutoff } from './domain/timeout-policy.js';
import { announce } from './events/due-events.js';
import type { Store } from './storage/store.js';

export interface SweeperOptions {
  store: Store;
  clock: Clock;
  retentionMs: number;
  intervalMs: number;
  /** The most sessions one batch changes. */
  batchSize: number;
  /** Events older than this are trimmed from the log; undefined: kept. */
  eventRetentionMs?: number;
  /**
   * A batch that takes longer than this halves the size of the next; one under a quarter
   * of it doubles it again, up to batchSize. Batches cost more as the database outgrows
   * the page cache; the event loop's longest stall should not. Default 5 ms.
   */
  batchBudgetMs?: number;
  /** Monotonic milliseconds, to time batches (performance.now unless a test injects one). */
  elapsedMs?: () => number;
  onError?: (error: unknown) => void;
  /** A pass that completed (after failures, the log says the sweep works again). */
  onSuccess?: () => void;
  /** After every pass, with how long it took (metrics). */
  onSweep?: (report: SweepReport, seconds: number, failed: boolean) => void;
}

export interface SweepReport {
  /** Warnings and expiries announced (due, and not yet announced by the event pump). */
  announced: number;
  purged: number;
  /** Expired idempotency records deleted. */
  trimmed: number;
  /** Events deleted from the log (past retention). */
  trimmedEvents: number;
  batches: number;
}

export interface Sweeper {
  /** One full pass: everything due by now announced, every session past retention purged. */
  sweep(): Promise<SweepReport>;
  start(): void;
  /** Stops the timer and waits for a pass in progress to end. */
  stop(): Promise<void>;
  /** The failure of the last pass, if it failed. */
  lastError(): unknown;
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * A purge run on another thread (Store.purgesOffEventLoop) blocks no event loop: only the
 * writes of other connections, which wait for its write lock asynchronously. Its batches
 * grow to this many times batchSize, within a budget of lock time this many times the
 * event loop's (50 ms by default): measured at 10^5 sessions (loaded), 29.5 s with batches
 * held to the event loop's 5 ms, 8.1 s at 1,000 a batch. At 10^6 a session costs 40-80 µs
 * of lock time, so a budget of 20 ms held batches to ~250 sessions (4,107 batches).
 */
export const OFF_LOOP_BATCH_SCALE = 10;
export const OFF_LOOP_BUDGET_SCALE = 10;

interface BatchSize {
  readonly limit: () => number;
  adapt(tookMs: number): void;
}

/** Halves after a batch over budget, doubles after one under a quarter of it, up to max. */
function batchSizer(max: number, budgetMs: number): BatchSize {
  let size = max;
  return {
    limit: () => size,
    adapt(tookMs) {
      if (tookMs > budgetMs) size = Math.max(1, Math.floor(size / 2));
      else if (tookMs < budgetMs / 4) size = Math.min(max, size * 2);
    },
  };
}

/**
 * A failed pass is tried again this soon, doubling up to the interval: the storage back,
 * the purge resumes (and health stops saying `degraded`) within seconds, not an interval.
 */
const RETRY_FAILED_PASS_MS = 1000;

export function createSweeper(options: SweeperOptions): Sweeper {
  const { store, clock, retentionMs, intervalMs, onError, onSuccess, onSweep } = options;
  const { batchBudgetMs = 5, elapsedMs = () => performance.now() } = options;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  let stopped = false;
  let failure: unknown;
  let failedInARow = 0;
  const onLoop = batchSizer(options.batchSize, batchBudgetMs);
  const offLoop = () => batchSizer(options.batchSize * OFF_LOOP_BATCH_SCALE, batchBudgetMs * OFF_LOOP_BUDGET_SCALE);
  const purgeSize = store.purgesOffEventLoop ? offLoop() : onLoop;
  // Such a store moves many marks on its purge worker too (few it moves on the event loop, cheaply).
  const markSize = store.purgesOffEventLoop ? offLoop() : onLoop;
  // Deletions cannot be undone: they follow a clock that jumped ahead only once the jump has held.
  const actingNow = steadyWallTime(clock);

  async function inBatches(step: (limit: number) => Promise<{ done: number; more: boolean }>, report: SweepReport, size = onLoop): Promise<number> {
    let total = 0;
    for (;;) {
      const started = elapsedMs();
      const { done, more } = await step(size.limit());
      size.adapt(elapsedMs() - started);
      report.batches += 1;
      total += done;
      if (!more || stopped) return total;
      await nextTurn();
    }
  }

  const announceDue = (now: number) => async (limit: number) => {
    const done = await store.announceDue(now, limit, announce);
    return { done, more: done === limit };
  };
  const moveCountMarks = (now: number, cutoff: number) => async (limit: number) => {
    const { passed, more } = await store.moveCountMarks!(now, cutoff, limit);
    return { done: passed, more };
  };
  const purge = (cutoff: number) => async (limit: number) => {
    const { purged, more } = await store.purgeExpired(cutoff, limit);
    return { done: purged, more };
  };

  const trim = (now: number) => async (limit: number) => {
    const done = await store.purgeIdempotencyRecords(now, limit);
    return { done, more: done === limit };
  };
  const trimEvents = (cutoff: number) => async (limit: number) => {
    const done = await store.purgeEvents(cutoff, limit);
    return { done, more: done >= limit };
  };

  async function sweep(): Promise<SweepReport> {
    const now = actingNow();
    const report: SweepReport = { announced: 0, purged: 0, trimmed: 0, trimmedEvents: 0, batches: 0 };
    const started = elapsedMs();
    try {
      // The pump may not have announced an expiry the purge would delete: the clock moved
      // past expiry and retention at once (a VM resumed), or every server was down that long.
      report.announced = await inBatches(announceDue(now), report);
      // Stopped, a pass ends after its current batch; some due announcements may be left,
      // so it deletes nothing.
      if (!stopped) {
        const cutoff = purgeCutoff(now, retentionMs);
        report.purged = await inBatches(purge(cutoff), report, purgeSize);
        // Bookkeeping that only makes later counts cheaper: not in the report. After the
        // purge, which lowered the totals of the sessions it deleted in its own batches, so
        // the cutoff's mark has none left to pass.
        if (store.moveCountMarks) await inBatches(moveCountMarks(now, cutoff), { ...report }, markSize);
        report.trimmed = await inBatches(trim(now), report);
        if (options.eventRetentionMs !== undefined) report.trimmedEvents = await inBatches(trimEvents(now - options.eventRetentionMs), report);
      }
      failure = undefined;
      failedInARow = 0;
      onSuccess?.();
    } catch (error) {
      failure = error;
      failedInARow += 1;
      onError?.(error);
    }
    onSweep?.(report, (elapsedMs() - started) / 1000, failure !== undefined);
    return report;
  }

  function schedule(): void {
    const delayMs = failedInARow === 0 ? intervalMs : Math.min(intervalMs, RETRY_FAILED_PASS_MS * 2 ** (failedInARow - 1));
    timer = setTimeout(() => {
      timer = undefined;
      running = sweep().finally(() => {
        running = undefined;
        // Started again while this pass ran (stop() not awaited): one chain of timers, not two.
        if (!stopped && !timer) schedule();
      });
    }, delayMs);
    timer.unref();
  }

  return {
    sweep,
    start() {
      stopped = false;
      // A pass still running schedules the next itself when it ends.
      if (!timer && !running) schedule();
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      timer = undefined;
      await running;
    },
    lastError: () => failure,
  };
}
