// The Store contract, part 2: the event log, due announcements and webhooks. Every
// behaviour is written once and run on SQLite and on PostgreSQL.
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { announce } from '../../src/events/due-events.js';
import { agentEvent, eventJson, eventView, messageEvent, sessionEvent } from '../../src/events/event-records.js';
import { messageView } from '../../src/views.js';
import type { EventInput, EventRecord, SessionRecord, Store, WebhookRecord } from '../../src/storage/store.js';
import { createSweeper } from '../../src/sweeper.js';
import { MINUTE, T0, fakeClock } from '../helpers/fake-clock.js';
import { backends } from './backends.js';
import { agentRecord, idempotencyRecord, messageRecord, sessionRecord } from './records.js';

const created = (session: SessionRecord): EventInput[] => [sessionEvent('session.created', session, session.createdAt)];

function webhookRecord(overrides: Partial<WebhookRecord> = {}): WebhookRecord {
  return { id: `wh-${Math.random().toString(36).slice(2)}`, url: 'http://127.0.0.1:9/hook', secret: 'whsec_c2VjcmV0', createdAt: T0, cursor: '0', attempts: 0, nextAttemptAt: T0, ...overrides };
}

describe.each(backends.map((make) => [make().name, make] as const))('store on %s', (_name, make) => {
  const backend = make();
  let store: Store;
  beforeEach(async () => {
    store = await backend.open();
  });
  afterAll(() => backend.closeAll());

  describe('the event log', () => {
    it('lists events oldest first after a cursor, with every filter; lastEventId follows', async () => {
      expect(await store.lastEventId()).toBeUndefined();
      const [a, b] = [agentRecord(), agentRecord()];
      await store.insertAgent(a, { events: (agent) => [agentEvent('agent.created', agent, T0)] });
      await store.insertAgent(b, { events: (agent) => [agentEvent('agent.created', agent, T0)] });
      const sa = sessionRecord(a.id);
      const sb = sessionRecord(b.id);
      await store.insertSession(sa, { events: created });
      await store.insertSession(sb, { events: created });
      const all = await store.listEvents({ limit: 10 });
      expect(all.map((e) => e.type)).toEqual(['agent.created', 'agent.created', 'session.created', 'session.created']);
      const ids = all.map((e) => Number(e.id));
      expect(ids).toEqual([...ids].sort((x, y) => x - y));
      expect(await store.lastEventId()).toBe(all[3]!.id);
      expect(all[2]).toEqual({ id: all[2]!.id, ...sessionEvent('session.created', sa, sa.createdAt) });

      const types = (events: { type: string; sessionId?: string }[]) => events.map((e) => `${e.type}:${e.sessionId ?? '-'}`);
      expect(types(await store.listEvents({ after: all[1]!.id, limit: 10 }))).toEqual([`session.created:${sa.id}`, `session.created:${sb.id}`]);
      expect(types(await store.listEvents({ after: all[1]!.id, limit: 1 }))).toEqual([`session.created:${sa.id}`]);
      expect(types(await store.listEvents({ sessionId: sb.id, limit: 10 }))).toEqual([`session.created:${sb.id}`]);
      expect(types(await store.listEvents({ agentId: a.id, limit: 10 }))).toEqual(['agent.created:-', `session.created:${sa.id}`]);
      expect(types(await store.listEvents({ agentIds: [b.id], types: ['session.created'], limit: 10 }))).toEqual([`session.created:${sb.id}`]);
      expect(await store.listEvents({ agentIds: [], limit: 10 })).toEqual([]);
      expect(types(await store.listEvents({ userId: sa.userId, limit: 10 }))).toEqual([`session.created:${sa.id}`]);
      expect(types(await store.listEvents({ types: ['agent.created', 'session.ended'], limit: 10 }))).toEqual(['agent.created:-', 'agent.created:-']);
    });

    it('ends a page at about maxChars of events (one event at least), and says it was cut short; the next page goes on from it', async () => {
      const agent = agentRecord();
      await store.insertAgent(agent, { events: (a) => [agentEvent('agent.created', a, T0)] });
      const wide = { ...sessionRecord(agent.id), metadata: { wide: 'x'.repeat(10_000) } };
      await store.insertSession(wide, { events: created });
      for (let i = 0; i < 4; i += 1) await store.modifySession(wide.id, (s) => s!, { events: (s) => [sessionEvent('session.activity', s, T0 + i)] });
      const all = await store.listEvents({ sessionId: wide.id, limit: 10 });
      expect(all).toHaveLength(5);
      expect(all.cutShort).toBeUndefined();
      // 10,000 characters of metadata an event: the third reaches 25,000.
      const first = await store.listEvents({ sessionId: wide.id, limit: 10, maxChars: 25_000 });
      expect({ events: first.map((e) => e.id), cutShort: first.cutShort }).toEqual({ events: all.slice(0, 3).map((e) => e.id), cutShort: true });
      const rest = await store.listEvents({ sessionId: wide.id, after: first.at(-1)!.id, limit: 10, maxChars: 25_000 });
      expect(rest.map((e) => e.id)).toEqual(all.slice(3).map((e) => e.id));
      expect((await store.listEvents({ sessionId: wide.id, limit: 10, maxChars: 1 })).map((e) => e.id)).toEqual([all[0]!.id]);
      const whole = await store.listEvents({ sessionId: wide.id, limit: 3, maxChars: 1_000_000 });
      expect({ events: whole.length, cutShort: whole.cutShort }).toEqual({ events: 3, cutShort: undefined });
    });

    it("replays exactly one session's events from every cursor, amid other sessions' events before, between and after", async () => {
      const agent = agentRecord();
      await store.insertAgent(agent, { events: (a) => [agentEvent('agent.created', a, T0)] });
      const [before, mine, between] = [sessionRecord(agent.id), sessionRecord(agent.id), sessionRecord(agent.id)];
      await store.insertSession(before, { events: created });
      await store.insertSession(mine, { events: created });
      await store.insertSession(between, { events: created });
      const renewed = (session: SessionRecord) =>
        store.modifySession(session.id, (current) => ({ ...current!, renewalCount: current!.renewalCount + 1 }), {
          events: (s) => [sessionEvent('session.renewed', s, T0 + s.renewalCount)],
        });
      for (let i = 0; i < 3; i += 1) {
        await renewed(before);
        await renewed(mine);
        await renewed(between);
      }
      await store.insertSession(sessionRecord(agent.id), { events: created });

      const log = await store.listEvents({ limit: 100 });
      const expected = log.filter((event) => event.sessionId === mine.id);
      expect(expected.map((event) => event.type)).toEqual(['session.created', 'session.renewed', 'session.renewed', 'session.renewed']);
      for (const cursor of ['0', ...log.map((event) => event.id)]) {
        const rest = expected.filter((event) => Number(event.id) > Number(cursor));
        expect(await store.listEvents({ sessionId: mine.id, after: cursor, limit: 100 })).toEqual(rest);
        expect(await store.listEvents({ sessionId: mine.id, after: cursor, limit: 2 })).toEqual(rest.slice(0, 2));
      }
      expect(await store.listEvents({ sessionId: 'no-such-session', limit: 100 })).toEqual([]);
    });

    it('tells listeners after a write that recorded events commits, not after one that recorded none', async () => {
      let calls = 0;
      const unsubscribe = store.onEventsWritten(() => (calls += 1));
      const agent = agentRecord();
      await store.insertAgent(agent);
      const quiet = calls;
      await store.insertSession(sessionRecord(agent.id), { events: created });
      expect(calls).toBeGreaterThan(quiet);
      unsubscribe();
      const after = calls;
      await store.insertSession(sessionRecord(agent.id), { events: created });
      expect(calls).toBe(after);
    });

    it('hands listeners what a commit recorded, as the log reads it back, without the events of a write rolled back in it', async () => {
      const agent = agentRecord();
      await store.insertAgent(agent);
      const before = (await store.lastEventId()) ?? '0';
      const handed: EventRecord[] = [];
      let calls = 0;
      const unsubscribe = store.onEventsWritten((committed) => {
        calls += 1;
        handed.push(...(committed ?? []));
      });
      // In one turn (one group commit on SQLite): three of the four record their event, then are refused under the taken key.
      const results = await Promise.allSettled(
        Array.from({ length: 4 }, () => store.insertSession(sessionRecord(agent.id), { events: created, idempotency: () => idempotencyRecord('one-key') })),
      );
      unsubscribe();
      expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
      const log = await store.listEvents({ after: before, limit: 10 });
      expect(log).toHaveLength(1);
      expect(calls).toBeGreaterThan(0);
      // SQLite hands them over; PostgreSQL leaves the listener to read the log (other instances write it too).
      expect(handed).toEqual(backend.name === 'sqlite' ? log : []);
      expect(handed.map(eventJson)).toEqual(backend.name === 'sqlite' ? log.map(eventJson) : []);
    });

    it('records the many events of one write in order, with increasing ids, handed to listeners as the log reads them back', async () => {
      const agent = agentRecord();
      await store.insertAgent(agent);
      const before = (await store.lastEventId()) ?? '0';
      const handed: EventRecord[] = [];
      const unsubscribe = store.onEventsWritten((committed) => handed.push(...(committed ?? [])));
      // More events than one INSERT writes on SQLite (16), and a message's event beside session events, as a send records them.
      const session = sessionRecord(agent.id);
      const message = messageRecord(session, 1);
      const many = (written: SessionRecord) => [
        messageEvent(written, message),
        ...Array.from({ length: 36 }, (_, i) => sessionEvent(i % 2 ? 'session.activity' : 'session.renewed', written, T0 + i)),
      ];
      await store.insertSession(session, { events: many });
      unsubscribe();
      const log = await store.listEvents({ after: before, limit: 100 });
      expect(log.map((event) => [event.type, event.occurredAt])).toEqual(many(session).map((event) => [event.type, event.occurredAt]));
      const ids = log.map((event) => Number(event.id));
      expect(ids.every((id, i) => i === 0 || id > ids[i - 1]!)).toBe(true);
      expect(log[0]!.data).toEqual(messageView(message));
      expect(handed).toEqual(backend.name === 'sqlite' ? log : []);
      expect(handed.map(eventJson)).toEqual(backend.name === 'sqlite' ? log.map(eventJson) : []);
    });

    it('event ids never go back, even after the log is trimmed to nothing', async () => {
      const agent = agentRecord();
      await store.insertAgent(agent, { events: (a) => [agentEvent('agent.created', a, T0)] });
      const first = await store.lastEventId();
      expect(await store.purgeEvents(T0 + 1, 10)).toBe(1);
      expect(await store.lastEventId()).toBeUndefined();
      await store.insertSession(sessionRecord(agent.id), { events: created });
      expect(Number(await store.lastEventId())).toBeGreaterThan(Number(first));
    });

    it('purges events older than the cutoff in batches', async () => {
      const agent = agentRecord();
      await store.insertAgent(agent);
      for (let i = 0; i < 3; i++) await store.insertSession(sessionRecord(agent.id, {}, T0 + i * MINUTE), { events: created });
      expect(await store.purgeEvents(T0 + 2 * MINUTE, 1)).toBe(1);
      expect(await store.purgeEvents(T0 + 2 * MINUTE, 5)).toBe(1);
      expect(await store.purgeEvents(T0 + 2 * MINUTE, 5)).toBe(0);
      expect((await store.listEvents({ limit: 10 })).map((e) => e.occurredAt)).toEqual([T0 + 2 * MINUTE]);
    });

    it('purges in log order, up to the first event inside the retention: one recorded late with an earlier time stays', async () => {
      const record = (at: number) => store.insertAgent(agentRecord(), { events: (a) => [agentEvent('agent.created', a, at)] });
      await record(T0); // old
      await record(T0 + 10 * MINUTE); // inside the retention
      await record(T0); // recorded late (a due event announced after a restart)
      expect(await store.purgeEvents(T0 + MINUTE, 10)).toBe(1);
      expect(await store.purgeEvents(T0 + MINUTE, 10)).toBe(0);
      expect((await store.listEvents({ limit: 10 })).map((e) => e.occurredAt)).toEqual([T0 + 10 * MINUTE, T0]);
    });

    it('keeps a due event announced late from when it was recorded, not from its earlier due moment', async () => {
      const agent = agentRecord();
      await store.insertAgent(agent);
      await store.insertSession(sessionRecord(agent.id), { events: created });
      // Announced ten hours after the session expired (the server was down, or time passed).
      const late = T0 + 10 * 60 * MINUTE;
      expect(await store.announceDue(late, 10, announce)).toBe(2);
      const announced = (await store.listEvents({ limit: 10 })).slice(1);
      expect(announced.map((e) => [e.type, e.occurredAt < late])).toEqual([['session.warning', true], ['session.expired', true]]);
      // An hour's retention then: the creation goes, the announcements stay for that hour.
      expect(await store.purgeEvents(late - 60 * MINUTE, 10)).toBe(1);
      expect(await store.listEvents({ limit: 10 })).toEqual(announced);
      expect(await store.purgeEvents(late + 1, 10)).toBe(2);
    });

    it('lists nothing after an id past the largest the log can give (the spec allows 19 digits)', async () => {
      const agent = agentRecord();
      await store.insertAgent(agent);
      const session = sessionRecord(agent.id);
      await store.insertSession(session, { events: created });
      for (const after of ['9223372036854775806', '9223372036854775807', '9999999999999999999']) {
        expect(await store.listEvents({ after, limit: 10 }), after).toEqual([]);
        expect(await store.listEvents({ after, sessionId: session.id, limit: 10 }), after).toEqual([]);
      }
      expect(await store.listEvents({ after: '0', limit: 10 })).toHaveLength(1);
    });
  });

  it('reads back events whose JSON is the API view byte for byte, with and without a session, and whose data is as written', async () => {
    const agent = agentRecord();
    await store.insertAgent(agent, { events: (written) => [agentEvent('agent.created', written, T0)] });
    const session = sessionRecord(agent.id, { metadata: { note: 'quote " and \u2028 and é' } });
    await store.insertSession(session, { events: created });
    const message = messageRecord(session, 1, { content: 'say "hi" 🙂 \u2028', metadata: { z: 1, a: [null] } });
    await store.appendMessage(session.id, (current) => ({ session: current!, message }), { events: (written) => [messageEvent(written.session, written.message)] });
    const events = await store.listEvents({ limit: 10 });
    expect(events).toHaveLength(3);
    for (const event of events) expect(eventJson(event)).toBe(JSON.stringify(eventView(event)));
    expect(events[1]!.data).toEqual(sessionEvent('session.created', session, session.createdAt).data);
    expect(events[2]!.data).toEqual(messageView(message));
  });

  describe('due announcements', () => {
    it('announces warnings and expiries in order of due time, each once, within the limit', async () => {
      const agent = agentRecord();
      await store.insertAgent(agent);
      // Warnings at 25 and 26 min, expiries at 30 and 31.
      const first = sessionRecord(agent.id, {}, T0);
      const second = sessionRecord(agent.id, {}, T0 + MINUTE);
      await store.insertSession(second);
      await store.insertSession(first);
      expect(await store.announceDue(T0 + 24 * MINUTE, 10, announce)).toBe(0);
      expect(await store.announceDue(T0 + 30 * MINUTE, 2, announce)).toBe(2);
      expect(await store.announceDue(T0 + 30 * MINUTE, 10, announce)).toBe(1);
      expect(await store.announceDue(T0 + 30 * MINUTE, 10, announce)).toBe(0);
      const log = (await store.listEvents({ limit: 10 })).map((e) => `${e.type}:${e.sessionId === first.id ? 1 : 2}@${(e.occurredAt - T0) / MINUTE}`);
      expect(log).toEqual(['session.warning:1@25', 'session.warning:2@26', 'session.expired:1@30']);
      expect(await store.getSession(first.id)).toMatchObject({ status: 'expired', announced: 'expiry' });
      expect(await store.getSession(second.id)).toMatchObject({ status: 'active', announced: 'warning' });
    });

    it('says whether its batches mostly wait for the database (PostgreSQL): the pump keeps them large then', () => {
      expect(store.announcesOffEventLoop === true).toBe(backend.name === 'postgres');
    });

    it('announces a warning and an expiry at the very millisecond each falls due', async () => {
      const agent = agentRecord();
      await store.insertAgent(agent);
      const session = sessionRecord(agent.id, {}, T0 + 500 * MINUTE);
      await store.insertSession(session);
      expect(await store.announceDue(session.warnsAt - 1, 10, announce)).toBe(0);
      expect(await store.announceDue(session.warnsAt, 10, announce)).toBe(1);
      expect(await store.announceDue(session.expiresAt - 1, 10, announce)).toBe(0);
      expect(await store.announceDue(session.expiresAt, 10, announce)).toBe(1);
    });

    it('announces only the expiry of a session stored as already warned (its creation warned it), and only that of a session modified so', async () => {
      const agent = agentRecord();
      await store.insertAgent(agent);
      const warned = sessionRecord(agent.id, { announced: 'warning' });
      const modified = sessionRecord(agent.id);
      await store.insertSession(warned);
      await store.insertSession(modified);
      await store.modifySession(modified.id, (current) => ({ ...current!, announced: 'warning' }));
      expect(await store.announceDue(T0 + 29 * MINUTE, 10, announce)).toBe(0);
      expect(await store.announceDue(T0 + 30 * MINUTE, 10, announce)).toBe(2);
      expect((await store.listEvents({ limit: 10 })).map((e) => e.type)).toEqual(['session.expired', 'session.expired']);
    });

    it('lets a sweeper pass purge no session unannounced: a clock past expiry and retention at once announces each expiry first', async () => {
      const agent = agentRecord();
      await store.insertAgent(agent);
      const sessions = [sessionRecord(agent.id), sessionRecord(agent.id), sessionRecord(agent.id)];
      for (const session of sessions) await store.insertSession(session);
      const after = await store.lastEventId();
      const sweeper = createSweeper({ store, clock: fakeClock(T0 + 30 * MINUTE + 60 * MINUTE), retentionMs: 60 * MINUTE, intervalMs: 1000, batchSize: 2 });
      // Warnings at 25 min, expiries at 30, each one announced; then the purge.
      expect(await sweeper.sweep()).toMatchObject({ announced: 6, purged: 3 });
      for (const session of sessions) expect(await store.getSession(session.id)).toBeUndefined();
      const expired = (await store.listEvents({ after, limit: 20, agentId: agent.id })).filter((event) => event.type === 'session.expired');
      expect(expired.map((event) => event.sessionId).sort()).toEqual(sessions.map((session) => session.id).sort());
    });

    it("fires a session's expiry between the other sessions' warnings when both fall due at once, in one batch or several", async () => {
      for (const limit of [10, 3]) {
        const agent = agentRecord();
        await store.insertAgent(agent);
        // Warnings at 25, 28, 31 min and expiries at 30, 33, 36 (after T0 + 100 * limit).
        const base = T0 + 100 * MINUTE * limit;
        const sessions = [0, 3, 6].map((minutes) => sessionRecord(agent.id, {}, base + minutes * MINUTE));
        for (const session of sessions) await store.insertSession(session);
        const after = await store.lastEventId();
        let total = 0;
        for (let fired = -1; fired !== 0; total += fired) {
          fired = await store.announceDue(base + 40 * MINUTE, limit, announce);
          expect(fired).toBeLessThanOrEqual(limit); // follow-ups included
        }
        expect(total).toBe(6);
        const log = (await store.listEvents({ after, limit: 10, agentId: agent.id })).map(
          (e) => `${e.type === 'session.warning' ? 'w' : 'e'}${sessions.findIndex((s) => s.id === e.sessionId)}@${(e.occurredAt - base) / MINUTE}`,
        );
        expect(log).toEqual(['w0@25', 'w1@28', 'e0@30', 'w2@31', 'e1@33', 'e2@36']);
      }
    });

    it('keeps what a session announced across its writes: a kept deadline warns no more, a moved one re-arms the warning, a deleted session announces nothing', async () => {
      const agent = agentRecord();
      await store.insertAgent(agent);
      // Warnings at 25 min, expiries at 30.
      const [kept, moved, samewarn, gone] = [sessionRecord(agent.id), sessionRecord(agent.id), sessionRecord(agent.id), sessionRecord(agent.id)];
      for (const session of [kept, moved, samewarn, gone]) await store.insertSession(session);
      const after = await store.lastEventId();
      expect(await store.announceDue(T0 + 25 * MINUTE, 10, announce)).toBe(4);
      for (const session of [kept, moved, samewarn, gone]) expect(await store.getSession(session.id)).toMatchObject({ announced: 'warning' });
      const page = await store.listSessions({ agentId: agent.id, status: 'all', now: T0 + 25 * MINUTE, purgeCutoff: 0, limit: 10, offset: 0, count: false });
      expect(page.sessions.map((session) => session.announced)).toEqual(['warning', 'warning', 'warning', 'warning']);
      // As session-access.ts writes them: the same deadline keeps what was announced; a new one announces nothing yet.
      await store.modifySession(kept.id, (current) => ({ ...current!, metadata: { note: 'kept' } }));
      await store.modifySession(moved.id, (current) => ({ ...current!, expiresAt: current!.expiresAt + 11 * MINUTE, warnsAt: current!.warnsAt + 11 * MINUTE, announced: 'nothing' }));
      // A longer threshold with the same warning moment: a new deadline, so its warning again (due at once).
      await store.modifySession(samewarn.id, (current) => ({ ...current!, expiresAt: current!.expiresAt + 5 * MINUTE, announced: 'nothing' }));
      await store.deleteSession(gone.id, (current) => current!);
      expect(await store.getSession(kept.id)).toMatchObject({ metadata: { note: 'kept' }, announced: 'warning' });
      expect(await store.getSession(moved.id)).toMatchObject({ announced: 'nothing' });
      let total = 0;
      for (let fired = -1; fired !== 0; total += fired) fired = await store.announceDue(T0 + 60 * MINUTE, 2, announce);
      expect(total).toBe(5);
      const names = new Map([kept, moved, samewarn].map((session, i) => [session.id, ['kept', 'moved', 'samewarn'][i]]));
      const log = (await store.listEvents({ after, limit: 20 })).slice(4).map((e) => `${e.type === 'session.warning' ? 'w' : 'e'}:${names.get(e.sessionId!) ?? e.sessionId}@${(e.occurredAt - T0) / MINUTE}`);
      expect(log).toEqual(['w:samewarn@25', 'e:kept@30', 'e:samewarn@35', 'w:moved@36', 'e:moved@41']);
      for (const session of [kept, moved, samewarn]) expect(await store.getSession(session.id)).toMatchObject({ status: 'expired', announced: 'expiry' });
    });

    it('keeps due order across batches that the limit cuts, warnings and expiries interleaved, at any limit; odd metadata written back as it was', async () => {
      for (const limit of [1, 2, 3, 5, 7]) {
        const agent = agentRecord();
        await store.insertAgent(agent);
        const base = T0 + 1000 * MINUTE * limit;
        // Warnings at 25 + k minutes and expiries at 30 + k: the orders interleave.
        const sessions = [0, 1, 2, 4, 7, 11, 13].map((k) => sessionRecord(agent.id, { metadata: { odd: "it's \"q\" \\ $1 $$ E'x' 🎉" } }, base + k * MINUTE + k));
        for (const session of sessions) await store.insertSession(session);
        const after = await store.lastEventId();
        let total = 0;
        for (let fired = -1; fired !== 0; total += fired) fired = await store.announceDue(base + 60 * MINUTE, limit, announce);
        expect(total).toBe(2 * sessions.length);
        const times = (await store.listEvents({ after, limit: 100, agentId: agent.id })).map((event) => event.occurredAt);
        expect(times, `limit ${limit}`).toEqual([...times].sort((a, b) => a - b));
        expect(new Set(times).size).toBe(2 * sessions.length);
        for (const session of sessions) expect(await store.getSession(session.id)).toMatchObject({ metadata: session.metadata, status: 'expired', announced: 'expiry' });
      }
    });

    it('two pumps at once announce each due event once', async () => {
      const agent = agentRecord();
      await store.insertAgent(agent);
      for (let i = 0; i < 12; i++) await store.insertSession(sessionRecord(agent.id));
      const pump = async () => {
        let total = 0;
        for (let fired = -1; fired !== 0; total += fired) fired = await store.announceDue(T0 + 31 * MINUTE, 3, announce);
        return total;
      };
      const [a, b] = await Promise.all([pump(), pump()]);
      expect(a! + b!).toBe(24);
      const log = await store.listEvents({ limit: 100 });
      expect(log.filter((e) => e.type === 'session.expired')).toHaveLength(12);
      expect(log.filter((e) => e.type === 'session.warning')).toHaveLength(12);
    });
  });

  describe('webhooks', () => {
    it('stores webhooks in creation order and deletes them', async () => {
      const first = webhookRecord({ types: ['session.created'], agentIds: ['a1'], createdAt: T0 });
      const second = webhookRecord({ agentId: 'a2', failingSince: T0, disabledAt: T0 + 1, createdAt: T0 + 1 });
      await store.insertWebhook(first);
      await store.insertWebhook(second);
      expect(await store.listWebhooks()).toEqual([first, second]);
      expect(await store.getWebhook(second.id)).toEqual(second);
      expect(await store.deleteWebhook(first.id)).toBe(true);
      expect(await store.deleteWebhook(first.id)).toBe(false);
      expect(await store.getWebhook(first.id)).toBeUndefined();
      expect(await store.listWebhooks()).toEqual([second]);
    });

    it("disables the webhooks a key made when the key is revoked, in the same write, and leaves the others alone", async () => {
      await store.insertApiKey({ id: 'key-w', name: 'bot', keyHash: 'hw', admin: false, agentIds: ['a1'], createdAt: T0 });
      const made = webhookRecord({ createdByKey: 'key-w', agentIds: ['a1'], createdAt: T0 });
      const another = webhookRecord({ createdByKey: 'key-other', createdAt: T0 + 1 });
      const keyless = webhookRecord({ createdAt: T0 + 2 });
      for (const webhook of [made, another, keyless]) await store.insertWebhook(webhook);
      expect((await store.listWebhooks())[0]).toEqual(made);
      expect(await store.revokeApiKey('bot', T0 + 5)).toMatchObject({ id: 'key-w', revokedAt: T0 + 5 });
      expect(await store.listWebhooks()).toEqual([{ ...made, disabledAt: T0 + 5 }, another, keyless]);
    });

    it('keeps the time a webhook of the key was disabled before the key was revoked', async () => {
      await store.insertApiKey({ id: 'key-w', name: 'bot', keyHash: 'hw', admin: false, agentIds: ['a1'], createdAt: T0 });
      const failed = webhookRecord({ createdByKey: 'key-w', agentIds: ['a1'], attempts: 9, failingSince: T0, disabledAt: T0 + 1 });
      await store.insertWebhook(failed);
      await store.revokeApiKey('bot', T0 + 5);
      expect(await store.getWebhook(failed.id)).toEqual(failed);
    });

    it('writes no webhook for a key revoked before the write (by another process or instance while its request ran): keyRevoked', async () => {
      await store.insertApiKey({ id: 'key-w', name: 'bot', keyHash: 'hw', admin: false, agentIds: ['a1'], createdAt: T0 });
      const other = await backend.openSibling();
      const live = webhookRecord({ createdByKey: 'key-w', agentIds: ['a1'] });
      expect(await store.insertWebhook(live)).toBe('inserted');
      await other.revokeApiKey('bot', T0 + 1);
      const late = webhookRecord({ createdByKey: 'key-w', agentIds: ['a1'] });
      expect(await store.insertWebhook(late)).toBe('keyRevoked');
      // Revoked says more than full: the key would be refused now (401), not told to delete one.
      expect(await store.insertWebhook(late, undefined, 1)).toBe('keyRevoked');
      expect(await store.getWebhook(late.id)).toBeUndefined();
      expect(await store.getWebhook(live.id)).toEqual({ ...live, disabledAt: T0 + 1 });
      // A key from API_KEYS has no row to be revoked in.
      expect(await store.insertWebhook(webhookRecord({ createdByKey: 'env:0123456789abcdef' }))).toBe('inserted');
    });

    it('writes no webhook past mostForKey webhooks of its key (keyFull), counting creates made at once across stores; other keys, and no limit, apart', async () => {
      await store.insertApiKey({ id: 'key-m', name: 'many', keyHash: 'hm', admin: false, agentIds: ['a1'], createdAt: T0 });
      const other = await backend.openSibling();
      const made = (key: string) => webhookRecord({ createdByKey: key, agentIds: ['a1'] });
      const attempts = Array.from({ length: 8 }, (_, i) => made(i % 2 === 0 ? 'key-m' : 'env:0123456789abcdef'));
      const outcomes = await Promise.all(attempts.map((webhook, i) => (i % 4 < 2 ? store : other).insertWebhook(webhook, undefined, 3)));
      const byKey = (key: string) => outcomes.filter((_, i) => attempts[i]!.createdByKey === key).sort();
      expect(byKey('key-m')).toEqual(['inserted', 'inserted', 'inserted', 'keyFull']);
      expect(byKey('env:0123456789abcdef')).toEqual(['inserted', 'inserted', 'inserted', 'keyFull']);
      const kept = (await store.listWebhooks()).map((webhook) => webhook.id);
      expect(attempts.filter((_, i) => outcomes[i] === 'inserted').every((webhook) => kept.includes(webhook.id))).toBe(true);
      expect(kept).toHaveLength(6);
      expect(await store.insertWebhook(made('key-m'), undefined, 3)).toBe('keyFull');
      expect(await store.insertWebhook(made('key-m'), undefined, 4)).toBe('inserted');
      expect(await store.insertWebhook(made('key-m'))).toBe('inserted');
      expect(await store.insertWebhook(webhookRecord(), undefined, 1)).toBe('inserted');
      expect(await store.insertWebhook(webhookRecord(), undefined, 1)).toBe('inserted');
    });

    it('gives a webhook to one holder at a time, across stores, until the claim runs out or is given back', async () => {
      const webhook = webhookRecord();
      await store.insertWebhook(webhook);
      const other = await backend.openSibling();
      const CLAIM = 15_000;
      expect(await store.claimWebhook(webhook.id, 'a', T0, T0 + CLAIM)).toEqual(webhook);
      expect(await other.claimWebhook(webhook.id, 'b', T0 + 1, T0 + 1 + CLAIM)).toBeUndefined();
      // Renewed by its holder: the other waits for the renewed end.
      expect(await store.claimWebhook(webhook.id, 'a', T0 + 10, T0 + 10 + CLAIM)).toEqual(webhook);
      expect(await other.claimWebhook(webhook.id, 'b', T0 + 9 + CLAIM, T0 + 9 + 2 * CLAIM)).toBeUndefined();
      expect(await other.claimWebhook(webhook.id, 'b', T0 + 10 + CLAIM, T0 + 10 + 2 * CLAIM)).toEqual(webhook);
      // Given back (until = now) by another than its holder: nothing changes (a stopping server whose claim was refused).
      expect(await store.claimWebhook(webhook.id, 'a', T0 + 20 + CLAIM, T0 + 20 + CLAIM)).toBeUndefined();
      expect(await store.claimWebhook(webhook.id, 'c', T0 + 21 + CLAIM, T0 + 21 + 2 * CLAIM)).toBeUndefined();
      // Given back by its holder: taken at once.
      expect(await other.claimWebhook(webhook.id, 'b', T0 + 20 + CLAIM, T0 + 20 + CLAIM)).toEqual(webhook);
      expect(await store.claimWebhook(webhook.id, 'a', T0 + 20 + CLAIM, T0 + 20 + 2 * CLAIM)).toEqual(webhook);
      // A clock set back an hour: a's claim, now far ahead of any claim b could make, counts as run out.
      const back = T0 - 60 * MINUTE;
      expect(await other.claimWebhook(webhook.id, 'b', back, back + CLAIM)).toEqual(webhook);
      // Within a claim's length of skew, it does not.
      expect(await store.claimWebhook(webhook.id, 'a', back - CLAIM + 1, back + 1)).toBeUndefined();
      await store.deleteWebhook(webhook.id);
      expect(await other.claimWebhook(webhook.id, 'b', back, back + CLAIM)).toBeUndefined();
    });

    it('moves the cursor, with the claim, past what the holder read finding nothing: never back, and not on a claim refused', async () => {
      const webhook = webhookRecord({ cursor: '5' });
      await store.insertWebhook(webhook);
      const other = await backend.openSibling();
      const CLAIM = 15_000;
      const cursor = async () => (await store.listWebhooks())[0]?.cursor;
      expect(await store.claimWebhook(webhook.id, 'a', T0, T0 + CLAIM, '40')).toEqual({ ...webhook, cursor: '40' });
      expect(await other.claimWebhook(webhook.id, 'b', T0 + 1, T0 + 1 + CLAIM, '90')).toBeUndefined();
      expect(await cursor()).toBe('40');
      expect((await store.claimWebhook(webhook.id, 'a', T0 + 2, T0 + 2 + CLAIM, '30'))?.cursor).toBe('40');
      expect((await store.claimWebhook(webhook.id, 'a', T0 + 3, T0 + 3 + CLAIM))?.cursor).toBe('40');
    });

    it('records a delivery with the new state, latest first; nothing for a deleted webhook; keeps the last 100', async () => {
      const webhook = webhookRecord();
      await store.insertWebhook(webhook);
      await store.claimWebhook(webhook.id, 'a', T0, T0 + 15_000);
      await store.recordDelivery(
        { webhookId: webhook.id, eventId: '7', attempt: 1, attemptedAt: T0, error: 'timeout', nextRetryAt: T0 + 5000 },
        { id: webhook.id, cursor: '6', attempts: 1, nextAttemptAt: T0 + 5000, failingSince: T0 },
        'a',
      );
      await store.recordDelivery({ webhookId: webhook.id, eventId: '7', attempt: 2, attemptedAt: T0 + 5000, statusCode: 204 }, { id: webhook.id, cursor: '7', attempts: 0, nextAttemptAt: T0 + 5000 }, 'a');
      expect(await store.listDeliveries(webhook.id, 10)).toEqual([
        { webhookId: webhook.id, eventId: '7', attempt: 2, attemptedAt: T0 + 5000, statusCode: 204 },
        { webhookId: webhook.id, eventId: '7', attempt: 1, attemptedAt: T0, error: 'timeout', nextRetryAt: T0 + 5000 },
      ]);
      expect((await store.listWebhooks())[0]).toEqual({ ...webhook, cursor: '7', attempts: 0, nextAttemptAt: T0 + 5000 });
      for (let i = 0; i < 105; i++) {
        await store.recordDelivery({ webhookId: webhook.id, eventId: String(8 + i), attempt: 1, attemptedAt: T0 + i, statusCode: 200 }, { id: webhook.id, cursor: String(8 + i), attempts: 0, nextAttemptAt: T0 }, 'a');
      }
      const kept = await store.listDeliveries(webhook.id, 1000);
      expect(kept).toHaveLength(100);
      expect(kept[0]?.eventId).toBe('112');
      expect(await store.recordDelivery({ webhookId: webhook.id, eventId: '113', attempt: 1, attemptedAt: T0, statusCode: 200 }, { id: webhook.id, cursor: '113', attempts: 0, nextAttemptAt: T0 }, 'a')).toBe(true);
      await store.deleteWebhook(webhook.id);
      expect(await store.recordDelivery({ webhookId: webhook.id, eventId: '200', attempt: 1, attemptedAt: T0, statusCode: 200 }, { id: webhook.id, cursor: '200', attempts: 0, nextAttemptAt: T0 }, 'a')).toBe(false);
      expect(await store.listDeliveries(webhook.id, 10)).toEqual([]);
    });

    it("records a holder's attempt, but not its state, once another holder has the webhook: the cursor does not move back", async () => {
      const webhook = webhookRecord({ cursor: '5' });
      await store.insertWebhook(webhook);
      const other = await backend.openSibling();
      const CLAIM = 15_000;
      await store.claimWebhook(webhook.id, 'a', T0, T0 + CLAIM);
      // a's claim runs out under its attempt at event 6; b takes the webhook and delivers 6 to 9.
      expect(await other.claimWebhook(webhook.id, 'b', T0 + CLAIM, T0 + 2 * CLAIM)).toEqual(webhook);
      expect(await other.recordDelivery({ webhookId: webhook.id, eventId: '9', attempt: 1, attemptedAt: T0 + CLAIM, statusCode: 200 }, { id: webhook.id, cursor: '9', attempts: 0, nextAttemptAt: T0 + CLAIM }, 'b')).toBe(true);
      // a's answer comes, a failure: its attempt is recorded, its state (cursor 5, a retry) is not.
      const late = { webhookId: webhook.id, eventId: '6', attempt: 1, attemptedAt: T0, error: 'HTTP 500', nextRetryAt: T0 + CLAIM + 5000 };
      expect(await store.recordDelivery(late, { id: webhook.id, cursor: '5', attempts: 1, nextAttemptAt: T0 + CLAIM + 5000, failingSince: T0 }, 'a')).toBe(false);
      expect(await store.getWebhook(webhook.id)).toEqual({ ...webhook, cursor: '9', attempts: 0, nextAttemptAt: T0 + CLAIM });
      expect((await store.listDeliveries(webhook.id, 10)).map((d) => d.eventId)).toEqual(['6', '9']);
      // Its holder's own record never moves the cursor back either.
      expect(await other.recordDelivery({ webhookId: webhook.id, eventId: '7', attempt: 1, attemptedAt: T0 + CLAIM, statusCode: 200 }, { id: webhook.id, cursor: '7', attempts: 0, nextAttemptAt: T0 + CLAIM }, 'b')).toBe(true);
      expect((await store.getWebhook(webhook.id))?.cursor).toBe('9');
    });

    it('keeps a webhook disabled (its key revoked) under an attempt that was under way: the attempt is recorded, the webhook stays disabled', async () => {
      await store.insertApiKey({ id: 'key-w', name: 'bot', keyHash: 'hw', admin: false, agentIds: ['a1'], createdAt: T0 });
      const webhook = webhookRecord({ createdByKey: 'key-w', cursor: '5' });
      await store.insertWebhook(webhook);
      await store.claimWebhook(webhook.id, 'a', T0, T0 + 15_000);
      await store.revokeApiKey('bot', T0 + 1);
      expect(await store.recordDelivery({ webhookId: webhook.id, eventId: '6', attempt: 1, attemptedAt: T0, statusCode: 200 }, { id: webhook.id, cursor: '6', attempts: 0, nextAttemptAt: T0 + 2 }, 'a')).toBe(true);
      expect(await store.getWebhook(webhook.id)).toEqual({ ...webhook, cursor: '6', nextAttemptAt: T0 + 2, disabledAt: T0 + 1 });
    });
  });
});
