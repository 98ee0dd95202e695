import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { migrate } from '../src/storage/sqlite/migrations.js';
import { listSessionsSql } from '../src/storage/sqlite/queries.js';
import { MINUTE, T0 } from './helpers/fake-clock.js';
import { createSession, registerAgent } from './helpers/fixtures.js';
import { DEFAULT_RETENTION_MS, startTestApp, type TestApp } from './helpers/test-app.js';
import { sessionRecord } from './store/records.js';

const U1 = '11111111-1111-4111-8111-111111111111';
const U2 = '22222222-2222-4222-8222-222222222222';
const LIST = '/api/messaging/sessions';

let t: TestApp;
let agentA: string;
let agentB: string;
/** Session ids by name, created in this order. */
const ids: Record<string, string> = {};

async function add(name: string, agentId: string, userId: string, timeoutMinutes: number) {
  ids[name] = (await createSession(t, { agentId, userId, timeoutConfig: { timeoutMinutes } })).sessionId;
}

const list = async (query = '') => {
  const response = await t.request({ method: 'GET', url: `${LIST}${query}` });
  expect(response.status).toBe(200);
  return response.body;
};
const names = (sessions: Array<{ sessionId: string }>) =>
  sessions.map((session) => Object.keys(ids).find((name) => ids[name] === session.sessionId));

beforeEach(async () => {
  t = await startTestApp();
  agentA = await registerAgent(t);
  agentB = await registerAgent(t);
  // One millisecond apart, except a1 and a2, created in the same millisecond.
  await add('a1', agentA, U1, 10);
  await add('a2', agentA, U2, 60);
  t.clock.advance(1);
  await add('b1', agentB, U1, 10);
  t.clock.advance(1);
  await add('b2', agentB, U2, 60);
  t.clock.advance(1);
  await add('a3', agentA, U1, 60);
});
afterEach(() => t.close());

// Newest first; a1 and a2 share a millisecond, so the larger id comes first.
const newestFirst = () => ['a3', 'b2', 'b1', ...(ids.a1! > ids.a2! ? ['a1', 'a2'] : ['a2', 'a1'])];

describe('listSessions', () => {
  it('lists active sessions by default, newest first, ties broken by id', async () => {
    const body = await list();
    expect(names(body.sessions)).toEqual(newestFirst());
    expect(body.total).toBe(5);
    expect(body.stats).toEqual({ totalSessions: 5, activeSessions: 5, expiredSessions: 0 });
    expect(body.sessions[0]).toMatchObject({ sessionId: ids.a3, status: 'active', renewalCount: 0 });
  });

  it('filters by agentId, userId and both', async () => {
    expect(names((await list(`?agentId=${agentA}`)).sessions)).toEqual(newestFirst().filter((n) => n.startsWith('a')));
    expect(names((await list(`?userId=${U1}`)).sessions)).toEqual(newestFirst().filter((n) => ['a1', 'b1', 'a3'].includes(n)));
    const both = await list(`?agentId=${agentB}&userId=${U2}`);
    expect(names(both.sessions)).toEqual(['b2']);
    expect(both.total).toBe(1);
    expect(both.stats.totalSessions).toBe(5); // stats count the whole store
  });

  it('tells active, expired and all apart by the clock, whether or not the sweeper ran', async () => {
    t.clock.set(T0 + 10 * MINUTE + 1); // a1 (expires T0+10m) and b1 (T0+1ms+10m) have expired
    const expired = await list('?status=expired');
    expect(names(expired.sessions)).toEqual(['b1', 'a1']);
    expect(expired.sessions.every((s: { status: string; timeRemaining: number }) => s.status === 'expired' && s.timeRemaining === 0)).toBe(true);
    expect(expired.stats).toEqual({ totalSessions: 5, activeSessions: 3, expiredSessions: 2 });
    expect((await list('?status=active')).total).toBe(3);
    expect((await list()).total).toBe(3); // active is the default
    expect((await list('?status=all')).total).toBe(5);
    expect((await list(`?status=expired&agentId=${agentA}`)).total).toBe(1);
    await t.sweeper.sweep();
    expect(names((await list('?status=expired')).sessions)).toEqual(['b1', 'a1']);
  });

  it('leaves out sessions past retention, purged or not', async () => {
    t.clock.set(T0 + 10 * MINUTE + 1 + DEFAULT_RETENTION_MS); // a1 and b1 past retention; the rest expired, kept
    const all = await list('?status=all');
    expect(names(all.sessions)).toEqual(['a3', 'b2', 'a2']);
    expect(all.stats).toEqual({ totalSessions: 3, activeSessions: 0, expiredSessions: 3 });
    t.clock.set(T0 + 10 * MINUTE + DEFAULT_RETENTION_MS); // a1 past retention, b1 (1 ms younger) not yet
    expect(names((await list('?status=all')).sessions)).toEqual(['a3', 'b2', 'b1', 'a2']);
    t.clock.set(T0 + 60 * MINUTE + 3 + DEFAULT_RETENTION_MS); // every session past retention
    expect(await list('?status=all')).toEqual({ sessions: [], total: 0, stats: { totalSessions: 0, activeSessions: 0, expiredSessions: 0 } });
  });

  it('pages with limit and offset; total counts every match', async () => {
    const order = newestFirst();
    const first = await list('?limit=2');
    expect(names(first.sessions)).toEqual(order.slice(0, 2));
    expect(first.total).toBe(5);
    expect(names((await list('?limit=2&offset=2')).sessions)).toEqual(order.slice(2, 4));
    expect(names((await list('?limit=2&offset=4')).sessions)).toEqual(order.slice(4));
    const beyond = await list('?offset=10');
    expect(beyond.sessions).toEqual([]);
    expect(beyond.total).toBe(5);
  });

  it('pages 50 sessions when no limit is given', async () => {
    for (let i = 0; i < 46; i += 1) {
      t.clock.advance(1);
      await add(`c${i}`, agentA, U1, 60);
    }
    const page = await list();
    expect(page.sessions).toHaveLength(50);
    expect(page.total).toBe(51);
    expect(page.nextCursor).toEqual(expect.any(String));
    // The one left over is the oldest of the 51.
    const rest = await list(`?cursor=${page.nextCursor}`);
    expect(rest.sessions).toHaveLength(1);
    expect(rest.sessions[0].sessionId).toBe(ids[newestFirst().at(-1)!]);
  });

  it('reads an upper-cased cursor (a proxy\'s, a client\'s) as its session, not before the ties of its millisecond (R45: fixed ids, where random ones showed it in one run of a few)', async () => {
    const agentId = await registerAgent(t);
    const [later, earlier] = ['bbbbbbbb-0000-4000-8000-000000000000', 'aaaaaaaa-0000-4000-8000-000000000000'];
    for (const id of [earlier, later]) await t.store.insertSession(sessionRecord(agentId, { id }, t.clock.now()));
    const first = await list(`?agentId=${agentId}&limit=1`);
    expect(first.sessions.map((s: { sessionId: string }) => s.sessionId)).toEqual([later]);
    const rest = await list(`?agentId=${agentId}&limit=1&cursor=${first.nextCursor.toUpperCase()}`);
    expect(rest.sessions.map((s: { sessionId: string }) => s.sessionId)).toEqual([earlier]);
  });

  it('pages by cursor: each session once, in order, ties in one millisecond included; the last page has no nextCursor', async () => {
    const seen: string[] = [];
    let page = await list('?limit=1');
    for (;;) {
      seen.push(...names(page.sessions).map(String));
      expect(page.total).toBe(5);
      if (page.nextCursor === undefined) break;
      page = await list(`?limit=1&cursor=${page.nextCursor}`);
    }
    expect(seen).toEqual(newestFirst());
    // A page that ends exactly at the last match says there is no more.
    expect((await list('?limit=5')).nextCursor).toBeUndefined();
    expect((await list('?limit=4')).nextCursor).toBeDefined();
  });

  it('pages by cursor without a shift when sessions are created or purged between pages, where an offset repeats or skips', async () => {
    const order = newestFirst();
    const first = await list('?limit=2');
    t.clock.advance(1);
    await add('c1', agentB, U2, 60); // newer than every listed session: at the head of the order
    const byCursor = await list(`?limit=2&cursor=${first.nextCursor}`);
    expect(names(byCursor.sessions)).toEqual(order.slice(2, 4));
    expect(names((await list('?limit=2&offset=2')).sessions)).toEqual([order[1], order[2]]); // repeats one
    t.clock.set(T0 + 10 * MINUTE + 1); // a1 and b1 expire: they leave the active list
    const rest = await list(`?limit=2&cursor=${byCursor.nextCursor}`);
    expect(names(rest.sessions)).toEqual(order.slice(4).filter((name) => name !== 'a1'));
    expect(rest.nextCursor).toBeUndefined();
  });

  it('counts an offset given with a cursor from the cursor, and keeps to the filters', async () => {
    const order = newestFirst();
    const first = await list('?limit=1');
    expect(names((await list(`?limit=2&offset=1&cursor=${first.nextCursor}`)).sessions)).toEqual(order.slice(2, 4));
    const ofAgentA = order.filter((name) => name.startsWith('a'));
    const page = await list(`?limit=1&agentId=${agentA}`);
    expect(names((await list(`?agentId=${agentA}&cursor=${page.nextCursor}`)).sessions)).toEqual(ofAgentA.slice(1));
  });

  it('leaves out total and stats with count=false, and only them', async () => {
    const page = await list('?limit=2&count=false');
    expect(Object.keys(page).sort()).toEqual(['nextCursor', 'sessions']);
    expect(names(page.sessions)).toEqual(newestFirst().slice(0, 2));
    expect(Object.keys(await list('?count=false')).sort()).toEqual(['sessions']);
    expect(Object.keys(await list('?count=true&limit=2')).sort()).toEqual(['nextCursor', 'sessions', 'stats', 'total']);
  });

  it.each([
    ['?cursor=abc', 'querystring/cursor must match pattern'],
    ['?cursor=1795514400000-9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d', 'querystring/cursor must match pattern'],
    ['?cursor=1795514400000_9b1deb4d', 'querystring/cursor must match pattern'],
    ['?cursor=1795514400000_------------------------------------', 'querystring/cursor must match pattern'],
    ['?count=maybe', 'querystring/count must be boolean'],
    ['?limit=0', 'querystring/limit must be >= 1'],
    ['?limit=101', 'querystring/limit must be <= 100'],
    ['?limit=5.5', 'querystring/limit must be integer'],
    ['?limit=abc', 'querystring/limit must be integer'],
    ['?limit=Infinity', 'querystring/limit must be integer'],
    ['?offset=1e309', 'querystring/offset must be integer'],
    ['?limit=0x10', 'querystring/limit must be integer'],
    ['?limit=1e1', 'querystring/limit must be integer'],
    ['?offset=-1', 'querystring/offset must be >= 0'],
    // Plain digits too many for a double to read exactly: beyond the bound, which is the reason.
    ['?offset=1000000000000000', 'querystring/offset must be <= 1000000'],
    ['?offset=9007199254740993', 'querystring/offset must be <= 1000000'],
    ['?limit=00000000000000000050', 'querystring/limit must be integer'],
    ['?offset=0001000000000000000', 'querystring/offset must be <= 1000000'],
    ['?offset=-1000000000000000', 'querystring/offset must be >= 0'],
    ['?status=gone', 'querystring/status must be equal to one of the allowed values'],
    ['?agentId=nope', 'querystring/agentId must match format "uuid"'],
    ['?userId=123', 'querystring/userId must match format "uuid"'],
  ])('refuses %s with 400 naming the parameter', async (query, details) => {
    const response = await t.request({ method: 'GET', url: `${LIST}${query}` });
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe('INVALID_REQUEST');
    expect(response.body.error.details).toContain(details);
  });
});

describe('listSessions query plans', () => {
  const db = new Database(':memory:');
  migrate(db);
  const plan = (sql: string) =>
    db
      .prepare(`EXPLAIN QUERY PLAN ${sql}`)
      .all({ agentId: U1, userId: U2, now: T0, purgeCutoff: T0 - 1, limit: 50, offset: 0, afterCreatedAt: T0, afterId: U1 })
      .map((row) => (row as { detail: string }).detail);
  const filterSets = [{}, { agentId: U1 }, { userId: U2 }, { agentId: U1, userId: U2 }];

  const after = { createdAt: T0, id: U1 };
  for (const filters of [...filterSets, ...filterSets.map((set) => ({ ...set, after }))]) {
    for (const status of ['active', 'expired', 'all'] as const) {
      it(`serves ${JSON.stringify(filters)} ${status} from indexes, pages without sorting`, () => {
        const sql = listSessionsSql({ ...filters, status });
        const pagePlan = plan(sql.page);
        expect(pagePlan.join(' | '), sql.page).toMatch(/USING (COVERING )?INDEX sessions_by_/);
        expect(pagePlan.join(' | '), sql.page).not.toMatch(/TEMP B-TREE/);
        for (const line of [...pagePlan, ...plan(sql.count)]) expect(line, sql.count).not.toMatch(/^SCAN sessions$/);
      });
    }
  }
});
