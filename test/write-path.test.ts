// The write path of the SQLite store since migration 11: the count totals (migration 16) kept a
// batch at a time by the store (expiry-counts.ts), the agent cache, and an index for
// every query that needs one.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isExpired, isNearExpiration, recordActivity, resolveTimeoutConfig, startTiming } from '../src/domain/timeout-policy.js';
import { announce } from '../src/events/due-events.js';
import { countAfterSql, WARNINGS_PASSING_SQL } from '../src/storage/sqlite/expiry-counts.js';
import { MARK_BATCH_SQL, NTH_AFTER_SQL, NTH_AT_SQL, PASSABLE_SQL } from '../src/storage/sqlite/mark-batch.js';
import { migrate } from '../src/storage/sqlite/migrations.js';
import { purgeSql } from '../src/storage/sqlite/purge-batch.js';
import { PURGEABLE_SQL } from '../src/storage/sqlite/purge-batch.js';
import { openSqliteStore } from '../src/storage/sqlite/sqlite-store.js';
import { IdempotencyKeyTaken, type SessionRecord, type Store } from '../src/storage/store.js';
import { expectCountTotalsExact } from './helpers/count-totals.js';
import { MINUTE, T0 } from './helpers/fake-clock.js';

const AGENTS = ['0b7b4c3e-1f2a-4d5e-8f90-a1b2c3d4e5f6', '1b7b4c3e-1f2a-4d5e-8f90-a1b2c3d4e5f6'];
const USERS = ['2b7b4c3e-1f2a-4d5e-8f90-a1b2c3d4e5f6', '3b7b4c3e-1f2a-4d5e-8f90-a1b2c3d4e5f6', '4b7b4c3e-1f2a-4d5e-8f90-a1b2c3d4e5f6'];
let directory: string;
let path: string;
beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), 'write-path-'));
  path = join(directory, 'sessions.db');
});
afterEach(() => rmSync(directory, { recursive: true, force: true }));

const session = (i: number, createdAt: number, timeoutMinutes: number): SessionRecord => ({
  id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
  agentId: AGENTS[i % 2]!,
  userId: USERS[i % 3]!,
  metadata: {},
  status: 'active',
  announced: 'nothing',
  ...startTiming(createdAt, resolveTimeoutConfig({ timeoutMinutes })),
});

const expectHistogramsExact = () => expectCountTotalsExact(path);

describe('the count totals, kept a batch of writes at a time', () => {
  it('stay exact through concurrent creates, renewals, deletes, a write rolled back to its savepoint, marks moved, purges, an agent deleted and a second connection', async () => {
    const a = openSqliteStore(path);
    const b = openSqliteStore(path);
    try {
      for (const id of AGENTS) await a.insertAgent({ id, name: 'A', settings: {}, createdAt: T0 });
      const key = { scope: 'anonymous', key: 'k', fingerprint: 'f', status: 201, body: '{}', createdAt: T0, expiresAt: T0 + 1440 * MINUTE };
      await a.insertSession(session(999, T0, 30), { idempotency: () => key });
      // One turn of the event loop: every write below is in one batch of its connection.
      const writes: Array<Promise<unknown>> = [];
      for (let i = 0; i < 60; i += 1) {
        const store: Store = i % 4 === 3 ? b : a;
        writes.push(store.insertSession(session(i, T0 + i * 7_919, 5 + (i % 40))));
      }
      const outcomes = await Promise.allSettled([
        ...writes,
        // Inserted, counted, then refused by its idempotency key: all of it rolls back.
        a.insertSession(session(1000, T0, 30), { idempotency: () => key }),
      ]);
      expect(outcomes.at(-1)).toMatchObject({ status: 'rejected', reason: expect.any(IdempotencyKeyTaken) });
      expect(await a.getSession(session(1000, T0, 30).id)).toBeUndefined();
      expectHistogramsExact();

      const changes: Array<Promise<unknown>> = [];
      for (let i = 0; i < 60; i += 1) {
        const store = i % 2 === 0 ? a : b;
        const id = session(i, 0, 5).id;
        if (i % 3 === 0) changes.push(store.modifySession(id, (s) => ({ ...s!, ...recordActivity(s!, s!.createdAt + 3 * MINUTE + 17).timing })));
        if (i % 3 === 1) changes.push(store.deleteSession(id, (s) => s!));
        // A change that throws after reading: nothing of it is written.
        if (i % 3 === 2) changes.push(store.deleteSession(id, () => { throw new Error('refused'); }));
      }
      await Promise.allSettled(changes);
      expectHistogramsExact();
      // Marks moved by either connection, a few sessions at a time, while the other writes.
      await Promise.all([a.moveCountMarks!(T0 + 12 * MINUTE, T0 + 6 * MINUTE, 3), b.insertSession(session(61, T0, 9)), b.moveCountMarks!(T0 + 14 * MINUTE, T0 + 8 * MINUTE, 2)]);
      expectHistogramsExact();

      // What a sweeper's pass does first (the purge keeps a session with an announcement due).
      while ((await a.announceDue(T0 + 25 * MINUTE, 1000, announce)) > 0);
      expectHistogramsExact();
      const purges = await Promise.all([a.purgeExpired(T0 + 20 * MINUTE, 7), b.purgeExpired(T0 + 25 * MINUTE, 1000)]);
      expect(purges[0].purged + purges[1].purged).toBeGreaterThan(0);
      expectHistogramsExact();
      for (const t of [T0, T0 + 10 * MINUTE, T0 + 30 * MINUTE, T0 + 45 * MINUTE]) {
        const db = new Database(path, { readonly: true });
        const rows = db.prepare('SELECT expires_at, warns_at FROM sessions').all() as Array<{ expires_at: number; warns_at: number }>;
        db.close();
        const counted = await b.countSessions({ now: t, purgeCutoff: t });
        expect(counted.active).toBe(rows.filter((r) => !isExpired(r.expires_at, t)).length);
        expect(counted.expiringSoon).toBe(rows.filter((r) => isNearExpiration({ expiresAt: r.expires_at, warnsAt: r.warns_at }, t)).length);
      }

      expect(await b.deleteAgent(AGENTS[1]!, { force: true, now: T0, purgeCutoff: 0 })).toMatchObject({ kind: 'deleted' });
      expectHistogramsExact();
      expect((await a.countSessions({ now: T0, purgeCutoff: T0 - 1 })).total).toBe((await a.listSessions({ now: T0, purgeCutoff: T0 - 1, status: 'all', limit: 100, offset: 0 })).sessions.length);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('the count marks', () => {
  it('stop on a deadline when one instant fills a batch, and a session on the mark no longer counts above it', async () => {
    const store = openSqliteStore(path);
    try {
      await store.insertAgent({ id: AGENTS[0]!, name: 'A', settings: {}, createdAt: T0 });
      const early = session(0, T0, 5);
      const later = [session(2, T0 + 1, 5), session(4, T0 + 2, 5)];
      for (const s of [early, ...later]) await store.insertSession(s);
      expect(await store.moveCountMarks!(T0 + 60 * MINUTE, T0, 1)).toEqual({ passed: 1, more: true });
      const db = new Database(path, { readonly: true });
      expect(db.prepare('SELECT now_mark FROM session_count_marks').pluck().get()).toBe(early.expiresAt);
      db.close();
      // Deleted and renewed on the mark's instant or above it: only the renewal still counts above it.
      await store.deleteSession(early.id, (s) => s!);
      await store.modifySession(later[0]!.id, (s) => ({ ...s!, ...recordActivity(s!, T0 + 3 * MINUTE).timing }));
      expectCountTotalsExact(path);
      const reader = new Database(path, { readonly: true });
      const deadlines = reader.prepare('SELECT expires_at FROM sessions').pluck().all() as number[];
      reader.close();
      for (const t of [early.expiresAt - 1, early.expiresAt, later[1]!.expiresAt]) {
        const counted = await store.countSessions({ now: t, purgeCutoff: T0 });
        expect(counted.active, `at ${t}`).toBe(deadlines.filter((expiresAt) => !isExpired(expiresAt, t)).length);
      }
    } finally {
      await store.close();
    }
  });
});

describe('a count mark through one instant that many sessions share', () => {
  it('moves a bounded batch at a time, and the counts stay exact while it stands inside the instant', async () => {
    const store = openSqliteStore(path);
    try {
      for (const id of AGENTS) await store.insertAgent({ id, name: 'A', settings: {}, createdAt: T0 });
      // Ten sessions share one deadline (and warning instant); one expires before them, one after.
      const shared = Array.from({ length: 10 }, (_, i) => session(i + 1, T0, 30));
      const before = session(0, T0 - MINUTE, 30);
      const after = session(11, T0 + MINUTE, 30);
      // Its warning falls on the shared deadline, and its rowid below theirs.
      const warnsOnTheDeadline = session(13, T0 + 5 * MINUTE, 30);
      for (const s of [warnsOnTheDeadline, before, ...shared, after]) await store.insertSession(s);
      const deadline = shared[0]!.expiresAt;
      const reader = new Database(path, { readonly: true });
      const markOf = () => reader.prepare('SELECT now_mark AS at, now_row AS row FROM session_count_marks').get() as { at: number; row: number };
      const expectCountsExact = async () => {
        expectCountTotalsExact(path);
        const rows = reader.prepare('SELECT agent_id, user_id, expires_at, warns_at FROM sessions').all() as Array<{ agent_id: string; user_id: string; expires_at: number; warns_at: number }>;
        for (const t of [deadline - 30 * MINUTE, shared[0]!.warnsAt - 1, shared[0]!.warnsAt, deadline - 1, deadline, deadline + 1, after.expiresAt, warnsOnTheDeadline.expiresAt]) {
          const counted = await store.countSessions({ now: t, purgeCutoff: T0 });
          expect(counted.active, `active at ${t}`).toBe(rows.filter((r) => !isExpired(r.expires_at, t)).length);
          expect(counted.expiringSoon, `near expiration at ${t}`).toBe(rows.filter((r) => isNearExpiration({ expiresAt: r.expires_at, warnsAt: r.warns_at }, t)).length);
          const byUser = await store.listSessions({ now: t, purgeCutoff: T0, userId: USERS[1], status: 'active', limit: 1, offset: 0 });
          expect(byUser.total, `active of a user at ${t}`).toBe(rows.filter((r) => r.user_id === USERS[1] && !isExpired(r.expires_at, t)).length);
        }
      };
      // Past `before` and 2 of the instant, then 3 at a time: each step stops inside the instant.
      expect(await store.moveCountMarks!(deadline + 30 * MINUTE, T0 - 1, 3)).toEqual({ passed: 3, more: true });
      expect(markOf().at).toBe(deadline);
      await expectCountsExact();
      // Written while the mark stands inside the instant: a session added on it (above the mark,
      // a greater rowid), one of those the mark passed renewed, one it has not passed deleted.
      await store.insertSession(session(12, T0, 30));
      const { row } = markOf();
      const passedOne = reader.prepare('SELECT id FROM sessions WHERE expires_at = ? AND rowid <= ? ORDER BY rowid DESC').pluck().get(deadline, row) as string;
      const notPassedOne = reader.prepare('SELECT id FROM sessions WHERE expires_at = ? AND rowid > ? ORDER BY rowid').pluck().get(deadline, row) as string;
      await store.modifySession(passedOne, (s) => ({ ...s!, ...recordActivity(s!, T0 + 5 * MINUTE).timing }));
      await store.deleteSession(notPassedOne, (s) => s!);
      await expectCountsExact();
      const steps: Array<{ passed: number; more: boolean }> = [];
      for (let moved = { passed: 0, more: true }; moved.more; ) {
        moved = await store.moveCountMarks!(deadline + 30 * MINUTE, T0 - 1, 3);
        steps.push(moved);
        expect(moved.passed).toBeLessThanOrEqual(3);
        await expectCountsExact();
      }
      // Left to pass: 8 on the instant (10 + 1 added - 2 passed - 1 deleted), the renewed one, `after` and the one warned on the deadline.
      expect(steps.reduce((sum, step) => sum + step.passed, 0)).toBe(8 + 3);
      expect(steps.length).toBeGreaterThanOrEqual(4);
      expect(markOf()).toEqual({ at: deadline + 30 * MINUTE, row: Number.MAX_SAFE_INTEGER });
      reader.close();
    } finally {
      await store.close();
    }
  });

  it('is purged through while a mark stands inside the instant, and the totals stay exact', async () => {
    const store = openSqliteStore(path);
    try {
      await store.insertAgent({ id: AGENTS[0]!, name: 'A', settings: {}, createdAt: T0 });
      await store.insertAgent({ id: AGENTS[1]!, name: 'A', settings: {}, createdAt: T0 });
      // Expired and announced (what the sweeper's pass does before it purges).
      const shared = Array.from({ length: 8 }, (_, i) => ({ ...session(i, T0, 5), announced: 'expiry' as const }));
      for (const s of shared) await store.insertSession(s);
      // The cutoff mark stops inside the instant; the purge deletes sessions on both sides of it.
      expect(await store.moveCountMarks!(T0 + 60 * MINUTE, shared[0]!.expiresAt, 3)).toEqual({ passed: 3, more: true });
      await store.purgeExpired(shared[0]!.expiresAt, 5);
      expectCountTotalsExact(path);
      await store.purgeExpired(shared[0]!.expiresAt, 5);
      expectCountTotalsExact(path);
      expect((await store.countSessions({ now: T0, purgeCutoff: T0 - 1 })).total).toBe(0);
    } finally {
      await store.close();
    }
  });
});

describe('the agent cache', () => {
  it('forgets an agent deleted here or by another connection on the same file', async () => {
    const a = openSqliteStore(path);
    const b = openSqliteStore(path);
    try {
      for (const id of AGENTS) await a.insertAgent({ id, name: 'A', settings: { SESSION_TIMEOUT_MINUTES: 9 }, createdAt: T0 });
      expect((await a.getAgent(AGENTS[0]!))?.settings).toEqual({ SESSION_TIMEOUT_MINUTES: 9 });
      expect(await a.getAgent(AGENTS[1]!)).toBeDefined();
      await b.deleteAgent(AGENTS[0]!, { force: true, now: T0, purgeCutoff: 0 });
      expect(await a.getAgent(AGENTS[0]!)).toBeUndefined();
      await a.deleteAgent(AGENTS[1]!, { force: true, now: T0, purgeCutoff: 0 });
      expect(await a.getAgent(AGENTS[1]!)).toBeUndefined();
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('the sweeper queries', () => {
  const plan = (sql: string) => {
    const db = new Database(':memory:');
    migrate(db);
    const detail = db
      .prepare(`EXPLAIN QUERY PLAN ${sql}`)
      .all({ now: T0, cutoff: T0, limit: 100 })
      .map((row) => (row as { detail: string }).detail)
      .join(' | ');
    db.close();
    return detail;
  };

  it('counts from one total and index ranges between a mark and the instant; moves a mark along the expiry index', () => {
    const db = new Database(':memory:');
    migrate(db);
    for (const kind of ['expiry', 'warning', 'agent', 'user'] as const) {
      const detail = db.prepare(`EXPLAIN QUERY PLAN ${countAfterSql(kind)}`).all({ after: T0, key: '' }).map((row) => (row as { detail: string }).detail);
      const index = kind === 'warning' ? 'sessions_by_warning \\(warns_at>\\? AND warns_at<\\?\\)' : 'sessions_by_expiry \\(expires_at>\\? AND expires_at<\\?\\)';
      const onTheMark = kind === 'warning' ? 'sessions_by_warning \\(warns_at=\\? AND rowid>\\?\\)' : 'sessions_by_expiry \\(expires_at=\\? AND rowid>\\?\\)';
      expect(detail.join(' | '), kind).toMatch(/SEARCH session_counts USING PRIMARY KEY \(kind=\? AND key=\?\)/);
      expect(detail.filter((line) => line.startsWith('SEARCH sessions')), kind).toEqual([
        expect.stringMatching(new RegExp(index)),
        expect.stringMatching(new RegExp(index)),
        expect.stringMatching(new RegExp(onTheMark)),
      ]);
    }
    // A mark moves along the index, from the rest of its own instant on; the warnings it passes are index ranges.
    const planOf = (sql: string, parameters: object) => db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(parameters).map((row) => (row as { detail: string }).detail).join(' | ');
    const range = { fromAt: T0, fromRow: 1, toAt: T0, toRow: 2 };
    expect(planOf(NTH_AT_SQL, { at: T0, row: 1, skip: 10 })).toMatch(/^SEARCH sessions USING COVERING INDEX sessions_by_expiry \(expires_at=\? AND rowid>\?\)$/);
    expect(planOf(NTH_AFTER_SQL, { from: T0, to: T0, skip: 10 })).toMatch(/^SEARCH sessions USING COVERING INDEX sessions_by_expiry \(expires_at>\? AND expires_at<\?\)$/);
    expect(planOf(PASSABLE_SQL, { ...range, limit: 10 })).toMatch(/SEARCH sessions USING COVERING INDEX sessions_by_expiry \(expires_at>\? AND expires_at<\?\)/);
    db.exec('CREATE TEMP TABLE mark_batch (agent_id TEXT, user_id TEXT)');
    expect(planOf(MARK_BATCH_SQL, range)).toMatch(/^SEARCH sessions USING INDEX sessions_by_expiry \(expires_at>\? AND expires_at<\?\)$/);
    expect(planOf(WARNINGS_PASSING_SQL, range).split(' | ').filter((line) => line.startsWith('SEARCH'))).toEqual([
      'SEARCH sessions USING COVERING INDEX sessions_by_warning (warns_at=? AND rowid>? AND rowid<?)',
      'SEARCH sessions USING COVERING INDEX sessions_by_warning (warns_at>? AND warns_at<?)',
      'SEARCH sessions USING COVERING INDEX sessions_by_warning (warns_at=? AND rowid<?)',
    ]);
    for (const sql of [NTH_AT_SQL, NTH_AFTER_SQL]) expect(planOf(sql, { at: T0, row: 1, from: T0, to: T0, skip: 1 })).not.toMatch(/TEMP B-TREE/);
    db.close();
  });

  it('finds purgeable sessions from the expiry index', () => {
    expect(plan(PURGEABLE_SQL)).toMatch(/SEARCH sessions USING INDEX sessions_by_expiry \(expires_at<\?\)/);
  });

  it("lowers a purge's totals by a key lookup each, never a scan of a counter's rows", () => {
    const db = new Database(':memory:');
    migrate(db);
    const sql = purgeSql();
    db.exec(sql.setUp);
    for (const statement of sql.counts) {
      const detail = db.prepare(`EXPLAIN QUERY PLAN ${statement}`).all().map((row) => (row as { detail: string }).detail);
      expect(detail.filter((line) => line.includes('session_counts')), statement).toEqual(statement.startsWith('DELETE') ? ['SEARCH session_counts USING PRIMARY KEY (kind=? AND key=?)'] : []);
    }
    db.close();
  });
});
