// The background sweeper: marks expired sessions and purges those past retention, in
// bounded batches with a turn of the event loop between them, so that requests keep
// being served while a million sessions expire. Reads never depend on it having run.
import type { Clock } from './domain/clock.js';
import { purgeCutoff } from './domain/timeout-policy.js';
import type { Store } from './storage/store.js';

export interface SweeperOptions {
  store: Store;
  clock: Clock;
  retentionMs: number;
  intervalMs: number;
  batchSize: number;
  onError?: (error: unknown) => void;
}

export interface SweepReport {
  marked: number;
  purged: number;
  batches: number;
}

export interface Sweeper {
  /** One full pass: every session expired by now is marked, every one past retention purged. */
  sweep(): Promise<SweepReport>;
  start(): void;
  /** Stops the timer and waits for a pass in progress to end. */
  stop(): Promise<void>;
  /** The failure of the last pass, if it failed. */
  lastError(): unknown;
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

export function createSweeper({ store, clock, retentionMs, intervalMs, batchSize, onError }: SweeperOptions): Sweeper {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  let stopped = false;
  let failure: unknown;

  async function inBatches(step: () => Promise<{ done: number; more: boolean }>, report: SweepReport): Promise<number> {
    let total = 0;
    for (;;) {
      const { done, more } = await step();
      report.batches += 1;
      total += done;
      if (!more || stopped) return total;
      await nextTurn();
    }
  }

  const mark = async (now: number) => {
    const done = await store.markExpired(now, batchSize);
    return { done, more: done === batchSize };
  };
  const purge = async (cutoff: number) => {
    const { purged, more } = await store.purgeExpired(cutoff, batchSize);
    return { done: purged, more };
  };

  async function sweep(): Promise<SweepReport> {
    const now = clock.now();
    const report: SweepReport = { marked: 0, purged: 0, batches: 0 };
    try {
      report.marked = await inBatches(() => mark(now), report);
      const cutoff = purgeCutoff(now, retentionMs);
      report.purged = await inBatches(() => purge(cutoff), report);
      failure = undefined;
    } catch (error) {
      failure = error;
      onError?.(error);
    }
    return report;
  }

  function schedule(): void {
    timer = setTimeout(() => {
      running = sweep().finally(() => {
        running = undefined;
        if (!stopped) schedule();
      });
    }, intervalMs);
    timer.unref();
  }

  return {
    sweep,
    start() {
      stopped = false;
      if (!timer) schedule();
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
