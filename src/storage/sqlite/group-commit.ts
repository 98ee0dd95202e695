// Group commit: writes that arrive within one turn of the event loop run in a single
// transaction, each inside a savepoint of its own (one that throws is rolled back alone
// and rejects alone). A write's promise settles only after COMMIT, so an acknowledged
// write is in the WAL: it survives the process being killed.
//
// Lock waits are asynchronous: a batch begins IMMEDIATE (takes the write lock before
// running anything); when another connection holds the lock, the connection's short
// busy timeout gives up within a few ms and the batch is retried on a timer, with
// backoff, until `lockWaitMs` has passed for its oldest write. The event loop never
// sleeps in SQLite's busy handler for longer than that busy timeout.
import Database from 'better-sqlite3';
import { DEFAULTS } from '../../defaults.js';

interface Pending {
  work: () => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
  /** When the write first tried to take the lock (ms, monotonic). */
  since: number;
}

export type RunWrite = <T>(work: () => T) => Promise<T>;

export interface GroupCommitOptions {
  /** How long a write waits for another connection's write lock before failing with SQLITE_BUSY. */
  lockWaitMs?: number;
  /** Runs inside each batch's transaction after its writes, before COMMIT (a throw fails the batch). */
  beforeCommit?: () => void;
  /** After a batch that did not commit. */
  afterAbort?: () => void;
  /** After a batch committed, before its writes are answered. */
  afterCommit?: () => void;
  /** While this returns a promise, writes wait in the queue (the WAL is being emptied). */
  holdWhile?: () => Promise<void> | undefined;
}

const RETRY_FIRST_MS = 2;
const RETRY_MAX_MS = 50;

const isBusy = (error: unknown) =>
  error instanceof Database.SqliteError && (error.code.startsWith('SQLITE_BUSY') || error.code.startsWith('SQLITE_LOCKED'));

export function groupCommit(db: Database.Database, { lockWaitMs = DEFAULTS.lockWaitMs, beforeCommit, afterAbort, afterCommit, holdWhile }: GroupCommitOptions = {}): RunWrite {
  let queue: Pending[] = [];
  let retryDelay = RETRY_FIRST_MS;
  // A transaction inside a transaction is a savepoint in better-sqlite3.
  const inSavepoint = db.transaction((work: () => unknown) => work());
  const commitAll = db.transaction((batch: Pending[]) => {
    const outcomes = batch.map((pending) => {
      try {
        return { ok: true as const, value: inSavepoint(pending.work) };
      } catch (error) {
        // SQLite may roll back the whole transaction on its own (disk full, I/O error):
        // then the writes before this one are gone too, and none may be acknowledged.
        if (!db.inTransaction) throw error;
        return { ok: false as const, error };
      }
    });
    beforeCommit?.();
    return outcomes;
  }).immediate;

  function flush(): void {
    const hold = holdWhile?.();
    // The queue stays non-empty meanwhile, so no other flush is scheduled.
    if (hold) return void hold.then(flush, flush);
    const batch = queue;
    queue = [];
    let outcomes;
    try {
      outcomes = commitAll(batch);
    } catch (error) {
      afterAbort?.();
      // Nothing of the batch was committed. Locked by another connection: try again later.
      if (isBusy(error)) return retryLater(batch, error);
      for (const pending of batch) pending.reject(error);
      return;
    }
    retryDelay = RETRY_FIRST_MS;
    afterCommit?.();
    outcomes.forEach((outcome, i) => (outcome.ok ? batch[i]!.resolve(outcome.value) : batch[i]!.reject(outcome.error)));
  }

  function retryLater(batch: Pending[], error: unknown): void {
    const now = performance.now();
    const waiting = batch.filter((pending) => now - pending.since < lockWaitMs);
    for (const pending of batch) if (!waiting.includes(pending)) pending.reject(error);
    const arrivedMeanwhile = queue;
    queue = [...waiting, ...arrivedMeanwhile];
    if (queue.length === 0) return;
    setTimeout(flush, retryDelay);
    retryDelay = Math.min(RETRY_MAX_MS, retryDelay * 2);
  }

  return <T>(work: () => T) =>
    new Promise<T>((resolve, reject) => {
      if (queue.length === 0) setImmediate(flush);
      queue.push({ work, resolve: resolve as (value: unknown) => void, reject, since: performance.now() });
    });
}
