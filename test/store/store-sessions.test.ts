// The Store contract, part 1: agents, sessions, messages, counts, sweeping, idempotency
// and API keys. Every behaviour is written once and run on SQLite and on PostgreSQL.
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { IdempotencyKeyTaken, type SessionRecord, type Store } from '../../src/storage/store.js';
import { updateConfig } from '../../src/domain/timeout-policy.js';
import { announce } from '../../src/events/due-events.js';
import { sessionEvent } from '../../src/events/event-records.js';
import { messageView } from '../../src/views.js';
import { MINUTE, T0 } from '../helpers/fake-clock.js';
import { until } from '../helpers/until.js';
import { storedMessages } from '../helpers/stored-messages.js';
import { backends } from './backends.js';
import { agentRecord, idempotencyRecord, messageRecord, sessionRecord } from './records.js';

const bumped = (current: SessionRecord | undefined): SessionRecord => {
  if (!current) throw new Error('no session');
  return { ...current, renewalCount: current.renewalCount + 1 };
};

describe.each(backends.map((make) => [make().name, make] as const))('store on %s', (_name, make) => {
  const backend = make();
  let store: Store;
  beforeEach(async () => {
    store = await backend.open();
  });
  afterAll(() => backend.closeAll());

  async function withAgent() {
    const agent = agentRecord();
    expect(await store.insertAgent(agent)).toBe(true);
    return agent;
  }

  describe('agents', () => {
    it('stores an agent once, reads it back, lists in creation order', async () => {
      const first = agentRecord({ createdAt: T0 + 1 });
      const second = agentRecord({ createdAt: T0, bio: undefined });
      delete second.bio;
      expect(await store.insertAgent(first)).toBe(true);
      expect(await store.insertAgent(second)).toBe(true);
      expect(await store.insertAgent({ ...first, name: 'Other' })).toBe(false);
      expect(await store.getAgent(first.id)).toEqual(first);
      expect(await store.getAgent(second.id)).toEqual(second);
      expect(await store.getAgent('00000000-0000-4000-8000-000000000000')).toBeUndefined();
      expect((await store.listAgents()).map((a) => a.id)).toEqual([second.id, first.id]);
    });

    it('refuses to delete an agent with active sessions unless forced; expired ones do not count', async () => {
      const agent = await withAgent();
      const active = sessionRecord(agent.id);
      const expired = sessionRecord(agent.id, { expiresAt: T0 + MINUTE, warnsAt: T0 });
      await store.insertSession(active);
      await store.insertSession(expired);
      const now = T0 + 2 * MINUTE;
      expect(await store.deleteAgent(agent.id, { force: false, now, purgeCutoff: 0 })).toEqual({ kind: 'has_active_sessions', activeSessions: 1 });
      expect(await store.getSession(active.id)).toBeDefined();
      const outcome = await store.deleteAgent(agent.id, { force: true, now, purgeCutoff: 0 });
      expect(outcome).toEqual({ kind: 'deleted', sessions: expect.arrayContaining([active, expired]), agent });
      expect(outcome.kind === 'deleted' && outcome.sessions).toHaveLength(2);
      expect(await store.getAgent(agent.id)).toBeUndefined();
      expect(await store.getSession(expired.id)).toBeUndefined();
      expect(await store.deleteAgent(agent.id, { force: true, now, purgeCutoff: 0 })).toEqual({ kind: 'not_found' });
    });

    it('does not count as active a session whose expiry was announced, though its deadline is ahead (a clock set back since)', async () => {
      const agent = await withAgent();
      const announced = sessionRecord(agent.id, { status: 'expired', announced: 'expiry' });
      await store.insertSession(announced);
      const now = announced.expiresAt - 10 * MINUTE;
      expect(await store.deleteAgent(agent.id, { force: false, now, purgeCutoff: 0 })).toEqual({ kind: 'deleted', sessions: [announced], agent });
    });

    it('gives back, as stored, only the sessions deleted not yet past their retention (those past it were gone for every reader)', async () => {
      const agent = await withAgent();
      const live = sessionRecord(agent.id);
      const retained = sessionRecord(agent.id, { expiresAt: T0 + 2 * MINUTE, warnsAt: T0 + MINUTE });
      const pastRetention = sessionRecord(agent.id, { expiresAt: T0 + MINUTE, warnsAt: T0 });
      for (const session of [live, retained, pastRetention]) await store.insertSession(session);
      // Sessions expiring at or before the cutoff are past their retention (not yet purged).
      const outcome = await store.deleteAgent(agent.id, { force: true, now: T0 + 3 * MINUTE, purgeCutoff: T0 + MINUTE });
      expect(outcome).toEqual({ kind: 'deleted', sessions: expect.arrayContaining([live, retained]), agent });
      expect(outcome.kind === 'deleted' && outcome.sessions).toHaveLength(2);
      for (const session of [live, retained, pastRetention]) expect(await store.getSession(session.id)).toBeUndefined();
    });

    it('deletes an agent with thousands of sessions, ending each with an event in the same write', { timeout: 60_000 }, async () => {
      const agent = await withAgent();
      const sessions = Array.from({ length: 4100 }, () => sessionRecord(agent.id));
      for (let from = 0; from < sessions.length; from += 500) await Promise.all(sessions.slice(from, from + 500).map((session) => store.insertSession(session)));
      const before = await store.lastEventId();
      const outcome = await store.deleteAgent(
        agent.id,
        { force: true, now: T0, purgeCutoff: 0 },
        { events: (deleted) => (deleted.kind === 'deleted' ? deleted.sessions.map((session) => sessionEvent('session.ended', session, T0)) : []) },
      );
      expect(outcome.kind === 'deleted' && outcome.sessions.length).toBe(4100);
      const ended = await store.listEvents({ after: before, limit: 5000 });
      expect(ended).toHaveLength(4100);
      expect(new Set(ended.map((event) => event.sessionId))).toEqual(new Set(sessions.map((session) => session.id)));
    });

    it('a forced delete and session creations at once: every session left has its agent', async () => {
      for (let round = 0; round < 5; round++) {
        const agent = await withAgent();
        const sessions = Array.from({ length: 6 }, () => sessionRecord(agent.id));
        const [deleted, ...inserted] = await Promise.all([
          store.deleteAgent(agent.id, { force: true, now: T0, purgeCutoff: 0 }),
          ...sessions.map((session) => store.insertSession(session)),
        ]);
        expect(deleted.kind).toBe('deleted');
        const left = await store.listSessions({ agentId: agent.id, status: 'all', limit: 100, offset: 0, now: T0, purgeCutoff: T0 - MINUTE });
        // Inserted before the delete: deleted with the agent; after: refused (no agent).
        expect(left.total).toBe(0);
        const insertedBefore = inserted.filter(Boolean).length;
        expect(deleted.kind === 'deleted' && deleted.sessions.length).toBe(insertedBefore);
      }
    });
  });

  describe('sessions', () => {
    it('stores a session for an existing agent only, and reads back every field', async () => {
      const agent = await withAgent();
      const session = sessionRecord(agent.id, { metadata: { platform: 'web', nested: { a: [1, 'two'] } } as SessionRecord['metadata'] });
      expect(await store.insertSession(session)).toBe(true);
      expect(await store.getSession(session.id)).toEqual(session);
      expect(await store.insertSession(sessionRecord('00000000-0000-4000-8000-000000000000'))).toBe(false);
      expect(await store.getSession('00000000-0000-4000-8000-000000000001')).toBeUndefined();
    });

    it('modifySession writes what change returns; a change that throws writes nothing', async () => {
      const agent = await withAgent();
      const session = sessionRecord(agent.id);
      await store.insertSession(session);
      const next = await store.modifySession(session.id, (current) => ({ ...current!, lastActivity: T0 + 5, metadata: { platform: 'x' } }));
      expect(await store.getSession(session.id)).toEqual(next);
      await expect(
        store.modifySession(session.id, () => {
          throw new Error('refused');
        }),
      ).rejects.toThrow('refused');
      expect(await store.getSession(session.id)).toEqual(next);
      await expect(store.modifySession('missing', bumped)).rejects.toThrow('no session');
    });

    it('concurrent modifications never lose an update', async () => {
      const agent = await withAgent();
      const session = sessionRecord(agent.id);
      await store.insertSession(session);
      await Promise.all(Array.from({ length: 30 }, () => store.modifySession(session.id, bumped)));
      expect((await store.getSession(session.id))?.renewalCount).toBe(30);
    });

    it('deleteSession deletes after the check accepts, with the messages', async () => {
      const agent = await withAgent();
      const session = sessionRecord(agent.id);
      await store.insertSession(session);
      await store.appendMessage(session.id, (current) => ({ session: current!, message: messageRecord(session, 1) }));
      await expect(
        store.deleteSession(session.id, () => {
          throw new Error('not yours');
        }),
      ).rejects.toThrow('not yours');
      expect(await store.getSession(session.id)).toBeDefined();
      const seen: Array<SessionRecord | undefined> = [];
      await store.deleteSession(session.id, (current) => (seen.push(current), current!));
      expect(seen).toEqual([session]);
      expect(await store.getSession(session.id)).toBeUndefined();
      expect((await storedMessages(store, { sessionId: session.id, limit: 10 })).messages).toEqual([]);
    });
  });

  describe('messages', () => {
    it('appends with the last position given to build; concurrent appends get unique, ordered positions', async () => {
      const agent = await withAgent();
      const session = sessionRecord(agent.id);
      await store.insertSession(session);
      const lastSeen: Array<number | undefined> = [];
      const append = () =>
        store.appendMessage(session.id, (current, last) => {
          lastSeen.push(last);
          const position = (last ?? 0) + 1;
          return { session: { ...current!, lastActivity: T0 + position }, message: messageRecord(session, position) };
        });
      await Promise.all(Array.from({ length: 25 }, append));
      expect(lastSeen[0]).toBeUndefined();
      const page = await storedMessages(store, { sessionId: session.id, limit: 100 });
      expect(page.positions).toEqual(Array.from({ length: 25 }, (_, i) => 25 - i));
      expect((await store.getSession(session.id))?.lastActivity).toBe(T0 + 25);
      expect(page.messages[0]).toEqual(messageView(messageRecord(session, 25, { id: page.messages[0]!.id })));
    });

    it('a build that throws writes neither the message nor the session', async () => {
      const agent = await withAgent();
      const session = sessionRecord(agent.id);
      await store.insertSession(session);
      await expect(
        store.appendMessage(session.id, (current) => {
          if (current) throw new Error('too long');
          return { session: session, message: messageRecord(session, 1) };
        }),
      ).rejects.toThrow('too long');
      expect((await storedMessages(store, { sessionId: session.id, limit: 10 })).messages).toEqual([]);
    });

    it('pages newest first, back with before and forward with after, hasMore exact', async () => {
      const agent = await withAgent();
      const session = sessionRecord(agent.id);
      await store.insertSession(session);
      for (let position = 1; position <= 7; position++) {
        await store.appendMessage(session.id, (current) => ({ session: current!, message: messageRecord(session, position) }));
      }
      const positions = async (query: { limit: number; before?: number; after?: number }) => {
        const page = await storedMessages(store, { sessionId: session.id, ...query });
        return [page.positions, page.hasMore];
      };
      expect(await positions({ limit: 3 })).toEqual([[7, 6, 5], true]);
      expect(await positions({ limit: 3, before: 5 })).toEqual([[4, 3, 2], true]);
      expect(await positions({ limit: 3, before: 2 })).toEqual([[1], false]);
      expect(await positions({ limit: 3, after: 1 })).toEqual([[4, 3, 2], true]);
      expect(await positions({ limit: 3, after: 4 })).toEqual([[7, 6, 5], false]);
      expect(await positions({ limit: 10, before: 6, after: 2 })).toEqual([[5, 4, 3], false]);
      // Both bounds and more between them than a page: the page next to `before`.
      expect(await positions({ limit: 2, before: 6, after: 1 })).toEqual([[5, 4], true]);
    });

    it('pages the stored views, each the message as the API shows it (U+0000, emoji, key order)', async () => {
      const agent = await withAgent();
      const session = sessionRecord(agent.id);
      await store.insertSession(session);
      const written = [1, 2, 3, 4, 5].map((position) =>
        messageRecord(session, position, {
          content: position === 2 ? 'a\u0000b 🙂' : `message ${position}`,
          isAgent: position % 2 === 0,
          attachments: position === 3 ? [{ type: 'image', url: 'https://a.example/x.png' }] : [],
          metadata: { z: position, a: '\u0000' },
        }),
      );
      for (const message of written) await store.appendMessage(session.id, (current) => ({ session: current!, message }));
      const pages: Array<[query: { limit: number; before?: number; after?: number }, positions: number[], hasMore: boolean]> = [
        [{ limit: 2 }, [5, 4], true],
        [{ limit: 2, before: 3 }, [2, 1], false],
        [{ limit: 2, after: 1 }, [3, 2], true],
        [{ limit: 10, before: 5, after: 1 }, [4, 3, 2], false],
      ];
      for (const [query, positions, hasMore] of pages) {
        const views = await store.listMessageViews({ sessionId: session.id, ...query });
        expect(views.hasMore, JSON.stringify(query)).toBe(hasMore);
        expect(views.messages.map((view) => view.position)).toEqual(positions);
        // Sent as is: the JSON is the view, with its keys in the view's order.
        expect(views.messages.map((view) => JSON.parse(view.json))).toEqual(positions.map((position) => messageView(written[position - 1]!)));
        for (const view of views.messages) expect(Object.keys(JSON.parse(view.json))).toEqual(Object.keys(messageView(written[0]!)));
      }
      const [second] = (await store.listMessageViews({ sessionId: session.id, limit: 1, before: 3 })).messages;
      expect(JSON.parse(second!.json).content).toBe('a\u0000b 🙂');
      expect(Object.keys(JSON.parse(second!.json).metadata)).toEqual(['z', 'a']);
    });

    it('ends a page with the message whose view reaches maxChars (one at least); hasMore then, in either direction', async () => {
      const agent = await withAgent();
      const session = sessionRecord(agent.id);
      await store.insertSession(session);
      for (const position of [1, 2, 3, 4, 5, 6]) await store.appendMessage(session.id, (current) => ({ session: current!, message: messageRecord(session, position, { content: 'x'.repeat(1000) }) }));
      const width = (await store.listMessageViews({ sessionId: session.id, limit: 1 })).messages[0]!.json.length;
      const page = async (query: { limit: number; before?: number; after?: number; maxChars?: number }) => {
        const views = await store.listMessageViews({ sessionId: session.id, ...query });
        return [views.messages.map((view) => view.position), views.hasMore];
      };
      expect(await page({ limit: 10, maxChars: 2 * width })).toEqual([[6, 5], true]);
      expect(await page({ limit: 10, maxChars: 2 * width + 1 })).toEqual([[6, 5, 4], true]);
      expect(await page({ limit: 10, maxChars: 1 })).toEqual([[6], true]);
      expect(await page({ limit: 10, before: 3, maxChars: 1 })).toEqual([[2], true]);
      expect(await page({ limit: 10, before: 2, maxChars: 1 })).toEqual([[1], false]);
      expect(await page({ limit: 10, after: 2, maxChars: 2 * width })).toEqual([[4, 3], true]);
      expect(await page({ limit: 10, after: 4, maxChars: 2 * width })).toEqual([[6, 5], false]);
      expect(await page({ limit: 2, maxChars: 10 * width })).toEqual([[6, 5], true]);
      expect(await page({ limit: 10, maxChars: 10 * width })).toEqual([[6, 5, 4, 3, 2, 1], false]);
    });
  });

  it('keeps text and JSON exactly as written (U+0000, key order); an id holding U+0000 finds nothing', async () => {
    const agent = agentRecord({ name: 'E\u0000liza', bio: 'b\u0000io', settings: { z: 1, a: { '\u0000': 'x' } } as never });
    expect(await store.insertAgent(agent)).toBe(true);
    expect(await store.getAgent(agent.id)).toEqual(agent);
    const session = sessionRecord(agent.id, { metadata: { zeta: 'last\u0000', alpha: 1 } as never });
    await store.insertSession(session);
    const stored = await store.getSession(session.id);
    expect(Object.keys(stored!.metadata)).toEqual(['zeta', 'alpha']);
    expect(stored).toEqual(session);
    const message = messageRecord(session, 1, { content: 'a\u0000b', metadata: { y: 1, x: '\u0000' } });
    await store.appendMessage(session.id, (current) => ({ session: current!, message }));
    expect((await storedMessages(store, { sessionId: session.id, limit: 1 })).messages).toEqual([messageView(message)]);
    expect(await store.getSession('../..\u0000')).toBeUndefined();
    expect(await store.getAgent('\u0000')).toBeUndefined();
    await expect(store.modifySession('x\u0000', bumped)).rejects.toThrow('no session');
  });

  describe('listing and counting', () => {
    it('lists a session as expired, not active, from the instant of its deadline', async () => {
      const agent = await withAgent();
      const session = sessionRecord(agent.id);
      await store.insertSession(session);
      const at = { now: session.expiresAt, purgeCutoff: session.expiresAt - 60 * MINUTE, limit: 10, offset: 0 };
      const active = await store.listSessions({ ...at, status: 'active' });
      const expired = await store.listSessions({ ...at, status: 'expired' });
      expect([active.sessions.length, active.total]).toEqual([0, 0]);
      expect([expired.sessions.map((s) => s.id), expired.total]).toEqual([[session.id], 1]);
    });

    it('lists and counts an expired session until the purge cutoff reaches its deadline, on every combination of filters', async () => {
      const agent = await withAgent();
      const session = sessionRecord(agent.id);
      await store.insertSession(session);
      const deadline = session.expiresAt;
      const filters = [{}, { agentId: agent.id }, { userId: session.userId }, { agentIds: [agent.id] }, { agentId: agent.id, userId: session.userId }, { agentIds: [agent.id], userId: session.userId }];
      for (const filter of filters) {
        const listed = async (status: 'active' | 'expired' | 'all', now: number, purgeCutoff: number) => {
          const page = await store.listSessions({ now, purgeCutoff, limit: 10, offset: 0, status, ...filter });
          return [status, page.sessions.map((s) => s.id), page.total];
        };
        const why = JSON.stringify(filter);
        // From the instant of its deadline: expired, not active.
        expect(await listed('active', deadline - 1, deadline - 60 * MINUTE), why).toEqual(['active', [session.id], 1]);
        expect(await listed('expired', deadline - 1, deadline - 60 * MINUTE), why).toEqual(['expired', [], 0]);
        expect(await listed('active', deadline, deadline - 60 * MINUTE), why).toEqual(['active', [], 0]);
        expect(await listed('expired', deadline, deadline - 60 * MINUTE), why).toEqual(['expired', [session.id], 1]);
        // Kept while the purge cutoff is before its deadline; from the cutoff at its deadline, nowhere.
        for (const status of ['expired', 'all'] as const) {
          expect(await listed(status, deadline + 60 * MINUTE, deadline - 1), why).toEqual([status, [session.id], 1]);
          expect(await listed(status, deadline + 60 * MINUTE, deadline), why).toEqual([status, [], 0]);
        }
      }
    });

    it('filters by agent, agents, user and status; newest first (ties by id); exact totals', async () => {
      const [a, b] = [await withAgent(), await withAgent()];
      const user = '7d3e3c4a-0000-4000-8000-000000000001';
      // Created a minute apart; the first three expire at T0 + 30 min + i min.
      const sessions = [a, a, b, a, b].map((agent, i) => sessionRecord(agent.id, i % 2 === 0 ? { userId: user } : {}, T0 + i * MINUTE));
      // Two with the same creation time: ordered by id, descending.
      const twin = sessionRecord(b.id, { userId: user }, T0 + 4 * MINUTE);
      for (const session of [...sessions, twin]) await store.insertSession(session);
      const at = (now: number) => ({ now, purgeCutoff: now - 60 * MINUTE, limit: 10, offset: 0 });
      const ids = (list: { sessions: SessionRecord[] }) => list.sessions.map((s) => s.id);

      const all = await store.listSessions({ ...at(T0 + 10 * MINUTE), status: 'all' });
      const lastTwo = [sessions[4]!, twin].sort((x, y) => (x.id < y.id ? 1 : -1)).map((s) => s.id);
      expect(ids(all)).toEqual([...lastTwo, sessions[3]!.id, sessions[2]!.id, sessions[1]!.id, sessions[0]!.id]);
      expect(all.total).toBe(6);

      const ofA = await store.listSessions({ ...at(T0 + 10 * MINUTE), status: 'all', agentId: a.id });
      expect(ids(ofA)).toEqual([sessions[3]!.id, sessions[1]!.id, sessions[0]!.id]);
      const ofUserAndA = await store.listSessions({ ...at(T0 + 10 * MINUTE), status: 'all', agentId: a.id, userId: user });
      expect([ids(ofUserAndA), ofUserAndA.total]).toEqual([[sessions[0]!.id], 1]);
      const ofAgents = await store.listSessions({ ...at(T0 + 10 * MINUTE), status: 'all', agentIds: [b.id] });
      expect(ofAgents.total).toBe(3);
      expect((await store.listSessions({ ...at(T0), status: 'all', agentIds: [] })).total).toBe(0);
      // Agents and agent at once (a key bound to agents naming one): only what both allow, counted as listed.
      for (const [agentId, agentIds, expected] of [
        [a.id, [], []],
        [a.id, [b.id], []],
        [a.id, [a.id, b.id], ids(ofA)],
      ] as const) {
        for (const status of ['all', 'active', 'expired'] as const) {
          const both = await store.listSessions({ ...at(T0 + 32.5 * MINUTE), status, agentId, agentIds });
          const alone = await store.listSessions({ ...at(T0 + 32.5 * MINUTE), status, agentId });
          expect([ids(both), both.total], `${agentIds.length} agents, ${status}`).toEqual(expected.length === 0 ? [[], 0] : [ids(alone), alone.total]);
        }
      }
      const ofBoth = await store.listSessions({ ...at(T0 + 10 * MINUTE), status: 'all', agentIds: [a.id, b.id, a.id] });
      expect([ofBoth.total, ofBoth.sessions.length]).toEqual([6, 6]);

      // At T0 + 32 min the first three have expired (30-minute timeout, created 0, 1, 2 min).
      const later = at(T0 + 32.5 * MINUTE);
      const active = await store.listSessions({ ...later, status: 'active' });
      const expired = await store.listSessions({ ...later, status: 'expired' });
      expect([active.total, expired.total]).toEqual([3, 3]);
      expect(ids(expired)).toEqual([sessions[2]!.id, sessions[1]!.id, sessions[0]!.id]);
      const paged = await store.listSessions({ ...later, status: 'expired', limit: 1, offset: 1 });
      expect([ids(paged), paged.total]).toEqual([[sessions[1]!.id], 3]);
      // Past retention (purge cutoff) a session counts nowhere.
      const muchLater = await store.listSessions({ ...at(T0 + 93 * MINUTE), status: 'all' });
      expect(muchLater.total).toBe(2);
    });

    it('pages after a keyset position (ties by id), says whether more follow, and counts only when asked', async () => {
      const agent = await withAgent();
      // Two pairs created in the same millisecond, one single.
      const times = [T0, T0, T0 + 1, T0 + 2, T0 + 2];
      const sessions = times.map((createdAt) => sessionRecord(agent.id, {}, createdAt));
      for (const session of sessions) await store.insertSession(session);
      const order = [...sessions].sort((x, y) => y.createdAt - x.createdAt || (x.id < y.id ? 1 : -1));
      const query = { now: T0 + 3, purgeCutoff: T0 - 1, status: 'all' as const, limit: 2, offset: 0 };

      const seen: SessionRecord[] = [];
      let page = await store.listSessions(query);
      const pages = [page];
      while (page.hasMore) {
        seen.push(...page.sessions);
        const last = page.sessions.at(-1)!;
        page = await store.listSessions({ ...query, after: { createdAt: last.createdAt, id: last.id } });
        pages.push(page);
      }
      seen.push(...page.sessions);
      expect(seen.map((s) => s.id)).toEqual(order.map((s) => s.id));
      expect(pages.map((p) => [p.sessions.length, p.hasMore, p.total])).toEqual([[2, true, 5], [2, true, 5], [1, false, 5]]);

      const fromSecond = await store.listSessions({ ...query, limit: 5, offset: 1, after: order[0]! });
      expect([fromSecond.sessions.map((s) => s.id), fromSecond.hasMore]).toEqual([order.slice(2).map((s) => s.id), false]);
      const uncounted = await store.listSessions({ ...query, limit: 4, count: false });
      expect([uncounted.sessions.length, uncounted.hasMore, uncounted.total]).toEqual([4, true, undefined]);
      const exactlyFull = await store.listSessions({ ...query, limit: 5 });
      expect([exactlyFull.sessions.length, exactlyFull.hasMore]).toEqual([5, false]);
    });

    it('counts total, active and expiring soon exactly', async () => {
      const agent = await withAgent();
      for (let i = 0; i < 4; i++) await store.insertSession(sessionRecord(agent.id, {}, T0 + i * MINUTE));
      // Expiries at 30, 31, 32, 33 min; warnings 5 minutes earlier.
      expect(await store.countSessions({ now: T0, purgeCutoff: T0 - MINUTE })).toEqual({ total: 4, active: 4, expiringSoon: 0 });
      expect(await store.countSessions({ now: T0 + 26 * MINUTE, purgeCutoff: T0 })).toEqual({ total: 4, active: 4, expiringSoon: 2 });
      expect(await store.countSessions({ now: T0 + 31 * MINUTE, purgeCutoff: T0 })).toEqual({ total: 4, active: 2, expiringSoon: 2 });
      expect(await store.countSessions({ now: T0 + 40 * MINUTE, purgeCutoff: T0 + 31 * MINUTE })).toEqual({ total: 2, active: 0, expiringSoon: 0 });
    });

    it('keeps the counts exact when the session a pass of the counts stopped on is ended', async () => {
      const agent = await withAgent();
      // Three sessions expiring in the same millisecond (+30); a pass at +31 that stops after one of them.
      const sessions = [sessionRecord(agent.id), sessionRecord(agent.id), sessionRecord(agent.id)];
      for (const session of sessions) await store.insertSession(session);
      if (store.moveCountMarks) expect(await store.moveCountMarks(T0 + 31 * MINUTE, T0, 1)).toEqual({ passed: 1, more: true });
      // The first stored is the one it passed: the pass goes in (expiry, rowid) order.
      await store.deleteSession(sessions[0]!.id, (current) => current!);
      for (const now of [T0 + 29 * MINUTE, T0 + 31 * MINUTE]) {
        const active = now < T0 + 30 * MINUTE ? 2 : 0;
        expect(await store.countSessions({ now, purgeCutoff: T0 }), `at ${now - T0} ms`).toEqual({ total: 2, active, expiringSoon: active });
      }
    });

    it('counts a warning moved by a new threshold alone, across the instant the counts were kept up to', async () => {
      const agent = await withAgent();
      const session = sessionRecord(agent.id); // expires at +30, warns at +25
      await store.insertSession(session);
      // A sweeper's pass at +27 (where a store keeps marks): between the old warning and the new one (+29).
      if (store.moveCountMarks) while ((await store.moveCountMarks(T0 + 27 * MINUTE, T0, 100)).more);
      expect(await store.countSessions({ now: T0 + 28 * MINUTE, purgeCutoff: T0 })).toEqual({ total: 1, active: 1, expiringSoon: 1 });
      await store.modifySession(session.id, (current) => ({ ...current!, ...updateConfig(current!, { warningThresholdMinutes: 1 }) }));
      expect(await store.countSessions({ now: T0 + 28 * MINUTE, purgeCutoff: T0 })).toEqual({ total: 1, active: 1, expiringSoon: 0 });
      expect(await store.countSessions({ now: T0 + 29 * MINUTE, purgeCutoff: T0 })).toEqual({ total: 1, active: 1, expiringSoon: 1 });
      await store.modifySession(session.id, (current) => ({ ...current!, ...updateConfig(current!, { warningThresholdMinutes: 5 }) }));
      expect(await store.countSessions({ now: T0 + 28 * MINUTE, purgeCutoff: T0 })).toEqual({ total: 1, active: 1, expiringSoon: 1 });
    });
  });

  describe('sweeping', () => {
    /** What a sweeper's pass does before it purges. */
    const announceAllDue = async (now: number) => {
      while ((await store.announceDue(now, 100, announce)) > 0);
    };

    it('keeps a session past the cutoff whose expiry is not announced yet (another instance held it while the sweeper announced)', async () => {
      const agent = await withAgent();
      const unannounced = sessionRecord(agent.id);
      const announced = sessionRecord(agent.id);
      await store.insertSession(unannounced);
      await store.insertSession(announced);
      await store.appendMessage(unannounced.id, (current) => ({ session: current!, message: messageRecord(unannounced, 1) }));
      const cutoff = T0 + 31 * MINUTE;
      // Only the second one's warning and expiry were announced.
      await store.modifySession(announced.id, (current) => announce(announce(current!).session).session);
      expect(await store.purgeExpired(cutoff, 10)).toEqual({ purged: 1, more: false });
      expect(await store.getSession(announced.id)).toBeUndefined();
      expect(await store.getSession(unannounced.id)).toMatchObject({ announced: 'nothing' });
      expect((await storedMessages(store, { sessionId: unannounced.id, limit: 10 })).messages).toHaveLength(1);
      // The next pass announces it, then purges it.
      await announceAllDue(cutoff);
      expect(await store.purgeExpired(cutoff, 10)).toEqual({ purged: 1, more: false });
      expect(await store.getSession(unannounced.id)).toBeUndefined();
      expect((await store.listEvents({ sessionId: unannounced.id, limit: 10 })).map((e) => e.type)).toEqual(['session.warning', 'session.expired']);
    });

    it('purges the sessions past the cutoff with their messages, in batches', async () => {
      const agent = await withAgent();
      const sessions = Array.from({ length: 5 }, (_, i) => sessionRecord(agent.id, {}, T0 + i * MINUTE));
      for (const session of sessions) await store.insertSession(session);
      for (let p = 1; p <= 25; p++) await store.appendMessage(sessions[0]!.id, (current) => ({ session: current!, message: messageRecord(sessions[0]!, p) }));
      // Cutoff after the first two expiries; a batch of 2 deletes at most 20 messages.
      const cutoff = T0 + 31 * MINUTE;
      await announceAllDue(cutoff);
      expect(await store.purgeExpired(cutoff, 2)).toEqual({ purged: 0, more: true });
      expect((await storedMessages(store, { sessionId: sessions[0]!.id, limit: 100 })).messages).toHaveLength(5);
      expect(await store.purgeExpired(cutoff, 2)).toEqual({ purged: 2, more: true });
      expect(await store.purgeExpired(cutoff, 2)).toEqual({ purged: 0, more: false });
      expect(await store.getSession(sessions[0]!.id)).toBeUndefined();
      expect(await store.getSession(sessions[2]!.id)).toBeDefined();
      expect((await storedMessages(store, { sessionId: sessions[0]!.id, limit: 100 })).messages).toEqual([]);
    });

    // On PostgreSQL the two run on two connections of the pool, as two instances would.
    it('two sweepers at once purge each session once, with its messages', async () => {
      const agent = await withAgent();
      const sessions = Array.from({ length: 20 }, () => sessionRecord(agent.id));
      for (const session of sessions) await store.insertSession(session);
      for (const session of sessions.slice(0, 4)) {
        for (let p = 0; p < 3; p++) await store.appendMessage(session.id, (current) => ({ session: current!, message: messageRecord(session, p) }));
      }
      const kept = sessionRecord(agent.id, {}, T0 + 60 * MINUTE); // expires after the cutoff
      await store.insertSession(kept);
      const cutoff = T0 + 31 * MINUTE;
      await announceAllDue(cutoff);
      const sweep = async () => {
        let purged = 0;
        for (let more = true; more; ) {
          const batch = await store.purgeExpired(cutoff, 3);
          purged += batch.purged;
          more = batch.more;
        }
        return purged;
      };
      const [first, second] = await Promise.all([sweep(), sweep()]);
      expect(first! + second!).toBe(20);
      for (const session of sessions) expect(await store.getSession(session.id)).toBeUndefined();
      expect((await storedMessages(store, { sessionId: sessions[0]!.id, limit: 100 })).messages).toEqual([]);
      expect(await store.getSession(kept.id)).toBeDefined();
      expect(await store.countSessions({ now: cutoff, purgeCutoff: cutoff })).toMatchObject({ total: 1 });
    });
  });

  describe('idempotency records', () => {
    it('commit with the write; a live key refuses a second write (nothing written), an expired one makes way', async () => {
      const agent = await withAgent();
      const first = sessionRecord(agent.id);
      expect(await store.insertSession(first, { idempotency: () => idempotencyRecord('k1') })).toBe(true);
      expect(await store.getIdempotencyRecord('anonymous', 'k1', T0)).toEqual(idempotencyRecord('k1'));
      expect(await store.getIdempotencyRecord('other-scope', 'k1', T0)).toBeUndefined();

      const second = sessionRecord(agent.id);
      await expect(store.insertSession(second, { idempotency: () => idempotencyRecord('k1', T0 + MINUTE) })).rejects.toBeInstanceOf(IdempotencyKeyTaken);
      expect(await store.getSession(second.id)).toBeUndefined();

      const dayLater = T0 + 24 * 60 * MINUTE;
      expect(await store.getIdempotencyRecord('anonymous', 'k1', dayLater)).toBeUndefined();
      const third = sessionRecord(agent.id);
      expect(await store.insertSession(third, { idempotency: () => idempotencyRecord('k1', dayLater, { fingerprint: 'f3' }) })).toBe(true);
      expect((await store.getIdempotencyRecord('anonymous', 'k1', dayLater))?.fingerprint).toBe('f3');
    });

    it('keyed writes to one session at once: a taken key fails that write alone, the others build on each other', async () => {
      const agent = await withAgent();
      const session = sessionRecord(agent.id);
      await store.insertSession(session);
      await store.modifySession(session.id, bumped, { idempotency: () => idempotencyRecord('taken') });
      const [first, taken, appended] = await Promise.allSettled([
        store.modifySession(session.id, bumped, { idempotency: () => idempotencyRecord('w1') }),
        store.modifySession(session.id, bumped, { idempotency: () => idempotencyRecord('taken', T0 + MINUTE, { fingerprint: 'other' }) }),
        store.appendMessage(session.id, (current, last) => ({ session: bumped(current), message: messageRecord(session, (last ?? -1) + 1) }), {
          idempotency: () => idempotencyRecord('w3'),
        }),
      ]);
      expect(first.status === 'fulfilled' && first.value.renewalCount).toBe(2);
      expect(taken.status === 'rejected' && taken.reason).toBeInstanceOf(IdempotencyKeyTaken);
      expect(appended.status === 'fulfilled' && [appended.value.session.renewalCount, appended.value.message.position]).toEqual([3, 0]);
      expect((await store.getSession(session.id))?.renewalCount).toBe(3);
      expect(await store.getIdempotencyRecord('anonymous', 'taken', T0)).toEqual(idempotencyRecord('taken'));
      for (const key of ['w1', 'w3']) expect(await store.getIdempotencyRecord('anonymous', key, T0)).toEqual(idempotencyRecord(key));
    });

    it('one of two concurrent writes under one key wins', async () => {
      const agent = await withAgent();
      const results = await Promise.allSettled(
        Array.from({ length: 4 }, () => store.insertAgent(agentRecord(), { idempotency: () => idempotencyRecord('same') })),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect(results.filter((r) => r.status === 'rejected').every((r) => (r as PromiseRejectedResult).reason instanceof IdempotencyKeyTaken)).toBe(true);
      expect(await store.listAgents()).toHaveLength(2); // `agent` and the winner
      expect(agent).toBeDefined();
    });

    it('purges expired records in batches', async () => {
      for (const key of ['a', 'b', 'c']) await store.insertAgent(agentRecord(), { idempotency: () => idempotencyRecord(key, T0, { expiresAt: T0 + MINUTE }) });
      expect(await store.purgeIdempotencyRecords(T0 + MINUTE, 2)).toBe(2);
      expect(await store.purgeIdempotencyRecords(T0 + MINUTE, 2)).toBe(1);
      expect(await store.purgeIdempotencyRecords(T0 + MINUTE, 2)).toBe(0);
    });

    it("settles a live record's answer for the request that wrote it only", async () => {
      const agent = await withAgent();
      await store.insertSession(sessionRecord(agent.id), { idempotency: () => idempotencyRecord('k1') });
      const final = { scope: 'anonymous', key: 'k1', fingerprint: 'f1', status: 201, body: '{"final":true}' };
      expect(await store.settleIdempotencyRecord({ ...final, fingerprint: 'other' }, T0)).toBe(false);
      expect(await store.settleIdempotencyRecord({ ...final, key: 'k2' }, T0)).toBe(false);
      expect(await store.settleIdempotencyRecord({ ...final, scope: 'other-scope' }, T0)).toBe(false);
      expect(await store.getIdempotencyRecord('anonymous', 'k1', T0)).toEqual(idempotencyRecord('k1'));
      expect(await store.settleIdempotencyRecord(final, T0)).toBe(true);
      expect(await store.getIdempotencyRecord('anonymous', 'k1', T0)).toEqual(idempotencyRecord('k1', T0, { body: '{"final":true}' }));
      expect(await store.settleIdempotencyRecord(final, T0 + 24 * 60 * MINUTE)).toBe(false);
    });

    it('trims oldest first, and a key freed by expiry is trimmed in its new place', async () => {
      await store.insertAgent(agentRecord(), { idempotency: () => idempotencyRecord('a', T0, { expiresAt: T0 + MINUTE }) });
      await store.insertAgent(agentRecord(), { idempotency: () => idempotencyRecord('b', T0, { expiresAt: T0 + 2 * MINUTE }) });
      await store.insertAgent(agentRecord(), { idempotency: () => idempotencyRecord('a', T0 + MINUTE) });
      expect(await store.purgeIdempotencyRecords(T0 + 2 * MINUTE, 1)).toBe(1);
      expect(await store.getIdempotencyRecord('anonymous', 'b', T0)).toBeUndefined();
      expect(await store.getIdempotencyRecord('anonymous', 'a', T0 + 2 * MINUTE)).toEqual(idempotencyRecord('a', T0 + MINUTE));
    });
  });

  describe('API keys', () => {
    it('stores keys by hash, one live key per name, revokes by id or name, and remembers keys existed', async () => {
      expect(await store.hasApiKeys()).toBe(false);
      const key = { id: 'key-1', name: 'ci', keyHash: 'h1', admin: false, agentIds: ['a1'], createdAt: T0 };
      expect(await store.insertApiKey(key)).toBe(true);
      expect(await store.insertApiKey({ ...key, id: 'key-2', keyHash: 'h2' })).toBe(false);
      expect(await store.insertApiKey({ ...key, name: 'other', keyHash: 'h9' })).toBe(false); // an id taken
      expect(await store.findApiKey('h1')).toEqual(key);
      expect(await store.revokeApiKey('ci', T0 + 1)).toEqual({ ...key, revokedAt: T0 + 1 });
      expect(await store.revokeApiKey('ci', T0 + 2)).toBeUndefined();
      expect(await store.insertApiKey({ ...key, id: 'key-2', keyHash: 'h2', admin: true, agentIds: [] })).toBe(true);
      expect(await store.revokeApiKey('key-2', T0 + 3)).toMatchObject({ id: 'key-2', revokedAt: T0 + 3 });
      expect((await store.listApiKeys()).map((k) => k.id)).toEqual(['key-1', 'key-2']);
      expect(await store.hasApiKeys()).toBe(true);
      // Looked up at once (PostgreSQL: one statement), each finds its own.
      expect(await Promise.all(['h2', 'h1', 'h3', 'h1'].map((hash) => store.findApiKey(hash)))).toEqual([
        { ...key, id: 'key-2', keyHash: 'h2', admin: true, agentIds: [], revokedAt: T0 + 3 },
        { ...key, revokedAt: T0 + 1 },
        undefined,
        { ...key, revokedAt: T0 + 1 },
      ]);
    });


    it("revokes by id before name: a key named after another key's id leaves that name for a second revoke", async () => {
      // The name sorts first: SQLite reads live keys in name order.
      const first = { id: 'key-a', name: 'z-first', keyHash: 'ha', admin: false, agentIds: ['a1'], createdAt: T0 };
      const namedAfterIt = { id: 'key-b', name: 'key-a', keyHash: 'hb', admin: true, agentIds: [], createdAt: T0 };
      expect(await store.insertApiKey(first)).toBe(true);
      expect(await store.insertApiKey(namedAfterIt)).toBe(true);
      expect(await store.revokeApiKey('key-a', T0 + 1)).toEqual({ ...first, revokedAt: T0 + 1 });
      expect(await store.findApiKey('hb')).toEqual(namedAfterIt);
      expect(await store.revokeApiKey('key-a', T0 + 2)).toEqual({ ...namedAfterIt, revokedAt: T0 + 2 });
    });
    it('sees keys created through another store on the same database (PostgreSQL: once notified) and revoked at once', async () => {
      // A store that remembers keys existed (this suite's, from a test before) would not show it.
      const store = await backend.openSibling();
      const other = await backend.openSibling();
      expect(await store.hasApiKeys()).toBe(false);
      const key = { id: 'key-1', name: 'ci', keyHash: 'h1', admin: false, agentIds: ['a1'], createdAt: T0 };
      expect(await other.insertApiKey(key)).toBe(true);
      if (backend.name === 'postgres') await until('the key is notified', () => store.hasApiKeys());
      expect(await store.hasApiKeys()).toBe(true);
      // Known now: answered at once, not as a promise (every request asks).
      expect(store.hasApiKeys()).toBe(true);
      expect(await store.findApiKey('h1')).toEqual(key);
      await other.revokeApiKey('ci', T0 + 1);
      expect(await store.findApiKey('h1')).toEqual({ ...key, revokedAt: T0 + 1 });
    });
  });

  describe('health', () => {
    it('answers ping and commits the write probe', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
      await expect(store.probeWrite()).resolves.toBeUndefined();
      await store.probeWrite();
    });

    it('measures the free disk space of a local database file only (health checks `disk` on SQLite, not on PostgreSQL)', async () => {
      const free = await store.freeDiskBytes();
      if (backend.name === 'sqlite') expect(free).toBeGreaterThan(0);
      else expect(free).toBeUndefined();
    });
  });

  it('carries events into the write that produced them (and not when it fails)', async () => {
    const agent = await withAgent();
    const session = sessionRecord(agent.id);
    const events = (written: SessionRecord) => [sessionEvent('session.created', written, written.createdAt)];
    await store.insertSession(session, { events });
    await expect(store.modifySession(session.id, () => {
      throw new Error('no');
    }, { events })).rejects.toThrow('no');
    const logged = await store.listEvents({ limit: 10 });
    expect(logged.map((e) => [e.type, e.sessionId])).toEqual([['session.created', session.id]]);
  });

  // PostgreSQL sends creates arriving together as one statement (create-batch.ts).
  it('creates at once, one for an agent that is gone: the others are stored, each with its event; that one writes nothing', async () => {
    const agent = await withAgent();
    const gone = await withAgent();
    expect((await store.deleteAgent(gone.id, { force: true, now: T0, purgeCutoff: 0 })).kind).toBe('deleted');
    const events = (written: SessionRecord) => [sessionEvent('session.created', written, written.createdAt)];
    const sessions = Array.from({ length: 12 }, (_, i) => sessionRecord(i === 7 ? gone.id : agent.id, { metadata: { n: i, text: 'say "hi"\\ {}' } }));
    const created = await Promise.all(sessions.map((session) => store.insertSession(session, { events })));
    expect(created).toEqual(sessions.map((_, i) => i !== 7));
    for (const [i, session] of sessions.entries()) expect(await store.getSession(session.id)).toEqual(i === 7 ? undefined : session);
    // Concurrent creates have no order among them: each event once, with its data.
    const bySession = (a: { sessionId?: string }, b: { sessionId?: string }) => a.sessionId!.localeCompare(b.sessionId!);
    const logged = (await store.listEvents({ limit: 20 })).map(({ type, sessionId, data }) => ({ type, sessionId, data })).sort(bySession);
    const expected = sessions.filter((_, i) => i !== 7).map((s) => ({ type: 'session.created', sessionId: s.id, data: sessionEvent('session.created', s, s.createdAt).data }));
    expect(logged).toEqual(expected.sort(bySession));
  });

  // PostgreSQL reads ids arriving together in one statement.
  it('reads at once: each finds its own session, the same one twice, and an unknown id nothing', async () => {
    const agent = await withAgent();
    const sessions = Array.from({ length: 8 }, (_, i) => sessionRecord(agent.id, { metadata: { n: i } }));
    for (const session of sessions) expect(await store.insertSession(session)).toBe(true);
    const ids = [...sessions.map((s) => s.id).reverse(), sessions[3]!.id, '00000000-0000-4000-8000-00000000000c'];
    expect(await Promise.all(ids.map((id) => store.getSession(id)))).toEqual([...[...sessions].reverse(), sessions[3], undefined]);
  });

  it('creates at once, all for agents that are stored: each stored with its event', async () => {
    const [first, second] = [await withAgent(), await withAgent()];
    const events = (written: SessionRecord) => [sessionEvent('session.created', written, written.createdAt)];
    const sessions = Array.from({ length: 30 }, (_, i) => sessionRecord(i % 3 ? first.id : second.id, {}, T0 + (i % 5) * MINUTE));
    expect(await Promise.all(sessions.map((session) => store.insertSession(session, { events })))).toEqual(sessions.map(() => true));
    for (const session of sessions) expect(await store.getSession(session.id)).toEqual(session);
    const logged = await store.listEvents({ limit: 50 });
    expect(logged.map((e) => e.sessionId).sort()).toEqual(sessions.map((s) => s.id).sort());
    for (const event of logged) {
      const session = sessions.find((s) => s.id === event.sessionId)!;
      expect([event.type, event.agentId, event.userId, event.occurredAt]).toEqual(['session.created', session.agentId, session.userId, session.createdAt]);
      expect(event.data).toEqual(sessionEvent('session.created', session, session.createdAt).data);
    }
    expect((await store.listSessions({ now: T0, purgeCutoff: 0, agentId: second.id, status: 'all', limit: 50, offset: 0 })).total).toBe(10);
  });
});
