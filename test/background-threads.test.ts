// The store's worker threads (the purge, the checkpoints) run at a lower priority than the
// event loop (background-thread.ts): on a CPU they share with it, they wait for its turns.
// Linux: a thread's nice value is field 19 of /proc/self/task/<tid>/stat.
import { readdirSync, readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { NICENESS } from '../src/storage/sqlite/background-thread.js';
import { purgeWorker } from '../src/storage/sqlite/purge-worker.js';
import { openSqliteStore } from '../src/storage/sqlite/sqlite-store.js';
import { T0 } from './helpers/fake-clock.js';
import { tempDatabaseEachTest } from './helpers/temp-database.js';
import { until } from './helpers/until.js';
import { agentRecord, sessionRecord } from './store/records.js';

const database = tempDatabaseEachTest('background-threads-');

/** The nice value of each thread of this process. */
function niceValues(): number[] {
  return readdirSync('/proc/self/task').flatMap((tid) => {
    try {
      return [Number(readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ')[16])];
    } catch {
      return []; // the thread ended meanwhile
    }
  });
}
const backgroundThreads = () => niceValues().filter((nice) => nice === NICENESS).length;

it('the event loop keeps its priority; the purge worker runs at NICENESS', async () => {
  expect(NICENESS).toBeGreaterThan(0);
  expect(readFileSync('/proc/thread-self/stat', 'utf8').split(') ')[1]!.split(' ')[16]).toBe('0');
  const store = openSqliteStore(database.path);
  const agent = agentRecord();
  await store.insertAgent(agent);
  // Expired and announced (what the sweeper's pass does before it purges).
  const session = sessionRecord(agent.id, { announced: 'expiry' }, T0);
  await store.insertSession(session);
  await store.close();

  const before = backgroundThreads();
  const worker = purgeWorker(database.path, 'normal');
  try {
    expect(await worker.purge(session.expiresAt, 10)).toEqual({ purged: 1, more: false });
    expect(backgroundThreads()).toBe(before + 1);
  } finally {
    await worker.stop();
  }
  await until('the purge worker has ended', () => backgroundThreads() === before);
});

it('the checkpointer runs at NICENESS', async () => {
  const cap = 2 * 2 ** 20;
  const store = openSqliteStore(database.path, { walCapBytes: cap });
  const agent = agentRecord();
  await store.insertAgent(agent);
  const before = backgroundThreads();
  // The worker starts once the WAL has grown to a sixteenth of the cap.
  for (let batch = 0; batch < 10; batch += 1) await Promise.all(Array.from({ length: 50 }, () => store.insertSession(sessionRecord(agent.id))));
  await until('the checkpointer runs at NICENESS', () => backgroundThreads() === before + 1);
  await store.close();
  await until('the checkpointer has ended', () => backgroundThreads() === before);
});
