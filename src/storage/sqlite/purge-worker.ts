// The purge off the event loop. Deleting 10^6 expired sessions dirties pages of every
// B-tree a session is in, most of them at random places (per agent, per user): measured
// at 10^5 sessions, 200-270 µs a session and event-loop stalls of 60-110 ms when the
// store's connection did it. A worker thread with its own connection to the file runs
// each batch (purge-batch.ts) in its own IMMEDIATE transaction; the event loop only
// posts the batch and awaits its answer. The count totals are lowered in the same
// transaction, so counts read on any connection stay exact. The worker moves the count
// marks too (mark-batch.ts), for the same reason. It starts on the first batch that has
// something to do, and the store stops it once a pass is done.
import { createRequire } from 'node:module';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { YIELD_TO_EVENT_LOOP } from './background-thread.js';
import { WHOLE_INSTANT } from './expiry-counts.js';
import { advanceMark, markSql, prepareMarks, runMarkMove } from './mark-batch.js';
import { PURGE_MESSAGES_PER_SESSION, preparePurge, purgeSql, runPurgeBatch } from './purge-batch.js';

/** The worker's own wait for the write lock (it sleeps off the event loop). */
const LOCK_WAIT_MS = 5000;

// CommonJS run by the worker (eval: no TypeScript loader needed in a worker); the batch
// functions are inserted from their source.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const preparePurge = (${preparePurge.toString()});
const runPurgeBatch = (${runPurgeBatch.toString()});
const prepareMarks = (${prepareMarks.toString()});
const advanceMark = (${advanceMark.toString()});
const runMarkMove = (${runMarkMove.toString()});
${YIELD_TO_EVENT_LOOP}
const db = new Database(workerData.path);
// The WAL's size after a batch, for the checkpointer's cap: stat here, not on the event loop
// (a stat of the WAL while a checkpoint wrote or truncated it took up to 77 ms there).
const walBytes = () => {
  try {
    return require('node:fs').statSync(workerData.path + '-wal').size;
  } catch {
    return 0;
  }
};
db.pragma('busy_timeout = ' + workerData.lockWaitMs);
db.pragma('synchronous = ' + workerData.synchronous);
db.pragma('foreign_keys = ON');
db.pragma('temp_store = MEMORY');
db.pragma('wal_autocheckpoint = 0');
const statements = preparePurge(db, workerData.sql);
const batch = db.transaction((cutoff, limit) => runPurgeBatch(statements, cutoff, limit, workerData.messagesPerSession)).immediate;
let markStatements;
const moveMarks = db.transaction((now, cutoff, limit) => runMarkMove(markStatements ??= prepareMarks(db, workerData.markSql), now, cutoff, limit, workerData.wholeInstant)).immediate;
parentPort.on('message', (message) => {
  if (message.stop) {
    db.close();
    parentPort.close();
    return;
  }
  try {
    const value = message.now === undefined ? batch(message.cutoff, message.limit) : moveMarks(message.now, message.cutoff, message.limit);
    parentPort.postMessage({ ok: true, value, walBytes: walBytes() });
  } catch (error) {
    parentPort.postMessage({ ok: false, message: String(error && error.message), code: error && error.code });
  }
});
`;

export interface PurgeWorker {
  /** One batch on the worker's connection (batches run one at a time). */
  purge(cutoff: number, limit: number): Promise<{ purged: number; more: boolean }>;
  /** One move of the count marks (mark-batch.ts) on the worker's connection, in turn with the batches. */
  moveMarks(now: number, cutoff: number, limit: number): Promise<{ passed: number; more: boolean }>;
  /** The WAL's size in bytes after the last batch answered (the worker stats it), if one did. */
  walBytes(): number | undefined;
  /** Stops the thread after the batches queued; a later batch starts a new one. */
  stop(): Promise<void>;
}

type Answer<T> = { ok: true; value: T; walBytes: number } | { ok: false; message: string; code?: string };
type Job = { cutoff: number; limit: number; now?: number };

export function purgeWorker(path: string, synchronous: 'normal' | 'full'): PurgeWorker {
  let worker: Worker | undefined;
  let queue: Promise<unknown> = Promise.resolve();
  let walBytes: number | undefined;

  function started(): Worker {
    if (worker) return worker;
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    const workerData = {
      ...{ driver, path, synchronous, lockWaitMs: LOCK_WAIT_MS },
      ...{ sql: purgeSql(), messagesPerSession: PURGE_MESSAGES_PER_SESSION, markSql: markSql(), wholeInstant: WHOLE_INSTANT },
    };
    worker = new Worker(WORKER_SOURCE, { eval: true, workerData });
    worker.unref();
    return worker;
  }

  /** The worker's answer to one batch; rejects when it fails or exits instead. */
  function answerOf<T>(running: Worker): Promise<Answer<T>> {
    return new Promise((resolve, reject) => {
      const settle = (done: () => void) => {
        running.off('message', onMessage).off('error', onError).off('exit', onExit);
        done();
      };
      const onMessage = (answer: Answer<T>) => settle(() => resolve(answer));
      const onError = (error: Error) => settle(() => reject(error));
      const onExit = (code: number) => settle(() => reject(new Error(`the purge worker exited (${code})`)));
      running.on('message', onMessage).on('error', onError).on('exit', onExit);
    });
  }

  async function run<T>(job: Job): Promise<T> {
    const running = started();
    // While a batch runs, the worker keeps the process alive.
    running.ref();
    try {
      const answered = answerOf<T>(running);
      running.postMessage(job);
      const answer = await answered;
      if (answer.ok) {
        walBytes = answer.walBytes;
        return answer.value;
      }
      // The store's callers judge SQLite's errors by code (storage-faults.ts).
      throw answer.code ? new Database.SqliteError(answer.message, answer.code) : new Error(answer.message);
    } catch (error) {
      // A worker that failed or exited is replaced on the next batch.
      if (worker === running && !(error instanceof Database.SqliteError)) {
        worker = undefined;
        void running.terminate();
      }
      throw error;
    } finally {
      running.unref();
    }
  }

  function inTurn<T>(job: Job): Promise<T> {
    const result = queue.then(() => run<T>(job));
    queue = result.catch(() => undefined);
    return result;
  }

  return {
    purge: (cutoff, limit) => inTurn({ cutoff, limit }),
    moveMarks: (now, cutoff, limit) => inTurn({ now, cutoff, limit }),
    walBytes: () => walBytes,
    async stop() {
      await queue;
      const running = worker;
      worker = undefined;
      if (!running) return;
      running.ref();
      const exited = once(running, 'exit');
      running.postMessage({ stop: true });
      await exited;
    },
  };
}
