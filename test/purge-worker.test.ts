// The purge worker (purge-worker.ts) runs the batch of purge-batch.ts from its source text
// on a connection of its own: sessions and their messages go, the count totals follow.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { purgeWorker } from '../src/storage/sqlite/purge-worker.js';
import { openSqliteStore } from '../src/storage/sqlite/sqlite-store.js';
import { MINUTE, T0 } from './helpers/fake-clock.js';
import { agentRecord, messageRecord, sessionRecord } from './store/records.js';

let directory: string;
beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), 'sessions-purge-worker-'));
});
afterEach(() => rmSync(directory, { recursive: true, force: true }));

it('purges a batch on its own connection: the sessions past the cutoff, their messages, their share of every count total', async () => {
  const path = join(directory, 'sessions.db');
  const store = openSqliteStore(path);
  const agent = agentRecord();
  await store.insertAgent(agent);
  const early = [0, 1, 2].map((i) => sessionRecord(agent.id, {}, T0 + i * MINUTE));
  const late = sessionRecord(agent.id, {}, T0 + 90 * MINUTE);
  for (const session of [...early, late]) await store.insertSession(session);
  for (let position = 1; position <= 3; position += 1) await store.appendMessage(early[0]!.id, (session) => ({ session: session!, message: messageRecord(early[0]!, position) }));
  await store.close();

  const worker = purgeWorker(path, 'normal');
  try {
    const cutoff = early[2]!.expiresAt;
    expect(await worker.purge(cutoff, 2)).toEqual({ purged: 2, more: true });
    expect(await worker.purge(cutoff, 2)).toEqual({ purged: 1, more: false });
    expect(await worker.purge(cutoff, 2)).toEqual({ purged: 0, more: false });
  } finally {
    await worker.stop();
  }

  const db = new Database(path, { readonly: true });
  try {
    expect(db.prepare('SELECT id FROM sessions').pluck().all()).toEqual([late.id]);
    expect(db.prepare('SELECT count(*) FROM messages').pluck().get()).toBe(0);
    // The marks are where the migration left them (0): the one session left is above both.
    const left = db.prepare('SELECT kind, sum(above_now) AS aboveNow, sum(above_cut) AS aboveCut FROM session_counts GROUP BY kind ORDER BY kind').all();
    expect(left).toEqual(['agent', 'expiry', 'user', 'warning'].map((kind) => ({ kind, aboveNow: 1, aboveCut: 1 })));
  } finally {
    db.close();
  }
});

it('rejects a batch when its worker cannot run, and tries a new worker for the next', async () => {
  const path = join(directory, 'not-a-database.db');
  writeFileSync(path, 'this is not a database file at all, just some text that SQLite refuses to read.');
  const worker = purgeWorker(path, 'normal');
  try {
    await expect(worker.purge(T0, 10)).rejects.toThrow();
    await expect(worker.purge(T0, 10)).rejects.toThrow();
  } finally {
    await worker.stop();
  }
});
