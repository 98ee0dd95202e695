// The PostgreSQL store's counts come from per-minute buckets kept by triggers
// (src/storage/postgres/session-buckets.ts). Whatever the writes (batched and lone
// creates, changed deadlines, ends, purges, an agent deleted with its sessions, two
// instances at once), the buckets equal the sessions grouped afresh, no bucket is left
// at zero, and every count equals count(*) over the sessions, at minute boundaries too.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgresStore } from '../src/storage/postgres/postgres-store.js';
import { announce } from '../src/events/due-events.js';
import { sessionEvent } from '../src/events/event-records.js';
import type { AgentRecord, SessionQuery, SessionRecord, Store } from '../src/storage/store.js';
import { MINUTE, T0 } from './helpers/fake-clock.js';
import { createTestDatabase, migrateTo, type TestDatabase } from './helpers/postgres-database.js';
import { agentRecord, idempotencyRecord, sessionRecord } from './store/records.js';

/** A small deterministic generator (mulberry32): a failure replays. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('session counts from buckets (PostgreSQL)', { timeout: 60_000 }, () => {
  let database: TestDatabase;
  let admin: pg.Client;
  beforeAll(async () => {
    database = await createTestDatabase();
    admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
  });
  afterAll(async () => {
    await admin.end();
    await database.drop();
  });

  const next = random(20261127);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
  /** Deadlines on and around minute boundaries, within a few minutes of T0. */
  const deadline = () => T0 + Math.floor(next() * 8) * MINUTE + pick([0, 1, 59_999, Math.floor(next() * MINUTE)]);
  function withDeadlines(session: SessionRecord): SessionRecord {
    const expiresAt = deadline() + MINUTE;
    return { ...session, expiresAt, warnsAt: expiresAt - 1 - Math.floor(next() * 3 * MINUTE) };
  }

  async function expectBucketsExact(store: Store, admin: pg.Client, agents: string[], users: string[]): Promise<void> {
    const kept = await admin.query('SELECT kind, key, minute, n FROM session_buckets ORDER BY kind, key, minute');
    const fresh = await admin.query(`SELECT kind, key, minute, sum(n)::bigint AS n FROM (
        SELECT 'expiry' AS kind, '' AS key, expires_at / 60000 AS minute, 1 AS n FROM sessions
        UNION ALL SELECT 'agent', agent_id, expires_at / 60000, 1 FROM sessions
        UNION ALL SELECT 'user', user_id, expires_at / 60000, 1 FROM sessions
        UNION ALL SELECT 'warning', '', warns_at / 60000, 1 FROM sessions) AS s
      GROUP BY kind, key, minute ORDER BY kind, key, minute`);
    expect(kept.rows).toEqual(fresh.rows);

    const count = async (where: string, values: unknown[]) => Number((await admin.query(`SELECT count(*) AS n FROM sessions WHERE ${where}`, values)).rows[0].n);
    const instants = [T0 - MINUTE, T0, T0 + 3 * MINUTE, T0 + 3 * MINUTE - 1, T0 + 3 * MINUTE + 1, ...Array.from({ length: 6 }, deadline)];
    for (const now of instants) {
      const purgeCutoff = now - pick([0, 1, 2 * MINUTE + 7]);
      expect(await store.countSessions({ now, purgeCutoff })).toEqual({
        total: await count('expires_at > $1', [purgeCutoff]),
        active: await count('expires_at > $1', [now]),
        expiringSoon: await count('warns_at <= $1 AND expires_at > $1', [now]),
      });
      const filters: Array<[Partial<SessionQuery>, string, unknown]> = [
        [{}, 'TRUE AND $2::text IS NULL', null],
        [{ agentId: pick(agents) }, 'agent_id = $2', undefined],
        [{ userId: pick(users) }, 'user_id = $2', undefined],
        [{ agentIds: agents.slice(0, 2) }, 'agent_id = ANY($2)', agents.slice(0, 2)],
      ];
      for (const [filter, where, value] of filters) {
        const key = value !== undefined ? value : (filter.agentId ?? filter.userId);
        const active = await count(`${where} AND expires_at > $1`, [now, key]);
        const all = await count(`${where} AND expires_at > $1`, [purgeCutoff, key]);
        for (const [status, expected] of [['active', active], ['all', all], ['expired', all - active]] as const) {
          const page = await store.listSessions({ now, purgeCutoff, status, limit: 1, offset: 0, ...filter });
          expect([status, filter, page.total]).toEqual([status, filter, expected]);
        }
      }
    }
  }

  /** Two instances on the test's database, and an agent stored through the first. */
  async function withTwoInstances(test: (a: Store, b: Store, agent: AgentRecord) => Promise<void>): Promise<void> {
    const [a, b] = [await openPostgresStore({ url: database.url }), await openPostgresStore({ url: database.url })];
    try {
      const agent = agentRecord();
      await a.insertAgent(agent);
      await test(a, b, agent);
    } finally {
      await a.close();
      await b.close();
    }
  }

  it('equal the sessions after every kind of write, at minute boundaries too', async () => {
    const store = await openPostgresStore({ url: database.url });
    try {
      const agents = [agentRecord(), agentRecord(), agentRecord()];
      for (const agent of agents) await store.insertAgent(agent);
      const users = ['u-1', 'u-2', 'u-3', 'u-4'];
      const agentIds = agents.map((a) => a.id);
      const make = () => withDeadlines(sessionRecord(pick(agentIds), { userId: pick(users) }));

      // Creates together (one statement), and alone (keyed).
      const sessions = Array.from({ length: 120 }, make);
      expect(await Promise.all(sessions.map((session) => store.insertSession(session)))).toEqual(sessions.map(() => true));
      for (let i = 0; i < 10; i++) {
        const session = make();
        expect(await store.insertSession(session, { idempotency: () => idempotencyRecord(`bucket-${i}`) })).toBe(true);
        sessions.push(session);
      }
      await expectBucketsExact(store, admin, agentIds, users);

      // Deadlines moved (some to the same minute), together and one at a time.
      await Promise.all(sessions.slice(0, 60).map((session) => store.modifySession(session.id, (current) => withDeadlines(current!))));
      for (const session of sessions.slice(60, 70)) await store.modifySession(session.id, (current) => ({ ...current!, renewalCount: current!.renewalCount + 1 }));
      await expectBucketsExact(store, admin, agentIds, users);

      // Ends, a purge, an agent deleted with its sessions.
      for (const session of sessions.slice(70, 85)) await store.deleteSession(session.id, (current) => current!);
      // What a sweeper's pass does first (the purge keeps a session with an announcement due).
      while ((await store.announceDue(T0 + 4 * MINUTE, 1000, announce)) > 0);
      await expectBucketsExact(store, admin, agentIds, users);
      expect((await store.purgeExpired(T0 + 4 * MINUTE, 1000)).purged).toBeGreaterThan(0);
      await expectBucketsExact(store, admin, agentIds, users);
      expect((await store.deleteAgent(agents[2]!.id, { force: true, now: T0, purgeCutoff: 0 })).kind).toBe('deleted');
      await expectBucketsExact(store, admin, agentIds, users);
      expect(Number((await admin.query("SELECT count(*) AS n FROM session_buckets WHERE kind = 'agent' AND key = $1", [agents[2]!.id])).rows[0].n)).toBe(0);
    } finally {
      await store.close();
    }
  });

  // Every writer takes the buckets' row locks before the event log's lock. A batch of
  // creates that took them after (its insert trigger fires at the statement's end)
  // deadlocked with the writes to sessions of other instances (40P01, answered 503).
  it('batches of creates and writes to sessions on two instances, all with events, never deadlock', () =>
    withTwoInstances(async (a, b, agent) => {
      const inMinute = (session: SessionRecord) => ({ ...session, userId: 'busy-user', expiresAt: T0 + 40 * MINUTE + Math.floor(next() * MINUTE), warnsAt: T0 + 35 * MINUTE });
      const created = (written: SessionRecord) => [sessionEvent('session.created', written, T0)];
      const renewed = (written: SessionRecord) => [sessionEvent('session.renewed', written, T0)];
      const targets = Array.from({ length: 20 }, () => inMinute(sessionRecord(agent.id)));
      for (const session of targets) await a.insertSession(session);
      const rounds = Array.from({ length: 15 }, async (_, round) => {
        await Promise.all([
          ...Array.from({ length: 20 }, () => (round % 2 ? a : b).insertSession(inMinute(sessionRecord(agent.id)), { events: created })),
          ...targets.map((session, i) =>
            (i % 2 ? a : b).modifySession(session.id, (current) => ({ ...current!, expiresAt: current!.expiresAt + (round % 2 ? MINUTE : -MINUTE) }), { events: renewed }),
          ),
        ]);
      });
      await Promise.all(rounds);
      await expectBucketsExact(a, admin, [agent.id], ['busy-user']);
    }));

  it('migration 5 puts the sessions stored before into buckets', async () => {
    const old = await createTestDatabase();
    const client = new pg.Client({ connectionString: old.url });
    await client.connect();
    try {
      await migrateTo(client, 4);
      await client.query(`INSERT INTO agents (id, name, bio, settings, created_at) VALUES ('a1', '"Ada"', NULL, '{}', 0), ('a2', '"Bo"', NULL, '{}', 0)`);
      for (let i = 0; i < 40; i++) {
        const expiresAt = T0 + (i % 7) * MINUTE + (i % 3) * 20_001;
        await client.query(
          `INSERT INTO sessions (id, agent_id, user_id, created_at, last_activity, anchor_at, expires_at, warns_at, timeout_minutes, auto_renew,
             max_duration_minutes, warning_threshold_minutes, renewal_count, status, metadata, announced, due_at)
           VALUES ($1, $2, $3, $4, $4, $4, $5, $6, 30, true, 720, 5, 0, 'active', '{}', 'nothing', NULL)`,
          [`s-${i}`, i % 2 ? 'a1' : 'a2', `u-${i % 5}`, T0 - 30 * MINUTE, expiresAt, expiresAt - 5 * MINUTE],
        );
      }
    } finally {
      await client.end();
    }
    const store = await openPostgresStore({ url: old.url, poolSize: 2 });
    const oldAdmin = new pg.Client({ connectionString: old.url });
    await oldAdmin.connect();
    try {
      await expectBucketsExact(store, oldAdmin, ['a1', 'a2'], ['u-0', 'u-1', 'u-2', 'u-3', 'u-4']);
      expect(await store.countSessions({ now: T0, purgeCutoff: 0 })).toMatchObject({ total: 40 });
    } finally {
      await oldAdmin.end();
      await store.close();
      await old.drop();
    }
  });

  it('two instances writing at once lose no change to a shared bucket', () =>
    withTwoInstances(async (a, b, agent) => {
      const users = ['shared-user'];
      // Every deadline in one minute: both instances write the same buckets.
      const same = (session: SessionRecord) => ({ ...session, userId: 'shared-user', expiresAt: T0 + 30 * MINUTE + Math.floor(next() * MINUTE), warnsAt: T0 + 25 * MINUTE });
      const sessions = Array.from({ length: 200 }, () => same(sessionRecord(agent.id)));
      await Promise.all(sessions.map((session, i) => (i % 2 ? a : b).insertSession(session)));
      await Promise.all(sessions.map((session, i) => (i % 2 ? b : a).modifySession(session.id, (current) => ({ ...current!, expiresAt: current!.expiresAt + MINUTE }))));
      await Promise.all(sessions.slice(0, 50).map((session, i) => (i % 2 ? a : b).deleteSession(session.id, (current) => current!)));
      await expectBucketsExact(a, admin, [agent.id], users);
      expect((await b.listSessions({ now: T0, purgeCutoff: 0, agentId: agent.id, status: 'active', limit: 1, offset: 0 })).total).toBe(150);
    }));
});
