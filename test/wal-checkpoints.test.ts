// WAL checkpoints off the request's COMMIT (checkpointer.ts): the store's connection never
// checkpoints itself, a worker thread does, and the WAL file stays under its cap while
// writes go on without a pause.
import Database from 'better-sqlite3';
import { expect, it } from 'vitest';
import { CHECKPOINT_WORKER_SOURCE, checkpointer, type CheckpointerOptions, PURGING_CAP_SCALE } from '../src/storage/sqlite/checkpointer.js';
import { openDatabase } from '../src/storage/sqlite/connection.js';
import { openSqliteStore } from '../src/storage/sqlite/sqlite-store.js';
import { tempDatabaseEachTest } from './helpers/temp-database.js';
import { agentRecord, sessionRecord } from './store/records.js';
import { until } from './helpers/until.js';

const CAP = 2 * 2 ** 20;
/** How long an emptying waits for a reader here (2 s in the store): each hold in vain takes it. */
const CAP_WAIT_MS = 300;

const database = tempDatabaseEachTest('wal-checkpoints-');
const walBytes = () => database.walBytes();

it('keeps the WAL under its cap while batches of writes follow each other without a pause, and loses none of them', async () => {
  const store = openSqliteStore(database.path, { walCapBytes: CAP });
  const agent = agentRecord();
  await store.insertAgent(agent);
  let largest = 0;
  let written = 0;
  const batches = 30;
  for (let batch = 0; batch < batches; batch += 1) {
    // 50 concurrent creates: one group commit, as under load.
    const done = await Promise.all(Array.from({ length: 50 }, () => store.insertSession(sessionRecord(agent.id))));
    written += done.filter(Boolean).length;
    largest = Math.max(largest, walBytes());
  }
  // Without the cap a passive checkpoint never catches up with writes that do not pause:
  // these 30 batches leave a WAL of ~13 MiB (checked). With it, the WAL exceeds the cap by
  // at most the one batch that crossed it (~1 MiB here).
  expect(largest).toBeGreaterThan(CAP / 2);
  expect(largest).toBeLessThan(2 * CAP);
  expect(written).toBe(batches * 50);
  await store.close();

  const db = new Database(database.path, { readonly: true });
  expect(db.prepare('SELECT count(*) FROM sessions').pluck().get()).toBe(batches * 50);
  db.close();
});

it('turns the connection’s own checkpoints off: none runs inside a COMMIT', async () => {
  const db = openDatabase(database.path);
  expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
  const checkpoints = checkpointer(db, database.path, CAP);
  expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(0);
  await checkpoints.stop();
  db.close();
});

it('closes with the WAL folded into the database', async () => {
  const store = openSqliteStore(database.path, { walCapBytes: CAP });
  const agent = agentRecord();
  await store.insertAgent(agent);
  for (let batch = 0; batch < 10; batch += 1) await Promise.all(Array.from({ length: 50 }, () => store.insertSession(sessionRecord(agent.id))));
  await store.close();
  expect(walBytes()).toBe(0);
  const db = new Database(database.path, { readonly: true });
  expect(db.prepare('SELECT count(*) FROM sessions').pluck().get()).toBe(500);
  db.close();
});

/** A database with a checkpointer, and an insert that commits 256 KiB, as the store's writes and the purge's batches do. */
function blobWrites(options: CheckpointerOptions = {}) {
  const db = openDatabase(database.path);
  db.exec('CREATE TABLE IF NOT EXISTS blobs (b BLOB)');
  return { db, checkpoints: checkpointer(db, database.path, CAP, { capWaitMs: CAP_WAIT_MS, ...options }), insert: db.prepare('INSERT INTO blobs VALUES (randomblob(262144))') };
}

/** Commits one by one, each waiting out any hold for an emptying it started: the WAL's size when held, how long, and after. */
function committing({ checkpoints, insert }: ReturnType<typeof blobWrites>) {
  const holds: { atBytes: number; ms: number; afterBytes: number }[] = [];
  const commit = async () => {
    insert.run();
    checkpoints.afterCommit();
    const truncation = checkpoints.truncating();
    if (truncation) {
      const atBytes = walBytes();
      const started = performance.now();
      await truncation;
      holds.push({ atBytes, ms: performance.now() - started, afterBytes: walBytes() });
    }
    await new Promise(setImmediate); // the worker's answers come in; no pause for a checkpoint to copy all
  };
  return { holds, commit };
}

/** A reader in a snapshot of its own (one long read, as VACUUM INTO's) until `end()`. */
function longReader() {
  const reader = new Database(database.path, { readonly: true });
  reader.exec('BEGIN');
  reader.prepare('SELECT count(*) FROM blobs').get();
  return { end: () => reader.exec('COMMIT'), close: () => reader.close() };
}

it('lets the WAL grow to PURGING_CAP_SCALE times its cap while a purge runs, no further, and holds it to the cap again after', async () => {
  const { db, checkpoints, insert } = blobWrites();
  // The purge worker tells the WAL's size (it stats it off the event loop); the store's own commits let it stat.
  const commit = async (told: boolean) => {
    await checkpoints.truncating();
    insert.run();
    checkpoints.afterCommit(told ? walBytes() : undefined);
    return walBytes();
  };
  try {
    checkpoints.purging(true);
    let largest = 0;
    // Enough commits to reach the scaled cap and go past it.
    const commits = (PURGING_CAP_SCALE * CAP) / 2 ** 18 + 20;
    for (let i = 0; i < commits; i += 1) largest = Math.max(largest, await commit(i % 2 === 0));
    expect(largest).toBeGreaterThan(2 * CAP);
    expect(largest).toBeLessThan(PURGING_CAP_SCALE * CAP + 2 ** 20);
    checkpoints.purging(false);
    await commit(true);
    largest = 0;
    for (let i = 0; i < 30; i += 1) largest = Math.max(largest, await commit(i % 2 === 0));
    expect(largest).toBeLessThan(CAP + 2 ** 20);
  } finally {
    await checkpoints.stop();
    db.close();
  }
});

it('empties the WAL at its cap from a size it is told, without a stat of its own', async () => {
  const { db, checkpoints, insert } = blobWrites();
  try {
    // The WAL is small, but the caller says it is over the cap: once the worker runs, that starts an emptying.
    for (let i = 0; i < 4; i += 1) {
      insert.run();
      checkpoints.afterCommit(CAP / 8);
    }
    expect(checkpoints.truncating()).toBeUndefined();
    insert.run();
    checkpoints.afterCommit(CAP + 1);
    const truncation = checkpoints.truncating();
    expect(truncation).toBeDefined();
    await truncation;
    expect(walBytes()).toBe(0);
  } finally {
    await checkpoints.stop();
    db.close();
  }
});

it('holds writes once for a WAL a reader keeps (a backup), not at each cap after; empties it once the reader is gone, holding writes only for the little left', { timeout: 30_000 }, async () => {
  const writes = blobWrites();
  const { holds, commit } = committing(writes);
  const reader = longReader();
  try {
    while (holds.length < 1) await commit();
    // CAP_WAIT_MS in vain for the reader.
    expect(holds[0]!.ms).toBeGreaterThanOrEqual(CAP_WAIT_MS - 20);
    while (walBytes() < holds[0]!.atBytes + 3 * CAP) await commit();
    // Three caps on, the reader still there: the worker was asked at each, writes were not held.
    expect(holds).toHaveLength(1);
    reader.end();
    // Commits with pauses, in which the worker's passive checkpoints catch up with the WAL.
    await until('the WAL is emptied once the reader is gone', async () => {
      await commit();
      return walBytes() === 0;
    }, { ms: 5000, everyMs: 50 });
    expect(holds).toHaveLength(2);
    // The passive checkpoints had copied the grown WAL, writes going on: the TRUNCATE had little left.
    expect(holds[1]!.ms).toBeLessThan(1000);
  } finally {
    reader.close();
    await writes.checkpoints.stop();
    writes.db.close();
  }
});

it('empties a WAL a reader kept once the reader is gone, under writes without a pause: asked at the next cap, the worker says its checkpoints caught up', { timeout: 30_000 }, async () => {
  // Not waiting UNANSWERED_MS for a late answer: 40 caps of these writes can take less.
  const writes = blobWrites({ unansweredMs: 0 });
  const { holds, commit } = committing(writes);
  const reader = longReader();
  try {
    while (holds.length < 1) await commit();
    reader.end();
    // The worker's passive checkpoints never copy the whole WAL while writes go on: what
    // empties it is the answer to the question asked a cap later ("caught up": within a
    // sixteenth of a cap), after which the next commit over the cap empties it; or, if the
    // answer is slow in coming (its checkpoints sync a busy disk), the commit two caps on.
    while (walBytes() > 0 && walBytes() < holds[0]!.atBytes + 40 * CAP) await commit();
    expect(walBytes()).toBe(0);
    expect(holds).toHaveLength(2);
  } finally {
    reader.close();
    await writes.checkpoints.stop();
    writes.db.close();
  }
});

/**
 * A worker whose answer to how far its checkpoints have got comes only when it is told to
 * empty the WAL, and which takes a while to begin that: what a slow one is, from the
 * writes' side.
 */
function answeringOnlyWhenTold(): string {
  const answer = "parentPort.postMessage(caughtUp ? 'caught-up' : 'still-held');";
  const truncateMessage = 'if (message.truncate) {';
  expect(CHECKPOINT_WORKER_SOURCE).toContain(answer);
  expect(CHECKPOINT_WORKER_SOURCE).toContain(truncateMessage);
  return CHECKPOINT_WORKER_SOURCE.replace(answer, 'lateAnswer = caughtUp ? "caught-up" : "still-held";')
    .replace(truncateMessage, `${truncateMessage} if (lateAnswer) parentPort.postMessage(lateAnswer); Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);`)
    .replace('let timer;', 'let timer; let lateAnswer;');
}

it('empties a WAL a reader kept, once it has grown two more caps with the worker’s answer not come, holding the writes until it is empty (the answer waits behind checkpoints a busy disk makes slow)', { timeout: 30_000 }, async () => {
  // The hold must wait for the emptying, not end at the late answer.
  const writes = blobWrites({ workerSource: answeringOnlyWhenTold(), unansweredMs: 0 });
  const { holds, commit } = committing(writes);
  const reader = longReader();
  try {
    while (holds.length < 1) await commit();
    reader.end();
    // Asked once the WAL is a cap beyond where the reader held it, then two caps more unanswered.
    let largest = 0;
    while (walBytes() > 0 && walBytes() < holds[0]!.atBytes + 10 * CAP) {
      await commit();
      largest = Math.max(largest, walBytes());
    }
    expect(holds).toHaveLength(2);
    expect(holds[1]!.atBytes).toBeGreaterThan(holds[0]!.atBytes + 3 * CAP);
    expect(largest).toBeLessThanOrEqual(holds[0]!.atBytes + 3 * CAP + 2 ** 18 + 2 * 4096);
    expect(holds[1]!.afterBytes).toBe(0);
  } finally {
    reader.close();
    await writes.checkpoints.stop();
    writes.db.close();
  }
});

it('with the reader still there, a hold without the answer that was in vain makes the next wait for twice as many caps', { timeout: 30_000 }, async () => {
  const writes = blobWrites({ workerSource: answeringOnlyWhenTold(), unansweredMs: 0 });
  const { holds, commit } = committing(writes);
  const reader = longReader();
  try {
    while (holds.length < 3) await commit();
    // Each held CAP_WAIT_MS in vain for the reader.
    for (const hold of holds) expect(hold.ms).toBeGreaterThanOrEqual(CAP_WAIT_MS - 20);
    const [first, second, third] = holds.map((hold) => hold.atBytes);
    // Asked a cap on, then two caps unanswered; then asked a cap on, and four caps unanswered.
    expect(second! - first!).toBeGreaterThan(3 * CAP);
    expect(second! - first!).toBeLessThanOrEqual(3 * CAP + 2 ** 19);
    expect(third! - second!).toBeGreaterThan(5 * CAP);
    expect(third! - second!).toBeLessThanOrEqual(5 * CAP + 2 ** 19);
  } finally {
    reader.close();
    await writes.checkpoints.stop();
    writes.db.close();
  }
});

it('empties the WAL without the worker’s answer once it has been awaited unansweredMs, not a moment before, however far the WAL has grown', { timeout: 30_000 }, async () => {
  let clock = 0;
  const writes = blobWrites({ workerSource: answeringOnlyWhenTold(), unansweredMs: 1000, now: () => clock });
  const { holds, commit } = committing(writes);
  const reader = longReader();
  try {
    while (holds.length < 1) await commit();
    // Asked a cap on (at 0), then well past two caps more, unanswered.
    while (walBytes() < holds[0]!.atBytes + 5 * CAP) await commit();
    clock = 999;
    await commit();
    expect(holds).toHaveLength(1);
    clock = 1000;
    await commit();
    expect(holds).toHaveLength(2);
  } finally {
    reader.close();
    await writes.checkpoints.stop();
    writes.db.close();
  }
});

it('with the reader still there and the worker’s answers late (a backup on a busy disk), holds the writes once, not every few caps: answered within UNANSWERED_MS, no emptying is forced', { timeout: 30_000 }, async () => {
  // Answers 300 ms late (R44).
  const answer = "parentPort.postMessage(caughtUp ? 'caught-up' : 'still-held');";
  const late = CHECKPOINT_WORKER_SOURCE.replace(answer, `Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300); ${answer}`);
  expect(late).not.toBe(CHECKPOINT_WORKER_SOURCE);
  const writes = blobWrites({ workerSource: late });
  const { holds, commit } = committing(writes);
  const reader = longReader();
  try {
    while (holds.length < 1) await commit();
    while (walBytes() < holds[0]!.atBytes + 12 * CAP) await commit();
    expect(holds).toHaveLength(1);
  } finally {
    reader.close();
    await writes.checkpoints.stop();
    writes.db.close();
  }
});

it('checkpoints on the connection again, as SQLite does by default, once its worker has failed or exited, and holds no write for it', async () => {
  for (const workerSource of ['throw new Error("the worker failed")', '/* a worker that ends at once */']) {
    const writes = blobWrites({ workerSource });
    try {
      writes.insert.run();
      writes.checkpoints.afterCommit(CAP / 8); // starts the worker
      await until('the connection checkpoints on its own again', async () => writes.db.pragma('wal_autocheckpoint', { simple: true }) === 1000);
      writes.insert.run();
      writes.checkpoints.afterCommit(CAP + 1);
      expect(writes.checkpoints.truncating(), workerSource).toBeUndefined();
    } finally {
      await writes.checkpoints.stop();
      writes.db.close();
    }
  }
});
