// What a store does with the WAL at open, so that the first writes served pay nothing
// extra on the event loop: the WAL's header is written (and synced) by a write at open,
// and the checkpointer's worker of a large database starts then, not inside a commit; once
// a checkpoint has copied the whole WAL, the worker starts it over itself.
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { checkpointer } from '../src/storage/sqlite/checkpointer.js';
import { openDatabase } from '../src/storage/sqlite/connection.js';
import { openSqliteStore } from '../src/storage/sqlite/sqlite-store.js';
import { tempDatabaseEachTest } from './helpers/temp-database.js';
import { agentRecord } from './store/records.js';

const CAP = 2 * 2 ** 20;
const database = tempDatabaseEachTest('wal-start-');
const walBytes = () => database.walBytes();

it('writes the WAL’s header when it opens an existing database, before any write is served', async () => {
  const first = openSqliteStore(database.path);
  await first.insertAgent(agentRecord());
  await first.close();
  expect(walBytes()).toBe(0); // closing folded the WAL into the database

  const store = openSqliteStore(database.path);
  try {
    expect(walBytes()).toBeGreaterThan(32); // the header and a frame: the next write appends to it
  } finally {
    await store.close();
  }
});

it('starts the checkpointer’s worker at once on a database larger than its start size', async () => {
  const setup = openDatabase(database.path);
  setup.exec('CREATE TABLE blobs (b BLOB)');
  setup.prepare('INSERT INTO blobs VALUES (randomblob(?))').run(CAP / 8);
  setup.close();

  const db = openDatabase(database.path);
  const checkpoints = checkpointer(db, database.path, CAP);
  try {
    // Told the WAL is over its cap at the first commit: a running worker empties it at once
    // (a worker started only now would first have to start).
    checkpoints.afterCommit(CAP + 1);
    const truncation = checkpoints.truncating();
    expect(truncation).toBeDefined();
    await truncation;
  } finally {
    await checkpoints.stop();
    db.close();
  }
});

/** The WAL header's salts: they change whenever a write starts the WAL over. */
const walSalts = () => readFileSync(`${database.path}-wal`).subarray(16, 24).toString('hex');

it('on a large database, the worker starts the WAL over whenever its checkpoint copied the store’s writes: the store’s writes only append', async () => {
  const setup = openDatabase(database.path);
  setup.exec('CREATE TABLE blobs (b BLOB)');
  setup.prepare('INSERT INTO blobs VALUES (randomblob(?))').run(CAP / 8);
  setup.close();

  const store = openSqliteStore(database.path, { walCapBytes: CAP });
  const startedOver = async (before: string) => {
    for (let waited = 0; walSalts() === before; waited += 10) {
      if (waited > 5000) throw new Error('the worker never started the WAL over');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return walSalts();
  };
  try {
    let started = await startedOver(walSalts());
    await store.insertAgent(agentRecord());
    expect(walSalts()).toBe(started);
    // Once its checkpoint has copied that write too, the worker starts the WAL over again...
    started = await startedOver(started);
    await store.insertAgent(agentRecord());
    expect(walSalts()).toBe(started);
    // ...but not while nothing else is written: its own write is left in the WAL.
    started = await startedOver(started);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(walSalts()).toBe(started);
  } finally {
    await store.close();
  }
});
