// The purge worker (purge-worker.ts) runs the batch of purge-batch.ts from its source text
// on a connection of its own: sessions and their messages go, the count totals follow.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { purgeWorker } from '../src/storage/sqlite/purge-worker.js';
import { openSqliteStore } from '../src/storage/sqlite/sqlite-store.js';
import { expectCountTotalsExact } from './helpers/count-totals.js';
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
  // Expired and announced (what the sweeper's pass does before it purges).
  const early = [0, 1, 2].map((i) => sessionRecord(agent.id, { announced: 'expiry' }, T0 + i * MINUTE));
  const late = sessionRecord(agent.id, {}, T0 + 90 * MINUTE);
  for (const session of [...early, late]) await store.insertSession(session);
  for (let position = 1; position <= 3; position += 1) await store.appendMessage(early[0]!.id, (session) => ({ session: session!, message: messageRecord(early[0]!, position) }));
  await store.close();

  const worker = purgeWorker(path, 'normal');
  try {
    const cutoff = early[2]!.expiresAt;
    expect(worker.walBytes()).toBeUndefined();
    expect(await worker.purge(cutoff, 2)).toEqual({ purged: 2, more: true });
    // The WAL's size after the batch, as the worker saw it (for the checkpointer's cap, no stat on the event loop).
    expect(worker.walBytes()).toBe(statSync(`${path}-wal`).size);
    expect(worker.walBytes()).toBeGreaterThan(0);
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

it('moves the count marks on its own connection, a bounded batch at a time through an instant that many sessions share, the totals exact at every step', async () => {
  const path = join(directory, 'sessions.db');
  const store = openSqliteStore(path);
  const agents = [agentRecord(), agentRecord()];
  for (const agent of agents) await store.insertAgent(agent);
  // 30 sessions on one deadline, then 20 a minute apart; users shared by a few each.
  const users = [0, 1, 2].map(() => randomUUID());
  const sessions = Array.from({ length: 50 }, (_, i) => sessionRecord(agents[i % 2]!.id, { userId: users[i % 3]! }, T0 + Math.max(0, i - 29) * MINUTE));
  await Promise.all(sessions.map((session) => store.insertSession(session)));
  await store.close();

  const deadlines = sessions.map((session) => session.expiresAt);
  const worker = purgeWorker(path, 'normal');
  const marks = () => {
    const db = new Database(path, { readonly: true });
    try {
      return db.prepare('SELECT now_mark AS now, cut_mark AS cut FROM session_count_marks').get();
    } finally {
      db.close();
    }
  };
  try {
    const now = deadlines[40]!;
    const cutoff = deadlines[0]!;
    // The cutoff's mark first, 12 at a time through the shared instant; then the now mark.
    expect(await worker.moveMarks(now, cutoff, 12)).toEqual({ passed: 12, more: true });
    expect(marks()).toEqual({ now: 0, cut: cutoff });
    expectCountTotalsExact(path);
    expect(await worker.moveMarks(now, cutoff, 12)).toEqual({ passed: 12, more: true });
    expect(await worker.moveMarks(now, cutoff, 12)).toEqual({ passed: 12, more: true });
    expectCountTotalsExact(path);
    let passed = 36;
    for (let more = true; more; ) {
      const moved = await worker.moveMarks(now, cutoff, 12);
      passed += moved.passed;
      more = moved.more;
      expectCountTotalsExact(path);
    }
    // 30 passed by the cutoff's mark, 41 by the now mark.
    expect(passed).toBe(30 + 41);
    expect(marks()).toEqual({ now, cut: cutoff });
    expect(await worker.moveMarks(now, cutoff, 12)).toEqual({ passed: 0, more: false });
  } finally {
    await worker.stop();
  }
});

it('sends a move of many sessions to the worker, through the store, and keeps its counts exact', async () => {
  const path = join(directory, 'sessions.db');
  const store = openSqliteStore(path);
  try {
    const agent = agentRecord();
    await store.insertAgent(agent);
    const sessions = Array.from({ length: 250 }, (_, i) => sessionRecord(agent.id, {}, T0 + i * 1000));
    await Promise.all(sessions.map((session) => store.insertSession(session)));
    const now = sessions[199]!.expiresAt;
    const moves = [];
    for (let more = true; more; ) {
      const moved = await store.moveCountMarks!(now, T0, 150);
      moves.push(moved.passed);
      more = moved.more;
    }
    // 150 on the worker (100 or more to pass), the last 50 on the store's own connection.
    expect(moves).toEqual([150, 50]);
    expectCountTotalsExact(path);
    for (const t of [now - 1, now, sessions[249]!.expiresAt]) {
      expect((await store.countSessions({ now: t, purgeCutoff: T0 })).active).toBe(sessions.filter((session) => session.expiresAt > t).length);
    }
  } finally {
    await store.close();
  }
});

it('lowers the totals of sessions on the lower mark instant itself when it purges them (a mark stopped inside their shared instant)', async () => {
  const path = join(directory, 'sessions.db');
  const store = openSqliteStore(path);
  const agent = agentRecord();
  await store.insertAgent(agent);
  // 30 sessions on one deadline, their expiry announced (purgeable), and one later.
  const shared = Array.from({ length: 30 }, () => sessionRecord(agent.id, { announced: 'expiry' }, T0));
  for (const session of [...shared, sessionRecord(agent.id, {}, T0 + 90 * MINUTE)]) await store.insertSession(session);
  await store.close();

  const instant = shared[0]!.expiresAt;
  const worker = purgeWorker(path, 'normal');
  try {
    // The cutoff's mark stops 12 sessions into the instant; then (a cutoff stepped back) the now mark passes it whole.
    expect(await worker.moveMarks(instant, instant, 12)).toEqual({ passed: 12, more: true });
    expect(await worker.moveMarks(instant, instant - 1, 100)).toEqual({ passed: 30, more: false });
    expectCountTotalsExact(path);
    expect(await worker.purge(instant, 100)).toEqual({ purged: 30, more: false });
    expectCountTotalsExact(path);
  } finally {
    await worker.stop();
  }
});
