import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createEventPump } from '../src/events/due-events.js';
import { MINUTE, T0 } from './helpers/fake-clock.js';
import { USER_ID, createSession, registerAgent } from './helpers/fixtures.js';
import { DEFAULT_RETENTION_MS, startTestApp, type TestApp } from './helpers/test-app.js';

const iso = (ms: number) => new Date(ms).toISOString();
const UNKNOWN_ID = '7d444840-9dc0-41d1-b1f4-7c8f3b0f9c11';

let t: TestApp;
let agentId: string;

beforeEach(async () => {
  t = await startTestApp();
  agentId = await registerAgent(t);
});
afterEach(() => t.close());

const url = (sessionId: string, action = '') => `/api/messaging/sessions/${sessionId}${action}`;
const get = (id: string) => t.request({ method: 'GET', url: url(id) });
const heartbeat = (id: string, body?: unknown) => t.request({ method: 'POST', url: url(id, '/heartbeat'), body });
const renew = (id: string) => t.request({ method: 'POST', url: url(id, '/renew') });
const patch = (id: string, body: unknown) => t.request({ method: 'PATCH', url: url(id, '/timeout'), body });
const end = (id: string) => t.request({ method: 'DELETE', url: url(id) });

async function newSession(timeoutConfig: Record<string, unknown> = {}, metadata?: Record<string, unknown>): Promise<string> {
  return (await createSession(t, { agentId, timeoutConfig, ...(metadata ? { metadata } : {}) })).sessionId;
}

describe('getSession', () => {
  it('answers the full SessionInfo', async () => {
    const id = await newSession({}, { platform: 'web' });
    t.clock.advance(10 * MINUTE);
    const response = await get(id);
    expect(response.status).toBe(200);
    expect(response.body).toEqual({
      sessionId: id,
      agentId,
      userId: USER_ID,
      createdAt: iso(T0),
      lastActivity: iso(T0),
      metadata: { platform: 'web' },
      expiresAt: iso(T0 + 30 * MINUTE),
      timeoutConfig: { timeoutMinutes: 30, autoRenew: true, maxDurationMinutes: 720, warningThresholdMinutes: 5 },
      renewalCount: 0,
      timeRemaining: 20 * MINUTE,
      isNearExpiration: false,
      status: 'active',
    });
  });

  it('is not activity: reading changes nothing', async () => {
    const id = await newSession();
    const stored = await t.store.getSession(id);
    t.clock.advance(MINUTE);
    await get(id);
    await t.request({ method: 'GET', url: '/api/messaging/sessions' });
    await t.request({ method: 'GET', url: '/api/messaging/sessions/health' });
    expect(await t.store.getSession(id)).toEqual(stored);
  });

  it('answers 404 SESSION_NOT_FOUND for an unknown id', async () => {
    const response = await get(UNKNOWN_ID);
    expect(response.status).toBe(404);
    expect(response.body.error.code).toBe('SESSION_NOT_FOUND');
  });

  it.each(['not-a-uuid', '%20', 'x'.repeat(90), `${UNKNOWN_ID}0`])('answers 400 INVALID_REQUEST naming params/sessionId for a malformed id (%s), on every operation on one session', async (id) => {
    const existing = await newSession();
    const before = await t.store.getSession(existing);
    const requests = [
      { method: 'GET', url: url(id) },
      { method: 'DELETE', url: url(id) },
      { method: 'POST', url: url(id, '/heartbeat'), body: {} },
      { method: 'POST', url: url(id, '/renew'), body: {} },
      { method: 'PATCH', url: url(id, '/timeout'), body: { timeoutMinutes: 10 } },
      { method: 'POST', url: url(id, '/messages'), body: { content: 'hi' } },
      { method: 'GET', url: url(id, '/messages') },
      { method: 'GET', url: url(id, '/events') },
    ] as const;
    for (const request of requests) {
      const response = await t.request(request);
      expect(response.status, `${request.method} ${request.url}`).toBe(400);
      expect(response.body.error).toMatchObject({ code: 'INVALID_REQUEST', details: 'params/sessionId must match format "uuid"' });
    }
    expect(await t.store.getSession(existing)).toEqual(before);
  });

  it('answers 404 in the envelope for an id too long for the router, without echoing it', async () => {
    const response = await t.request({ method: 'GET', url: url('x'.repeat(5000)), answeredByRouter: true });
    expect(response.status).toBe(404);
    expect(response.body.error.code).toBe('NOT_FOUND');
    expect(response.rawBody.length).toBeLessThan(1024);
  });

  it('answers 400 in the envelope for a malformed percent-encoding', async () => {
    const response = await t.request({ method: 'GET', url: url('%E0%A4%A'), answeredByRouter: true });
    expect(response.status).toBe(400);
    expect(response.body.error).toMatchObject({ code: 'INVALID_REQUEST', details: 'the URL is not valid (malformed percent-encoding)' });
    // No hook runs for the router's answer: its security headers are set with it.
    expect(response.headers).toMatchObject({ 'x-content-type-options': 'nosniff', 'x-frame-options': 'DENY', 'cache-control': 'no-store' });
  });

  it('shows timeRemaining and isNearExpiration exactly at their boundaries', async () => {
    const id = await newSession({ timeoutMinutes: 30, warningThresholdMinutes: 5 });
    t.clock.set(T0 + 25 * MINUTE - 1);
    expect((await get(id)).body).toMatchObject({ timeRemaining: 5 * MINUTE + 1, isNearExpiration: false });
    t.clock.set(T0 + 25 * MINUTE);
    expect((await get(id)).body).toMatchObject({ timeRemaining: 5 * MINUTE, isNearExpiration: true });
    t.clock.set(T0 + 30 * MINUTE - 1);
    expect((await get(id)).body).toMatchObject({ timeRemaining: 1, isNearExpiration: true, status: 'active' });
    t.clock.set(T0 + 30 * MINUTE);
    expect((await get(id)).status).toBe(410);
  });
});

describe('sessionHeartbeat', () => {
  it('with autoRenew: sets lastActivity, renews from now and counts the renewal', async () => {
    const id = await newSession();
    t.clock.set(T0 + 10 * MINUTE);
    const response = await heartbeat(id);
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({
      lastActivity: iso(T0 + 10 * MINUTE),
      expiresAt: iso(T0 + 40 * MINUTE),
      renewalCount: 1,
      timeRemaining: 30 * MINUTE,
      status: 'active',
    });
    expect((await get(id)).body.renewalCount).toBe(1);
  });

  it('never extends past createdAt + maxDurationMinutes', async () => {
    const id = await newSession({ timeoutMinutes: 30, maxDurationMinutes: 40 });
    t.clock.set(T0 + 20 * MINUTE);
    expect((await heartbeat(id)).body).toMatchObject({ expiresAt: iso(T0 + 40 * MINUTE), renewalCount: 1 });
  });

  it('without autoRenew: sets lastActivity only', async () => {
    const id = await newSession({ autoRenew: false });
    t.clock.set(T0 + 10 * MINUTE);
    expect((await heartbeat(id)).body).toMatchObject({ lastActivity: iso(T0 + 10 * MINUTE), expiresAt: iso(T0 + 30 * MINUTE), renewalCount: 0 });
  });

  it('accepts an empty object, or an empty body of any type, and refuses fields and bodies that are not JSON', async () => {
    const id = await newSession();
    expect((await heartbeat(id, {})).status).toBe(200);
    expect((await t.request({ method: 'POST', url: url(id, '/heartbeat'), body: '', headers: { 'content-type': 'application/json' } })).status).toBe(200);
    // An empty body of any type is no body (fetch sends body: '' as text/plain); a non-empty one is refused.
    for (const contentType of ['text/plain;charset=UTF-8', 'text/event-stream', 'application/x-www-form-urlencoded']) {
      expect((await t.request({ method: 'POST', url: url(id, '/heartbeat'), body: '', headers: { 'content-type': contentType } })).status, contentType).toBe(200);
      const typed = await t.request({ method: 'POST', url: url(id, '/heartbeat'), body: 'x', headers: { 'content-type': contentType } });
      expect(typed.status, contentType).toBe(415);
      expect(typed.body.error.details).toBe(`content-type ${contentType} is not supported; send application/json`);
    }
    const refused = await heartbeat(id, { renew: true });
    expect(refused.status).toBe(400);
    expect(refused.body.error.details).toBe('body/renew is not allowed');
    expect((await get(id)).body.renewalCount).toBe(5);
  });

  it('answers 404 for an unknown session', async () => {
    expect((await heartbeat(UNKNOWN_ID)).body.error.code).toBe('SESSION_NOT_FOUND');
  });
});

describe('renewSession', () => {
  it('renews even when autoRenew is false, leaving lastActivity alone', async () => {
    const id = await newSession({ autoRenew: false });
    t.clock.set(T0 + 10 * MINUTE);
    const response = await renew(id);
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ lastActivity: iso(T0), expiresAt: iso(T0 + 40 * MINUTE), renewalCount: 1 });
  });

  it('answers 422 MAX_DURATION_REACHED once expiry is at the maximum, changing nothing', async () => {
    const id = await newSession({ timeoutMinutes: 30, maxDurationMinutes: 40 });
    t.clock.set(T0 + 5 * MINUTE);
    expect((await renew(id)).body).toMatchObject({ expiresAt: iso(T0 + 35 * MINUTE), renewalCount: 1 });
    t.clock.set(T0 + 15 * MINUTE);
    expect((await renew(id)).body).toMatchObject({ expiresAt: iso(T0 + 40 * MINUTE), renewalCount: 2 });
    const before = await t.store.getSession(id);
    t.clock.set(T0 + 16 * MINUTE);
    const refused = await renew(id);
    expect(refused.status).toBe(422);
    expect(refused.body.error).toEqual({
      code: 'MAX_DURATION_REACHED',
      message: 'Session has reached its maximum duration',
      details: `expiresAt ${iso(T0 + 40 * MINUTE)} is createdAt + maxDurationMinutes (40)`,
    });
    expect(await t.store.getSession(id)).toEqual(before);
    t.clock.set(T0 + 10 * MINUTE); // before the last renewal's anchor as well: still refused
    expect((await renew(id)).status).toBe(422);
    expect(await t.store.getSession(id)).toEqual(before);
  });

  it('takes no fields: a body with one answers 400 naming it, renewing nothing', async () => {
    const id = await newSession();
    t.clock.set(T0 + 10 * MINUTE);
    const before = await t.store.getSession(id);
    const refused = await t.request({ method: 'POST', url: url(id, '/renew'), body: { renew: true } });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatchObject({ code: 'INVALID_REQUEST', details: 'body/renew is not allowed' });
    expect(await t.store.getSession(id)).toEqual(before);
    expect((await t.request({ method: 'POST', url: url(id, '/renew'), body: {} })).body).toMatchObject({ renewalCount: 1, expiresAt: iso(T0 + 40 * MINUTE) });
  });
});

describe('updateSessionTimeout', () => {
  it('changes only the given fields and recomputes expiresAt from the same anchor', async () => {
    const id = await newSession({ timeoutMinutes: 30, autoRenew: true, maxDurationMinutes: 600, warningThresholdMinutes: 7 });
    t.clock.set(T0 + 10 * MINUTE);
    await heartbeat(id); // anchor → T0 + 10 min
    t.clock.set(T0 + 12 * MINUTE);
    const response = await patch(id, { timeoutMinutes: 60 });
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({
      timeoutConfig: { timeoutMinutes: 60, autoRenew: true, maxDurationMinutes: 600, warningThresholdMinutes: 7 },
      expiresAt: iso(T0 + 70 * MINUTE),
      lastActivity: iso(T0 + 10 * MINUTE),
      renewalCount: 1,
    });
    const second = await patch(id, { autoRenew: false });
    expect(second.body.timeoutConfig).toEqual({ timeoutMinutes: 60, autoRenew: false, maxDurationMinutes: 600, warningThresholdMinutes: 7 });
    expect(second.body.expiresAt).toBe(iso(T0 + 70 * MINUTE));
  });

  it('raises maxDurationMinutes to a longer timeout, and caps expiry at a shorter maximum', async () => {
    const id = await newSession({ timeoutMinutes: 30, maxDurationMinutes: 40 });
    expect((await patch(id, { timeoutMinutes: 90 })).body).toMatchObject({
      timeoutConfig: { timeoutMinutes: 90, maxDurationMinutes: 90 },
      expiresAt: iso(T0 + 90 * MINUTE),
    });
    expect((await patch(id, { maxDurationMinutes: 120, timeoutMinutes: 100 })).body.expiresAt).toBe(iso(T0 + 100 * MINUTE));
    expect((await patch(id, { maxDurationMinutes: 5, timeoutMinutes: 5 })).body.expiresAt).toBe(iso(T0 + 5 * MINUTE));
    // Renewed at +2: anchor + 30 would be +32; a maximum of 31 from creation holds it at +31.
    const renewed = await newSession({ timeoutMinutes: 30 });
    t.clock.set(T0 + 2 * MINUTE);
    expect((await renew(renewed)).body.expiresAt).toBe(iso(T0 + 32 * MINUTE));
    expect((await patch(renewed, { maxDurationMinutes: 31 })).body).toMatchObject({
      timeoutConfig: { timeoutMinutes: 30, maxDurationMinutes: 31 },
      expiresAt: iso(T0 + 31 * MINUTE),
    });
  });

  it('expires the session at once when the new expiry is already past, and says so', async () => {
    const id = await newSession({ timeoutMinutes: 30 });
    t.clock.set(T0 + 10 * MINUTE);
    const response = await patch(id, { timeoutMinutes: 10 });
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ status: 'expired', timeRemaining: 0, isNearExpiration: false, expiresAt: iso(T0 + 10 * MINUTE) });
    expect((await t.store.getSession(id))?.status).toBe('expired');
    expect((await get(id)).status).toBe(410);
  });

  it.each([
    [{ timeoutMinutes: 4 }, 'body/timeoutMinutes must be >= 5'],
    [{ timeoutMinutes: '60' }, 'body/timeoutMinutes must be integer'],
    [{ autoRenew: null }, 'body/autoRenew must be boolean'],
    [{ maxDurationMinutes: 20161 }, 'body/maxDurationMinutes must be <= 20160'],
    [{ timeout: 60 }, 'body/timeout is not allowed'],
  ])('refuses %j with 400 and changes nothing', async (body, details) => {
    const id = await newSession();
    const before = await t.store.getSession(id);
    const response = await patch(id, body);
    expect(response.status).toBe(400);
    expect(response.body.error).toMatchObject({ code: 'INVALID_REQUEST', details });
    expect(await t.store.getSession(id)).toEqual(before);
  });

  it('requires a body', async () => {
    const id = await newSession();
    expect((await t.request({ method: 'PATCH', url: url(id, '/timeout') })).body.error.details).toBe('body is required (application/json)');
  });
});

describe('endSession', () => {
  it('deletes the session; later calls answer 404', async () => {
    const id = await newSession();
    const response = await end(id);
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ success: true, message: 'Session ended' });
    expect(t.rowCounts().sessions).toBe(0);
    for (const call of [get, end, heartbeat, renew]) expect((await call(id)).status).toBe(404);
    expect((await patch(id, { timeoutMinutes: 60 })).status).toBe(404);
  });
});

describe('an expired session', () => {
  it('answers 410 SESSION_EXPIRED with expiresAt on every operation, as often as asked', async () => {
    const id = await newSession({ timeoutMinutes: 5 });
    t.clock.set(T0 + 5 * MINUTE);
    const before = await t.store.getSession(id);
    const calls = [() => get(id), () => heartbeat(id), () => renew(id), () => patch(id, { timeoutMinutes: 60 })];
    for (let round = 0; round < 2; round += 1) {
      for (const call of calls) {
        const response = await call();
        expect(response.status).toBe(410);
        expect(response.body.error).toEqual({ code: 'SESSION_EXPIRED', message: 'Session has expired', details: `expiresAt ${iso(T0 + 5 * MINUTE)}` });
      }
    }
    expect(await t.store.getSession(id)).toEqual(before);
  });

  it('can still be deleted (200), with its messages; then it answers 404', async () => {
    const id = await newSession({ timeoutMinutes: 5 });
    await t.request({ method: 'POST', url: `/api/messaging/sessions/${id}/messages`, body: { content: 'kept until deleted' } });
    t.clock.set(T0 + 5 * MINUTE);
    expect((await get(id)).status).toBe(410);
    const ended = await end(id);
    expect(ended.status).toBe(200);
    expect(ended.body).toEqual({ success: true, message: 'Session ended' });
    expect(t.rowCounts()).toMatchObject({ sessions: 0, messages: 0 });
    expect((await get(id)).status).toBe(404);
    expect((await end(id)).status).toBe(404);
  });

  it('still answers 410 after the sweeper marks it, until retention ends; then 404 whether or not it was purged', async () => {
    const id = await newSession({ timeoutMinutes: 5 });
    t.clock.set(T0 + 6 * MINUTE);
    // No pump runs here: the sweeper announces the expiry, which marks the session.
    expect(await t.sweeper.sweep()).toMatchObject({ announced: 1, purged: 0 });
    expect((await t.store.getSession(id))?.status).toBe('expired');
    expect((await get(id)).status).toBe(410);
    t.clock.set(T0 + 5 * MINUTE + DEFAULT_RETENTION_MS - 1);
    expect((await get(id)).status).toBe(410);
    t.clock.set(T0 + 5 * MINUTE + DEFAULT_RETENTION_MS);
    expect((await get(id)).status).toBe(404); // not purged yet: the clock decides
    const events = await t.request({ method: 'GET', url: `/api/messaging/sessions/${id}/events` }); // its stream too: no replay of a session gone
    expect([events.status, events.body.error.code]).toEqual([404, 'SESSION_NOT_FOUND']);
    expect(t.rowCounts().sessions).toBe(1);
    expect(await t.sweeper.sweep()).toMatchObject({ purged: 1 });
    expect(t.rowCounts().sessions).toBe(0);
    expect((await get(id)).status).toBe(404);
  });

  it('answers 404 to a DELETE once retention has ended, purged or not, and leaves the purge to the sweeper', async () => {
    const id = await newSession({ timeoutMinutes: 5 });
    t.clock.set(T0 + 5 * MINUTE + DEFAULT_RETENTION_MS);
    const ended = await end(id);
    expect(ended.status).toBe(404);
    expect(ended.body.error.code).toBe('SESSION_NOT_FOUND');
    expect(t.rowCounts().sessions).toBe(1);
    expect(await t.sweeper.sweep()).toMatchObject({ purged: 1 });
    expect((await end(id)).status).toBe(404);
  });
});

describe('concurrent changes', () => {
  it('lose no update: 50 heartbeats and 20 renewals at once count 70 renewals', async () => {
    const id = await newSession({ timeoutMinutes: 30, maxDurationMinutes: 20160 });
    t.clock.set(T0 + MINUTE);
    const responses = await Promise.all([
      ...Array.from({ length: 50 }, () => heartbeat(id)),
      ...Array.from({ length: 20 }, () => renew(id)),
    ]);
    expect(responses.every((response) => response.status === 200)).toBe(true);
    expect(new Set(responses.map((response) => response.body.renewalCount)).size).toBe(70);
    expect((await get(id)).body.renewalCount).toBe(70);
  });
});

describe('a wall clock stepped back (NTP, a VM resumed), or an instance whose clock is behind', () => {
  it('keeps a session whose expiry was announced expired: 410 to every operation, and no second expiry event', async () => {
    const id = await newSession({ timeoutMinutes: 5, warningThresholdMinutes: 1 });
    t.clock.set(T0 + 6 * MINUTE);
    const pump = createEventPump({ store: t.store, clock: t.clock });
    expect(await pump.tick()).toBe(2); // the warning and the expiry
    expect((await get(id)).status).toBe(410);

    t.clock.set(T0 + MINUTE); // stepped back 5 minutes: by this clock the session is not over
    for (const response of [await get(id), await heartbeat(id), await renew(id), await patch(id, { timeoutMinutes: 60 })]) {
      expect(response.status).toBe(410);
      expect(response.body.error.code).toBe('SESSION_EXPIRED');
    }
    t.clock.set(T0 + 3 * 60 * MINUTE);
    expect(await pump.tick()).toBe(0);
    const events = await t.store.listEvents({ after: '0', limit: 100 });
    expect(events.filter((event) => event.sessionId === id).map((event) => event.type)).toEqual(['session.created', 'session.warning', 'session.expired']);
  });

  it('announces no expiry while the clock is set days ahead for a moment: set right, the session goes on', async () => {
    const id = await newSession({ timeoutMinutes: 60 });
    let steady = 0;
    const pump = createEventPump({ store: t.store, clock: { now: () => t.clock.now(), monotonic: () => steady } });
    t.clock.set(T0 + 5 * 24 * 60 * MINUTE);
    steady += 1000;
    expect(await pump.tick()).toBe(0);
    t.clock.set(T0 + 2000);
    steady += 1000;
    expect((await get(id)).body).toMatchObject({ status: 'active' });
    expect((await heartbeat(id)).status).toBe(200);
  });

  it('moves neither the last activity nor the expiry back: a heartbeat after the step keeps them', async () => {
    const id = await newSession({ timeoutMinutes: 30 });
    t.clock.set(T0 + MINUTE);
    const before = (await heartbeat(id)).body;
    expect(before).toMatchObject({ lastActivity: iso(T0 + MINUTE), expiresAt: iso(T0 + 31 * MINUTE) });
    t.clock.set(T0 - 60 * MINUTE); // an hour back: before the session was created
    const kept = { createdAt: iso(T0), lastActivity: iso(T0 + MINUTE), expiresAt: iso(T0 + 31 * MINUTE), renewalCount: 1 };
    const activity = await heartbeat(id);
    expect(activity.status).toBe(200);
    expect(activity.body).toMatchObject(kept);
    // A manual renewal there extends nothing (its anchor never moves back): 200, nothing counted, no event.
    const eventsBefore = await t.store.listEvents({ limit: 100 });
    const renewal = await renew(id);
    expect(renewal.status).toBe(200);
    expect(renewal.body).toMatchObject(kept);
    expect((await get(id)).body).toMatchObject(kept);
    expect(await t.store.listEvents({ limit: 100 })).toEqual(eventsBefore);
    t.clock.set(T0 + MINUTE); // at the last renewal again: renews
    expect((await renew(id)).body).toMatchObject({ renewalCount: 2, expiresAt: iso(T0 + 31 * MINUTE) });
  });
});
