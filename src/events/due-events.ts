// Due announcements: `session.warning` when now reaches warnsAt (once per deadline) and
// `session.expired` when it reaches expiresAt (once), whether or not anyone calls. The
// pump reads the wall clock every tick (at most a second apart) and takes what is due
// from the sessions' index on their next due time: no timer per session, so a clock
// that jumps, or a server that was down at the due moment, fires each one once, in
// order, on the next tick.
import { type Clock, steadyWallTime } from '../domain/clock.js';
import { announcedBy, nextDue } from '../domain/timeout-policy.js';
import { sessionWith, type Announcement, type EventInput, type SessionRecord, type Store } from '../storage/store.js';
import { sessionEvent } from './event-records.js';

/** What announcing a session's due event writes: the event, at its due moment, and the session moved on. */
export function announce(session: SessionRecord): Announcement {
  const due = nextDue(session, session.announced);
  if (!due) throw new Error(`session ${session.id} has nothing due`);
  const announced = sessionWith(session, session, due.type === 'session.expired' ? 'expired' : session.status, announcedBy(due.type));
  return { session: announced, events: [sessionEvent(due.type, announced, due.at)] };
}

/**
 * The due events of `session` that came by `now` but were not announced yet (the pump's
 * next tick had not come, or another instance held the session): what announce() would
 * record, each dated its moment, in order. For a session about to go (ended, or deleted
 * with its agent): its expiry is recorded before its end, once, as for any other session.
 */
export function overdueAnnouncements(session: SessionRecord, now: number): EventInput[] {
  const events: EventInput[] = [];
  let current = session;
  for (let due = nextDue(current, current.announced); due && due.at <= now; due = nextDue(current, current.announced)) {
    const announcement = announce(current);
    events.push(...announcement.events);
    current = announcement.session;
  }
  return events;
}

export interface EventPumpOptions {
  store: Store;
  clock: Clock;
  /** How often the wall clock is read; at most 1000 ms. Default 250. */
  intervalMs?: number;
  /**
   * The most announcements per transaction; a turn of the event loop between transactions.
   * Default 1000. A batch's fixed cost (its read, its commit) is shared by its
   * announcements, so large batches are cheaper each; `batchBudgetMs` keeps them short.
   */
  batchSize?: number;
  /**
   * A batch that takes longer than this halves the size of the next; a full one under it
   * sizes the next to take three quarters of it, at most twice as large, up to batchSize.
   * Default 3 ms: the event loop may stall 20 ms, and a batch can meet a young-generation
   * GC of up to ~10 ms. (10^5 warnings due at once, one stream: 8 ms gave stalls of
   * 17.8-25.4 ms, 5 ms gave 10.8-16.7 ms, delivered in 1.5-1.7 s either way. Once the log
   * wrote a row per batch, not per event, 5 ms gave 12.0-21.9 ms in 1.25-1.36 s, and 3 ms
   * 9.1-15.6 ms in 1.28-1.57 s. Doubling only under a quarter of it, as the sweeper does,
   * left bursts in batches of about 100: a commit each.) A store whose batches mostly wait
   * for the database halves them down to OFF_LOOP_MIN_BATCH only.
   */
  batchBudgetMs?: number;
  /** Monotonic milliseconds, to time batches (performance.now unless a test injects one). */
  elapsedMs?: () => number;
  onError?: (error: unknown) => void;
  /** A tick that completed (after failures, the log says the pump works again). */
  onSuccess?: () => void;
}

export interface EventPump {
  /** Announces everything due at the clock's now; returns how many. */
  tick(): Promise<number>;
  /** Ticks at once (whatever fell due while the server was down), then every interval. */
  start(): void;
  stop(): Promise<void>;
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * For a store whose batches mostly wait for the database (Store.announcesOffEventLoop), a
 * batch over its budget halves the next down to this, not to 1: there a batch's fixed cost
 * (its two round trips, its commit) does not shrink with it, and halved to 1 each
 * announcement paid it alone. On PostgreSQL, 6,000 due at once: 12.1 s before the batch was
 * one read (a round trip a session); one read with batches down to 1, 14-17 s; down to
 * 100, 2.1-2.2 s, event-loop stalls 12-16 ms. A hundred are about 7 ms of this process's
 * CPU. A batch holds its sessions' rows to its commit (88-150 ms at the median for 100 on a
 * loaded machine): a write to one of them waits that long (README, PostgreSQL).
 */
export const OFF_LOOP_MIN_BATCH = 100;

export function createEventPump(options: EventPumpOptions): EventPump {
  const { store, clock, intervalMs = 250, batchSize = 1000, batchBudgetMs = 3, elapsedMs = () => performance.now(), onError, onSuccess } = options;
  const smallest = Math.min(batchSize, store.announcesOffEventLoop ? OFF_LOOP_MIN_BATCH : 1);
  // An announced expiry is final: a clock that jumped ahead is followed once the jump has held.
  const actingNow = steadyWallTime(clock);
  let size = Math.min(batchSize, 100);
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  let stopped = false;

  async function tick(): Promise<number> {
    let total = 0;
    for (;;) {
      const limit = size;
      const started = elapsedMs();
      const fired = await store.announceDue(actingNow(), limit, announce);
      const tookMs = elapsedMs() - started;
      if (tookMs > batchBudgetMs) size = Math.max(smallest, Math.floor(size / 2));
      else if (fired === limit) size = Math.min(batchSize, limit * 2, Math.max(limit, Math.floor((limit * batchBudgetMs * 0.75) / tookMs)));
      total += fired;
      if (fired < limit || stopped) return total;
      await nextTurn();
    }
  }

  function run(): void {
    if (running) return; // a long catch-up is still going: the next tick waits for it
    running = tick()
      .then(() => onSuccess?.(), (error) => onError?.(error))
      .finally(() => (running = undefined));
  }

  return {
    tick,
    start() {
      stopped = false;
      run();
      timer ??= setInterval(run, intervalMs);
      timer.unref();
    },
    async stop() {
      stopped = true;
      clearInterval(timer);
      timer = undefined;
      await running;
    },
  };
}
