// WAL checkpoints off the event loop. SQLite's automatic checkpoint runs inside the COMMIT
// that crosses its threshold, on the committing connection: for the store, that is a
// group commit on the event loop (batches of 50 creates took up to 65 ms at 10^5
// sessions). So the store's connection does not checkpoint (wal_autocheckpoint = 0); a
// worker thread with its own connection does:
// - PASSIVE every interval: copies what it can without waiting for anyone.
// - TRUNCATE once the WAL file is over its cap. Under constant writes a passive
//   checkpoint never catches up with the end of the WAL (writes append while it copies),
//   so SQLite never starts the WAL over and the file grows without bound. When a commit
//   leaves the WAL over the cap, the store holds its next writes in their queue (the
//   event loop goes on), the worker copies the little a passive checkpoint left and
//   empties the file, and the writes go on. Another process's writes are waited for by
//   SQLite's busy handler, at most CAP_WAIT_MS.
// - A reader in an older snapshot (`npm run backup`'s one long read transaction, another
//   process's) keeps any checkpoint from emptying the WAL until it ends: a TRUNCATE that
//   waited CAP_WAIT_MS for it in vain is not tried again, holding writes for as long each
//   time, until a passive checkpoint has copied the whole WAL (the reader gone), or the WAL
//   has grown by another cap (under writes without a pause a passive checkpoint never
//   copies it all). Meanwhile the WAL grows, as it would whatever the writes did. At
//   each further cap, writes are not held: the worker is asked how far its passive
//   checkpoints have got (they copy in the background once the reader has gone); within
//   a sixteenth of the cap of the WAL's end, the next commit over the cap empties it as
//   usual, holding the writes only for that little and for cutting the file (1.8 s for a
//   2.4 GB WAL). A TRUNCATE tried at each cap held the writes 2 s per 64 MiB of a backup,
//   and the first one after the reader had gone copied the whole grown WAL, writes held.
//   The answer waits for the worker's checkpoint under way and then for its own: on a
//   busy disk (each syncs the database file) writes without a pause outran them, and the
//   answer had not come after 40 of a test's 2 MiB caps (the WAL grows as long as it does
//   not come). So once the question has gone unanswered UNANSWERED_MS and the WAL has
//   grown UNANSWERED_CAPS more caps meanwhile, the next commit empties it, holding the
//   writes as at the first cap. If the reader is still there (a backup on a busy disk),
//   that hold was in vain: the next one needs twice as many caps unanswered, so a long
//   backup holds the writes a few times, not every few caps.
// The worker starts only once the WAL has grown to a sixteenth of the cap (or at once when
// the database file is larger than that), so the many small databases of the tests never
// pay for a thread.
// While the sweeper purges, passive checkpoints come every PURGING_INTERVAL_MS instead,
// and the WAL is emptied at PURGING_CAP_SCALE times the cap (still a bound): a purge
// rewrites the same index pages batch after batch, and a checkpoint copies each page once
// however often it was rewritten. Measured
// in-process at 10^6 sessions (loaded), the checkpoints' share of a purged session was
// 73 µs after every batch of 1,000, 42 every 10 batches (about what the 64 MiB cap
// allows), 23 every 50; the sweeper at 10^5 (loaded), passive checkpoints every second
// against every 20 ms while purging: 6.8 / 7.1 s against 8.7 / 9.0 s, the process's CPU
// 5.1 against 7.6 s. At 10^6 sessions each delete dirties its own page of the per-agent
// index, ~8 KB of WAL a session: the 64 MiB cap emptied the WAL every ~8,000 sessions,
// 122 TRUNCATEs holding the purge 45 of its 80 s (quiet, one CPU); at 4 times the cap a
// page is rewritten a few times between two checkpoints: 80-81 → 63-65 µs a session.
// (A first try of the 4 × cap was dropped for a ~25 ms stall of the event loop while a
// 256 MiB WAL was emptied: the event loop then stat'ed the WAL after every purge batch
// and read the sessions table before each; now the purge worker stats it, and the store
// reads nothing between the batches of a pass.)
import { statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import { YIELD_TO_EVENT_LOOP } from './background-thread.js';

const DEFAULT_WAL_CAP_BYTES = 64 * 2 ** 20;
const INTERVAL_MS = 20;
const PURGING_INTERVAL_MS = 1000;
export const PURGING_CAP_SCALE = 4;
const CAP_WAIT_MS = 2000;
const UNANSWERED_CAPS = 2;
const UNANSWERED_MS = CAP_WAIT_MS;
/** SQLite's default page size: the unit of the WAL's frames. */
const PAGE_BYTES = 4096;

// CommonJS run by the worker (eval: no TypeScript loader needed in a worker).
export const CHECKPOINT_WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
${YIELD_TO_EVENT_LOOP}
const db = new Database(workerData.path);
db.pragma('busy_timeout = ' + workerData.capWaitMs);
function checkpoint(mode) {
  try {
    return db.pragma('wal_checkpoint(' + mode + ')')[0];
  } catch {
    // Busy past the wait, or an I/O error: the next checkpoint tries again.
  }
}
// The write that next finds the WAL all copied starts it over, and SQLite syncs the WAL's
// header then: on the store's connection, inside a group commit on the event loop (a
// 44 ms COMMIT in a burst of due warnings, the disk busy). So after a checkpoint that
// copied the whole WAL, this connection makes that write itself: one row rewritten (the
// health probe's). Its own write does not change its data_version: until another
// connection commits, the next ticks copy nothing (that write stays in the WAL, and the
// store's next write appends after it), so an idle database is not written every tick.
function startOver() {
  try {
    db.prepare('INSERT INTO health_probe (id, checked_at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at').run(Date.now());
  } catch {
    // Busy past the wait, or no such table: the store's next write starts the WAL over.
  }
}
let timer;
let intervalMs = workerData.intervalMs;
let seen;
// A TRUNCATE found a reader it could not wait out: said once the WAL is all copied again.
let heldByReader = false;
const tick = () => {
  const version = db.pragma('data_version', { simple: true });
  if (version !== seen) {
    seen = version;
    const done = checkpoint('PASSIVE');
    const copiedAll = done && done.busy === 0 && done.log === done.checkpointed;
    if (copiedAll && heldByReader) {
      heldByReader = false;
      parentPort.postMessage('copied-all');
    }
    if (copiedAll && done.log > 0) startOver();
  }
  timer = setTimeout(tick, intervalMs);
};
parentPort.on('message', (message) => {
  if (typeof message.intervalMs === 'number') {
    intervalMs = message.intervalMs;
    return;
  }
  clearTimeout(timer);
  if (typeof message.behindFrames === 'number') {
    const done = checkpoint('PASSIVE');
    const caughtUp = done !== undefined && done.log - done.checkpointed <= message.behindFrames;
    if (caughtUp) heldByReader = false;
    parentPort.postMessage(caughtUp ? 'caught-up' : 'still-held');
    return tick();
  }
  if (message.truncate) {
    const done = checkpoint('TRUNCATE');
    heldByReader = !done || done.busy !== 0;
    parentPort.postMessage(heldByReader ? 'held' : 'truncated');
    return tick();
  }
  db.close();
  parentPort.close();
});
tick();
`;

export interface Checkpointer {
  /**
   * After each commit: starts the worker once the WAL is big enough to need it, empties it once over the cap.
   * `walBytes`: the WAL's size if the caller knows it (the purge worker stats it off the event loop).
   */
  afterCommit(walBytes?: number): void;
  /** Pending while the WAL is being emptied: writes wait for it. */
  truncating(): Promise<void> | undefined;
  /** Passive checkpoints every PURGING_INTERVAL_MS while the sweeper purges (true), every INTERVAL_MS again after (false). */
  purging(on: boolean): void;
  /** Stops the worker and closes its connection (before the store's own closes). */
  stop(): Promise<void>;
}

function fileBytes(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

export interface CheckpointerOptions {
  /** The worker's code (the tests' slow workers). */
  workerSource?: string;
  /** How long the worker's answer may be awaited before the WAL is emptied without it (UNANSWERED_MS). */
  unansweredMs?: number;
  /** How long an emptying waits for a reader or another process's write (CAP_WAIT_MS). */
  capWaitMs?: number;
  /** Milliseconds, for how long the answer has been awaited (the tests' clock). */
  now?: () => number;
}

export function checkpointer(db: Database.Database, path: string, capBytes = DEFAULT_WAL_CAP_BYTES, { workerSource = CHECKPOINT_WORKER_SOURCE, unansweredMs = UNANSWERED_MS, capWaitMs = CAP_WAIT_MS, now = () => performance.now() }: CheckpointerOptions = {}): Checkpointer {
  db.pragma('wal_autocheckpoint = 0');
  const startBytes = capBytes / 16;
  let worker: Worker | undefined;
  /** No worker any more: it failed, or the store is closing. */
  let done = false;
  let truncation: Promise<void> | undefined;
  /**
   * The WAL's size when the last emptying could not be done (a reader held it), or when the
   * worker last said its passive checkpoints were still held back: none is tried again until
   * the worker has copied it all, or nearly all when asked at the next cap.
   */
  let heldAtBytes: number | undefined;
  /** The WAL's size when the worker was asked how far its checkpoints have got; undefined once it answered. */
  let asked: { bytes: number; at: number } | undefined;
  /** Caps the WAL must grow by, the question unanswered, before it is emptied without the answer. */
  let capsUnanswered = UNANSWERED_CAPS;
  let purgingNow = false;

  function start(): void {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    const started = new Worker(workerSource, { eval: true, workerData: { driver, path, intervalMs: purgingNow ? PURGING_INTERVAL_MS : INTERVAL_MS, capWaitMs } });
    worker = started;
    started.unref();
    started.on('message', (message) => {
      if (message === 'copied-all') heldAtBytes = undefined;
    });
    // A failure is followed by the exit, handled there (this listener keeps it from being thrown).
    started.on('error', () => {});
    started.on('exit', () => {
      if (worker !== started) return; // stopped
      // Without its checkpointer the connection checkpoints on its own again, as SQLite's
      // default; and no emptying is asked of a worker that cannot answer (writes would wait for ever).
      done = true;
      worker = undefined;
      if (db.open) db.pragma('wal_autocheckpoint = 1000');
    });
  }

  function truncate(running: Worker, size: number, unanswered = false): void {
    // Writes wait for this worker now: it keeps the process alive until it answers.
    running.ref();
    truncation = new Promise<void>((resolve) => {
      const finish = (held: boolean) => {
        heldAtBytes = held ? size : undefined;
        if (!held) capsUnanswered = UNANSWERED_CAPS;
        else if (unanswered) capsUnanswered *= 2;
        running.off('message', answered);
        running.off('exit', exited);
        running.unref();
        truncation = undefined;
        resolve();
      };
      // Only the TRUNCATE's answer ends the wait: not what a passive checkpoint says, nor
      // the answer to a question asked before it.
      const answered = (message: unknown) => {
        if (message === 'held' || message === 'truncated') finish(message === 'held');
      };
      const exited = () => finish(false);
      running.on('message', answered);
      running.on('exit', exited);
    });
    running.postMessage({ truncate: true });
  }

  /** Asks, writes going on, whether the passive checkpoints are within a sixteenth of the cap of the WAL's end. */
  function askProgress(running: Worker, size: number): void {
    asked = { bytes: size, at: now() };
    const answered = (message: unknown) => {
      if (message !== 'caught-up' && message !== 'still-held') return;
      running.off('message', answered);
      asked = undefined;
      if (message === 'caught-up') capsUnanswered = UNANSWERED_CAPS;
      heldAtBytes = message === 'still-held' ? size : undefined;
    };
    running.on('message', answered);
    running.postMessage({ behindFrames: Math.floor(startBytes / PAGE_BYTES) });
  }

  function walBytes(): number {
    try {
      return statSync(`${path}-wal`).size;
    } catch {
      return 0;
    }
  }

  // A database this large needs the worker with its first busy period: started now, the
  // ~10 ms a new Worker takes of the event loop do not add to a commit's (the first batch
  // of a burst of due warnings after a restart: a 30 ms stall).
  if (fileBytes(path) > startBytes) start();

  return {
    afterCommit(knownBytes) {
      if (done || truncation) return;
      const size = knownBytes ?? walBytes();
      const cap = purgingNow ? capBytes * PURGING_CAP_SCALE : capBytes;
      if (!worker) {
        if (size > startBytes) start();
      } else if (asked !== undefined) {
        if (size > asked.bytes + capsUnanswered * cap && now() - asked.at >= unansweredMs) truncate(worker, size, true);
      } else if (heldAtBytes === undefined) {
        if (size > cap) truncate(worker, size);
      } else if (size > cap + heldAtBytes) askProgress(worker, size);
    },
    truncating: () => truncation,
    purging(on) {
      if (on === purgingNow) return;
      purgingNow = on;
      worker?.postMessage({ intervalMs: on ? PURGING_INTERVAL_MS : INTERVAL_MS });
    },
    async stop() {
      done = true;
      const running = worker;
      worker = undefined;
      if (!running) return;
      await truncation;
      // Closing waits for the worker's exit: it keeps the process alive until then.
      running.ref();
      const exited = once(running, 'exit');
      running.postMessage({ stop: true });
      await exited;
    },
  };
}
