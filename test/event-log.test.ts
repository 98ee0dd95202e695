// Every change is an event in the log, written in the same transaction as the change:
// each operation's events, none from a rejected request, and the due announcements
// (warning, expiry) fired from the clock at the exact millisecond, once each.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { migrate } from '../src/storage/sqlite/migrations.js';
import { DUE_SESSIONS_SQL } from '../src/storage/sqlite/queries.js';
import { createEventPump } from '../src/events/due-events.js';
import { eventView } from '../src/events/event-records.js';
import { specSchemaValidator } from '../src/spec.js';
import type { EventRecord } from '../src/storage/store.js';
import { MINUTE, T0 } from './helpers/fake-clock.js';
import { USER_ID, createSession, registerAgent } from './helpers/fixtures.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';

const iso = (ms: number) => new Date(ms).toISOString();
const isEventData = specSchemaValidator('Event');

let t: TestApp;
let agentId: string;

beforeEach(async () => {
  t = await startTestApp();
  agentId = await registerAgent(t);
});
afterEach(() => t.close());

const url = (sessionId: string, action = '') => `/api/messaging/sessions/${sessionId}${action}`;
const log = () => t.store.listEvents({ limit: 10_000 });
const types = async (sessionId?: string) => (await t.store.listEvents({ sessionId, limit: 10_000 })).map((event) => event.type);
const pump = () => createEventPump({ store: t.store, clock: t.clock }).tick();

async function newSession(timeoutConfig: Record<string, unknown> = {}): Promise<string> {
  return (await createSession(t, { agentId, timeoutConfig })).sessionId;
}

function expectIncreasingIds(events: EventRecord[]): void {
  const ids = events.map((event) => Number(event.id));
  expect(ids).toEqual([...ids].sort((a, b) => a - b));
  expect(new Set(ids).size).toBe(ids.length);
}

describe('events of each operation', () => {
  it('records agent.created, session.created, renewals, activity, timeout updates, messages, session.ended and agent.deleted', async () => {
    const id = await newSession({ autoRenew: false });
    t.clock.advance(MINUTE);
    await t.request({ method: 'POST', url: url(id, '/heartbeat') }); // no autoRenew: activity
    await t.request({ method: 'POST', url: url(id, '/renew') });
    await t.request({ method: 'PATCH', url: url(id, '/timeout'), body: { autoRenew: true } });
    await t.request({ method: 'POST', url: url(id, '/heartbeat') }); // autoRenew: a renewal
    await t.request({ method: 'POST', url: url(id, '/messages'), body: { content: 'hi' } });
    await t.request({ method: 'DELETE', url: url(id) });
    await t.request({ method: 'DELETE', url: `/api/agents/${agentId}` });

    const events = await log();
    expect(events.map((event) => event.type)).toEqual([
      'agent.created',
      'session.created',
      'session.activity',
      'session.renewed',
      'session.timeout_updated',
      'session.renewed',
      'message.created',
      'session.renewed',
      'session.ended',
      'agent.deleted',
    ]);
    expectIncreasingIds(events);
    for (const event of events) {
      expect(event.agentId).toBe(agentId);
      const view = { id: event.id, type: event.type, occurredAt: iso(event.occurredAt), agentId: event.agentId, data: event.data };
      expect(isEventData(event.sessionId ? { ...view, sessionId: event.sessionId, userId: event.userId } : view), event.type).toBe(true);
    }
    const sessionEvents = events.filter((event) => event.sessionId !== undefined);
    expect(sessionEvents.every((event) => event.sessionId === id && event.userId === USER_ID)).toBe(true);
    // The spec ties data to type (E13: any of the three shapes passed with any type): each event's data under another kind's type is no Event.
    const kinds = [events.find((event) => event.type === 'session.created')!, events.find((event) => event.type === 'message.created')!, events[0]!];
    for (const event of kinds) {
      for (const other of kinds.filter((kind) => kind !== event)) {
        expect(isEventData({ ...eventView(event), type: other.type }), `${event.type}'s data as ${other.type}`).toBe(false);
      }
    }
    // And session and message events carry their session and user.
    const { sessionId: _session, ...withoutSession } = eventView(sessionEvents[0]!) as { sessionId?: string };
    expect(isEventData(withoutSession)).toBe(false);
    // data is the SessionInfo as of that moment: the renewal shows its count.
    expect(events[3]!.data).toMatchObject({ sessionId: id, renewalCount: 1, status: 'active' });
    expect(events[6]!.data).toMatchObject({ content: 'hi', authorId: USER_ID, isAgent: false });
    expect(events[9]!.data).toMatchObject({ id: agentId, name: expect.any(String) });
  });

  it("dates an agent's created and deleted events at the clock of their requests", async () => {
    t.clock.advance(MINUTE);
    const created = await t.request({ method: 'POST', url: '/api/agents', body: { characterJson: { name: 'Dated' } } });
    const id = created.body.data.character.id as string;
    const createdAt = t.clock.now();
    t.clock.advance(7 * MINUTE + 3);
    expect((await t.request({ method: 'DELETE', url: `/api/agents/${id}` })).status).toBe(200);
    const events = (await log()).filter((event) => event.agentId === id);
    expect(events.map((event) => [event.type, event.occurredAt])).toEqual([
      ['agent.created', createdAt],
      ['agent.deleted', createdAt + 7 * MINUTE + 3],
    ]);
  });

  it('ends each retained session of an agent deleted with force, as endSession would, before agent.deleted', async () => {
    const live = await newSession();
    const expired = await newSession({ timeoutMinutes: 5 });
    t.clock.advance(10 * MINUTE);
    const before = (await log()).length;
    const deleted = await t.request({ method: 'DELETE', url: `/api/agents/${agentId}?force=true` });
    expect(deleted.body.data.deletedSessions).toBe(2);
    const events = (await log()).slice(before);
    const shown = events.map((event) => [event.type, event.sessionId === expired ? 'expired' : event.sessionId === live ? 'live' : undefined, event.occurredAt - t.clock.now()]);
    // The expired one's expiry, which the pump had not announced yet, before its end (its
    // warning came with its creation: a 5-minute timeout warns at once).
    expect(shown.filter(([, session]) => session === 'expired')).toEqual([['session.expired', 'expired', -5 * MINUTE], ['session.ended', 'expired', 0]]);
    expect(shown.filter(([, session]) => session === 'live')).toEqual([['session.ended', 'live', 0]]);
    expect(shown.at(-1)).toEqual(['agent.deleted', undefined, 0]);
    expect(shown).toHaveLength(4);
    for (const event of events) {
      const view = { id: event.id, type: event.type, occurredAt: iso(event.occurredAt), agentId: event.agentId, data: event.data };
      expect(isEventData(event.sessionId ? { ...view, sessionId: event.sessionId, userId: event.userId } : view), event.type).toBe(true);
    }
  });

  it('records nothing for a rejected request', async () => {
    const id = await newSession({ maxDurationMinutes: 30 });
    const before = await log();
    const rejected = [
      await t.request({ method: 'POST', url: url(id, '/renew') }), // 422: already at the maximum
      await t.request({ method: 'PATCH', url: url(id, '/timeout'), body: { timeoutMinutes: 4 } }), // 400
      await t.request({ method: 'POST', url: url(id, '/messages'), body: { content: 'x', authorId: '00000000-0000-4000-8000-000000000000' } }),
      await t.request({ method: 'POST', url: '/api/messaging/sessions', body: { agentId: '00000000-0000-4000-8000-000000000001', userId: USER_ID } }),
      await t.request({ method: 'POST', url: '/api/agents', body: { characterJson: { id: agentId, name: 'Twin' } } }), // 409
      await t.request({ method: 'DELETE', url: `/api/agents/${agentId}` }), // 409: active sessions
    ];
    expect(rejected.map((response) => response.status)).toEqual([422, 400, 400, 404, 409, 409]);
    t.clock.advance(30 * MINUTE);
    expect((await t.request({ method: 'POST', url: url(id, '/heartbeat') })).status).toBe(410);
    expect(await log()).toEqual(before);
    // Deleting is always possible, an expired session included: a change, with its event,
    // after the due events the pump had not announced yet (it has not run here).
    expect((await t.request({ method: 'DELETE', url: url(id) })).status).toBe(200);
    expect((await log()).slice(before.length).map((event) => event.type)).toEqual(['session.warning', 'session.expired', 'session.ended']);
  });

  it('rolls the event back with a write that fails in its transaction', async () => {
    const id = await newSession();
    const before = await log();
    await expect(
      t.store.modifySession(id, (current) => ({ ...current!, renewalCount: 99 }), {
        events: () => {
          throw new Error('refused after the update');
        },
      }),
    ).rejects.toThrow('refused after the update');
    expect(await log()).toEqual(before);
    expect((await t.store.getSession(id))!.renewalCount).toBe(0);
  });
});

describe('due announcements', () => {
  it('fires session.warning at warnsAt and session.expired at expiresAt, to the millisecond, once each', async () => {
    const id = await newSession({ timeoutMinutes: 30, warningThresholdMinutes: 5 });
    t.clock.set(T0 + 25 * MINUTE - 1);
    expect(await pump()).toBe(0);
    t.clock.set(T0 + 25 * MINUTE);
    expect(await pump()).toBe(1);
    expect(await pump()).toBe(0);
    t.clock.set(T0 + 30 * MINUTE - 1);
    expect(await pump()).toBe(0);
    t.clock.set(T0 + 30 * MINUTE);
    expect(await pump()).toBe(1);
    t.clock.advance(10 * MINUTE);
    expect(await pump()).toBe(0);

    const events = await t.store.listEvents({ sessionId: id, limit: 100 });
    expect(events.map((event) => [event.type, event.occurredAt])).toEqual([
      ['session.created', T0],
      ['session.warning', T0 + 25 * MINUTE],
      ['session.expired', T0 + 30 * MINUTE],
    ]);
    expect(events[1]!.data).toMatchObject({ isNearExpiration: true, timeRemaining: 5 * MINUTE, status: 'active' });
    expect(events[2]!.data).toMatchObject({ isNearExpiration: false, timeRemaining: 0, status: 'expired' });
  });

  it('re-arms the warning when a renewal or a PATCH moves the deadline, and not otherwise', async () => {
    const id = await newSession({ timeoutMinutes: 30, warningThresholdMinutes: 5, autoRenew: false });
    t.clock.set(T0 + 26 * MINUTE);
    await pump(); // warning for the first deadline
    await t.request({ method: 'POST', url: url(id, '/heartbeat') }); // no autoRenew: the deadline stays
    await pump();
    expect((await types(id)).filter((type) => type === 'session.warning')).toHaveLength(1);

    await t.request({ method: 'POST', url: url(id, '/renew') }); // deadline T0 + 56 min
    t.clock.set(T0 + 51 * MINUTE - 1);
    expect(await pump()).toBe(0);
    t.clock.set(T0 + 51 * MINUTE);
    expect(await pump()).toBe(1);

    await t.request({ method: 'PATCH', url: url(id, '/timeout'), body: { timeoutMinutes: 40 } }); // anchor T0 + 26: deadline T0 + 66
    t.clock.set(T0 + 61 * MINUTE);
    expect(await pump()).toBe(1);
    t.clock.set(T0 + 66 * MINUTE);
    expect(await pump()).toBe(1);
    expect(await types(id)).toEqual([
      'session.created',
      'session.warning',
      'session.activity',
      'session.renewed',
      'session.warning',
      'session.timeout_updated',
      'session.warning',
      'session.expired',
    ]);
  });

  it('warns at once, dated the change, when a change brings the warning moment to now or before: never before the change', async () => {
    const warnings = async (id: string) => (await t.store.listEvents({ sessionId: id, limit: 100 })).filter((event) => event.type === 'session.warning');
    const expectWarnedAt = async (id: string, at: number) => {
      const [warning, ...more] = await warnings(id);
      expect(more).toEqual([]);
      expect(warning).toMatchObject({ occurredAt: at });
      expect(isEventData(eventView(warning!))).toBe(true);
      expect(warning!.data).toMatchObject({ isNearExpiration: true, timeRemaining: Date.parse((warning!.data as { expiresAt: string }).expiresAt) - at });
      await pump(); // announces no second warning
      expect(await warnings(id)).toHaveLength(1);
    };
    // A threshold at least the timeout, at creation: near expiration from the start.
    const created = await newSession({ timeoutMinutes: 5, warningThresholdMinutes: 10 });
    await expectWarnedAt(created, T0);
    expect(await types(created)).toEqual(['session.created', 'session.warning']);

    // A renewal moving the deadline to within the threshold (a heartbeat, and a message).
    const renewing = await newSession({ timeoutMinutes: 10, warningThresholdMinutes: 60 });
    const message = await newSession({ timeoutMinutes: 10, warningThresholdMinutes: 60 });
    t.clock.set(T0 + 5 * MINUTE);
    await pump(); // nothing: the creations warned
    await t.request({ method: 'POST', url: url(renewing, '/heartbeat') });
    expect((await warnings(renewing)).map((event) => event.occurredAt)).toEqual([T0, T0 + 5 * MINUTE]);
    expect((await warnings(renewing)).at(-1)!.data).toMatchObject({ renewalCount: 1 });
    expect((await t.request({ method: 'POST', url: url(message, '/messages'), body: { content: 'hi' } })).status).toBe(201);
    expect((await types(message)).slice(-3)).toEqual(['message.created', 'session.renewed', 'session.warning']);
    expect((await warnings(message)).at(-1)).toMatchObject({ occurredAt: T0 + 5 * MINUTE });

    // A PATCH of the threshold alone, bringing the warning moment before now.
    const patched = await newSession({ timeoutMinutes: 30 });
    t.clock.set(T0 + 15 * MINUTE);
    await t.request({ method: 'PATCH', url: url(patched, '/timeout'), body: { warningThresholdMinutes: 29 } });
    await expectWarnedAt(patched, T0 + 15 * MINUTE);

    // A warning already due at the same moment before the change is the pump's, dated that moment.
    const pending = await newSession({ timeoutMinutes: 30, warningThresholdMinutes: 5, autoRenew: false });
    t.clock.set(T0 + 15 * MINUTE + 25 * MINUTE + 1);
    await t.request({ method: 'POST', url: url(pending, '/heartbeat') }); // no autoRenew: the deadline stays
    expect(await warnings(pending)).toEqual([]);
    await pump();
    expect(await warnings(pending)).toMatchObject([{ occurredAt: T0 + 15 * MINUTE + 25 * MINUTE }]);
  });

  it('announces, before a change that moves the deadline, the warning its previous deadline was due and the pump had not yet sent', async () => {
    const warnings = async (id: string) => (await t.store.listEvents({ sessionId: id, limit: 100 })).filter((event) => event.type === 'session.warning');
    const heartbeat = await newSession({ timeoutMinutes: 10, warningThresholdMinutes: 5 });
    const message = await newSession({ timeoutMinutes: 10, warningThresholdMinutes: 5 });
    const patched = await newSession({ timeoutMinutes: 10, warningThresholdMinutes: 5 });
    t.clock.set(T0 + 5 * MINUTE + 100); // the warning moment passed 100 ms ago; the pump has not run since
    expect((await t.request({ method: 'POST', url: url(heartbeat, '/heartbeat') })).status).toBe(200);
    expect((await t.request({ method: 'POST', url: url(message, '/messages'), body: { content: 'hi' } })).status).toBe(201);
    expect((await t.request({ method: 'PATCH', url: url(patched, '/timeout'), body: { timeoutMinutes: 60 } })).status).toBe(200);
    expect(await types(heartbeat)).toEqual(['session.created', 'session.warning', 'session.renewed']);
    expect(await types(message)).toEqual(['session.created', 'session.warning', 'message.created', 'session.renewed']);
    expect(await types(patched)).toEqual(['session.created', 'session.warning', 'session.timeout_updated']);
    for (const id of [heartbeat, message, patched]) {
      // Dated its moment, about the deadline it warned of, as the pump would have sent it.
      const [warning] = await warnings(id);
      expect(warning).toMatchObject({ occurredAt: T0 + 5 * MINUTE, data: { expiresAt: iso(T0 + 10 * MINUTE), timeRemaining: 5 * MINUTE, isNearExpiration: true } });
      expect(isEventData(eventView(warning!))).toBe(true);
    }
    await pump(); // nothing more: the new deadlines are far
    expect((await Promise.all([heartbeat, message, patched].map(warnings))).map((list) => list.length)).toEqual([1, 1, 1]);
  });

  it('records one session.expired for a PATCH that expires the session at once, and none later', async () => {
    const id = await newSession({ timeoutMinutes: 60 });
    t.clock.set(T0 + 40 * MINUTE);
    const patched = await t.request({ method: 'PATCH', url: url(id, '/timeout'), body: { timeoutMinutes: 30 } });
    expect(patched.body.status).toBe('expired');
    t.clock.advance(2 * 60 * MINUTE);
    expect(await pump()).toBe(0);
    const events = await t.store.listEvents({ sessionId: id, limit: 100 });
    expect(events.map((event) => [event.type, event.occurredAt])).toEqual([
      ['session.created', T0],
      ['session.timeout_updated', T0 + 40 * MINUTE],
      ['session.expired', T0 + 40 * MINUTE],
    ]);
  });

  it('a PATCH expires the session at once exactly when the new expiresAt is at or before now, not a millisecond earlier', async () => {
    // One millisecond left: still active; the PATCH warns at once (the moved deadline's
    // warning moment has passed), dated the PATCH; the pump expires it on time.
    const early = await newSession({ timeoutMinutes: 60 });
    t.clock.set(T0 + 30 * MINUTE - 1);
    const stillActive = await t.request({ method: 'PATCH', url: url(early, '/timeout'), body: { timeoutMinutes: 30 } });
    expect(stillActive.status).toBe(200);
    expect(stillActive.body).toMatchObject({ status: 'active', timeRemaining: 1, expiresAt: iso(T0 + 30 * MINUTE) });
    expect(await types(early)).toEqual(['session.created', 'session.timeout_updated', 'session.warning']);
    expect((await t.store.listEvents({ sessionId: early, limit: 100 })).at(-1)).toMatchObject({ occurredAt: T0 + 30 * MINUTE - 1 });
    expect(await pump()).toBe(0);
    t.clock.set(T0 + 30 * MINUTE);
    expect(await pump()).toBe(1);
    const events = await t.store.listEvents({ sessionId: early, limit: 100 });
    expect(events.at(-1)).toMatchObject({ type: 'session.expired', occurredAt: T0 + 30 * MINUTE });

    // expiresAt exactly now: expired by the PATCH itself, announced by it, and never again.
    const createdAt = t.clock.now();
    const exact = await newSession({ timeoutMinutes: 60 });
    t.clock.set(createdAt + 30 * MINUTE);
    const expired = await t.request({ method: 'PATCH', url: url(exact, '/timeout'), body: { timeoutMinutes: 30 } });
    expect(expired.status).toBe(200);
    expect(expired.body).toMatchObject({ status: 'expired', timeRemaining: 0, expiresAt: iso(createdAt + 30 * MINUTE) });
    expect(await pump()).toBe(0);
    expect(await types(exact)).toEqual(['session.created', 'session.timeout_updated', 'session.expired']);
  });

  it('fires every due event once, in order of due time, when the clock jumps forward an hour', async () => {
    const a = await newSession({ timeoutMinutes: 30, warningThresholdMinutes: 5 }); // warns +25, expires +30
    t.clock.advance(MINUTE);
    const b = await newSession({ timeoutMinutes: 20, warningThresholdMinutes: 10 }); // warns +11, expires +21
    t.clock.advance(MINUTE);
    const c = await newSession({ timeoutMinutes: 90 }); // warns +87: not due in the jump
    t.clock.advance(60 * MINUTE);
    expect(await pump()).toBe(4);
    expect(await pump()).toBe(0);
    const due = (await log()).filter((event) => event.type === 'session.warning' || event.type === 'session.expired');
    expect(due.map((event) => [event.sessionId, event.type, event.occurredAt - T0])).toEqual([
      [b, 'session.warning', 11 * MINUTE],
      [b, 'session.expired', 21 * MINUTE],
      [a, 'session.warning', 25 * MINUTE],
      [a, 'session.expired', 30 * MINUTE],
    ]);
    expect(due.some((event) => event.sessionId === c)).toBe(false);
  });

  it('announces what fell due while the server was down, once, after it starts again', async () => {
    await t.close();
    const directory = mkdtempSync(join(tmpdir(), 'event-log-'));
    const databasePath = join(directory, 'sessions.db');
    t = await startTestApp({ databasePath });
    agentId = await registerAgent(t);
    const id = await newSession({ timeoutMinutes: 30 });
    await t.close();
    const clock = t.clock;
    clock.advance(3 * 60 * MINUTE);
    t = await startTestApp({ databasePath, clock });
    const started = createEventPump({ store: t.store, clock: t.clock });
    started.start(); // ticks at once
    await started.stop();
    expect(await pump()).toBe(0);
    expect(await types(id)).toEqual(['session.created', 'session.warning', 'session.expired']);
    rmSync(directory, { recursive: true, force: true });
  });

  it('announces, once, the expiry of a session an older server marked expired unannounced (its mark pass, before migration 26)', async () => {
    const id = await newSession({ timeoutMinutes: 30 });
    t.clock.set(T0 + 31 * MINUTE);
    const older = new Database(t.databasePath);
    older.prepare("UPDATE sessions SET status = 'expired' WHERE id = ?").run(id);
    older.close();
    expect(await pump()).toBe(2);
    expect(await pump()).toBe(0);
    expect(await t.sweeper.sweep()).toMatchObject({ announced: 0 });
    expect(await types(id)).toEqual(['session.created', 'session.warning', 'session.expired']);
    // Recorded as announced: a clock stepped back neither revives it nor announces it again.
    expect(await t.store.getSession(id)).toMatchObject({ status: 'expired', announced: 'expiry' });
    t.clock.set(T0 + 10 * MINUTE);
    expect((await t.request({ method: 'POST', url: url(id, '/heartbeat') })).status).toBe(410);
    t.clock.set(T0 + 40 * MINUTE);
    expect(await pump()).toBe(0);
    expect(await types(id)).toEqual(['session.created', 'session.warning', 'session.expired']);
  });

  it('does not announce what the sweeper announced before its purge, twice', async () => {
    const id = await newSession({ timeoutMinutes: 30 });
    t.clock.set(T0 + 31 * MINUTE);
    expect(await t.sweeper.sweep()).toMatchObject({ announced: 2 });
    expect(await pump()).toBe(0);
    expect(await t.sweeper.sweep()).toMatchObject({ announced: 0 });
    expect(await types(id)).toEqual(['session.created', 'session.warning', 'session.expired']);
  });
});

describe('retention', () => {
  it('trims events older than the retention from the log in bounded batches, and keeps the rest', async () => {
    const id = await newSession({ timeoutMinutes: 240 });
    for (let i = 0; i < 6; i += 1) await t.request({ method: 'POST', url: url(id, '/heartbeat') });
    t.clock.advance(2 * 60 * MINUTE);
    await t.request({ method: 'POST', url: '/api/agents', body: { characterJson: { name: 'Later' } } });
    const { createSweeper } = await import('../src/sweeper.js');
    const sweeper = createSweeper({ store: t.store, clock: t.clock, retentionMs: 1440 * MINUTE, intervalMs: 1000, batchSize: 3, eventRetentionMs: 60 * MINUTE, batchBudgetMs: Infinity });
    const report = await sweeper.sweep();
    // agent.created, session.created and six renewals were older than an hour: 3 + 3 + 2.
    expect(report.trimmedEvents).toBe(8);
    expect((await log()).map((event) => event.type)).toEqual(['agent.created']);
    expect((await sweeper.sweep()).trimmedEvents).toBe(0);
    // Ids are never reused after a trim.
    await t.request({ method: 'POST', url: url(id, '/heartbeat') });
    const [kept, next] = await log();
    expect(Number(next!.id)).toBeGreaterThan(Number(kept!.id));
  });

  it('goes on trimming when a batch deletes more events than its size (a transaction recorded them together)', async () => {
    const agent = (n: number) => ({ id: `4b3c2d1e-0f9a-4b8c-8d7e-6f5a4b3c2d2${n}`, name: `Burst ${n}`, settings: {}, createdAt: T0 });
    const burst = (written: { id: string; name: string }) =>
      Array.from({ length: 4 }, () => ({ type: 'agent.created' as const, occurredAt: T0, agentId: written.id, data: { id: written.id, name: written.name } as never }));
    await t.store.insertAgent(agent(1), { events: burst });
    await t.store.insertAgent(agent(2), { events: burst });
    t.clock.advance(2 * 60 * MINUTE);
    const { createSweeper } = await import('../src/sweeper.js');
    const sweeper = createSweeper({ store: t.store, clock: t.clock, retentionMs: 1440 * MINUTE, intervalMs: 1000, batchSize: 3, eventRetentionMs: 60 * MINUTE, batchBudgetMs: Infinity });
    // The beforeEach agent's event, then two transactions of four.
    expect((await sweeper.sweep()).trimmedEvents).toBe(9);
    expect(await log()).toEqual([]);
  });
});

describe('retention, at its edge', () => {
  it('keeps an event younger than the retention even when it is older than now', async () => {
    t.clock.advance(61 * MINUTE);
    await t.request({ method: 'POST', url: '/api/agents', body: { characterJson: { name: 'Recent' } } });
    t.clock.advance(59 * MINUTE);
    const { createSweeper } = await import('../src/sweeper.js');
    const sweeper = createSweeper({ store: t.store, clock: t.clock, retentionMs: 1440 * MINUTE, intervalMs: 1000, batchSize: 3, eventRetentionMs: 60 * MINUTE, batchBudgetMs: Infinity });
    // The beforeEach agent's event is 120 minutes old, Recent's 59.
    expect((await sweeper.sweep()).trimmedEvents).toBe(1);
    expect((await log()).map((event) => (event.data as { name: string }).name)).toEqual(['Recent']);
  });
});

describe('the retention trim on SQLite', () => {
  it('walks the log in id order from the oldest event, stopping at the first inside the retention', async () => {
    const agent = { id: '4b3c2d1e-0f9a-4b8c-8d7e-6f5a4b3c2d1e', name: 'Trim', settings: {}, createdAt: T0 };
    const event = (occurredAt: number) => [{ type: 'agent.created' as const, occurredAt, agentId: agent.id, data: { id: agent.id, name: 'Trim' } as never }];
    await t.store.purgeEvents(T0 + 1, 100); // the beforeEach agent's event
    // Recorded in this order, a transaction each: old, new, then old again (a due event announced late).
    await t.store.insertAgent(agent, { events: () => event(T0 - 3 * MINUTE) });
    await t.store.insertAgent({ ...agent, id: '4b3c2d1e-0f9a-4b8c-8d7e-6f5a4b3c2d1a' }, { events: () => event(T0) });
    await t.store.insertAgent({ ...agent, id: '4b3c2d1e-0f9a-4b8c-8d7e-6f5a4b3c2d1b' }, { events: () => event(T0 - 2 * MINUTE) });
    const [oldest, , late] = await log();
    expect(await t.store.purgeEvents(T0 - MINUTE, 100)).toBe(1);
    expect((await log()).map((kept) => kept.id)).not.toContain(oldest!.id);
    expect((await log()).map((kept) => kept.id)).toContain(late!.id); // kept until the events recorded before it go
    expect(await t.store.purgeEvents(T0 + 1, 100)).toBe(2);
    expect(await log()).toEqual([]);
  });

  it("keeps a transaction's events together: they go when the newest of them is out of the retention", async () => {
    const agent = { id: '4b3c2d1e-0f9a-4b8c-8d7e-6f5a4b3c2d1f', name: 'Trim', settings: {}, createdAt: T0 };
    const event = (occurredAt: number) => ({ type: 'agent.created' as const, occurredAt, agentId: agent.id, data: { id: agent.id, name: 'Trim' } as never });
    await t.store.purgeEvents(T0 + 1, 100); // the beforeEach agent's event
    await t.store.insertAgent(agent, { events: () => [event(T0 - 3 * MINUTE), event(T0), event(T0 - 2 * MINUTE)] });
    expect(await t.store.purgeEvents(T0 - MINUTE, 100)).toBe(0);
    expect(await log()).toHaveLength(3);
    expect(await t.store.purgeEvents(T0 + 1, 1)).toBe(3);
    expect(await log()).toEqual([]);
  });
});

describe('events handed to listeners on SQLite', () => {
  const agent = (n: number) => ({ id: `4b3c2d1e-0f9a-4b8c-8d7e-6f5a4b3c2d1${n}`, name: `Hand ${n}`, settings: {}, createdAt: T0 });
  const created = (written: { id: string; name: string }) => [{ type: 'agent.created' as const, occurredAt: T0, agentId: written.id, data: { id: written.id, name: written.name } as never }];

  it("hands a commit's events over when someone listened at its commit, those of writes before the subscription too", async () => {
    const calls: Array<EventRecord[] | undefined> = [];
    let unsubscribe = () => {};
    // One commit: the first write's event is recorded before anyone listens; the second
    // write subscribes while its transaction is open.
    await Promise.all([
      t.store.insertAgent(agent(1), { events: created }),
      t.store.insertAgent(agent(2), {
        events: (written) => {
          const stop = t.store.onEventsWritten((committed) => calls.push(committed));
          unsubscribe = () => void stop();
          return created(written);
        },
      }),
    ]);
    unsubscribe();
    expect(calls).toEqual([(await log()).slice(-2)]);
  });

  it('tells a listener that subscribed after the commit was written (nobody listened then) to read the log', async () => {
    const calls: Array<EventRecord[] | undefined> = [];
    let unsubscribe = () => {};
    await t.store.insertAgent(agent(1), {
      events: (written) => {
        // Runs after the transaction, before the write is answered.
        queueMicrotask(() => {
          const stop = t.store.onEventsWritten((committed) => calls.push(committed));
          unsubscribe = () => void stop();
        });
        return created(written);
      },
    });
    expect(calls).toEqual([undefined]);
    await t.store.insertAgent(agent(2), { events: created });
    unsubscribe();
    expect(calls).toEqual([undefined, (await log()).slice(-1)]);
  });
});

describe('the due-time index', () => {
  it('finds the due announcements in a range of due_announcements, each session by its rowid, never a scan or a sort', () => {
    const db = new Database(':memory:');
    migrate(db);
    const plan = db
      .prepare(`EXPLAIN QUERY PLAN ${DUE_SESSIONS_SQL}`)
      .all({ now: 0, limit: 10 })
      .map((row) => (row as { detail: string }).detail)
      .join(' | ');
    expect(plan).toMatch(/SEARCH due USING PRIMARY KEY \(due_at<\?\) \| SEARCH sessions USING INTEGER PRIMARY KEY \(rowid=\?\)/);
    expect(plan).not.toMatch(/TEMP B-TREE|SCAN/);
    db.close();
  });
});
