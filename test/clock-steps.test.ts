// The wall clock stepped (not time passing) under a running app, whose clock has a monotonic
// reading as production's does: requests act on the time the background work acts on
// (steadyClock), so a forward step that has not held a minute stores nothing and ends
// nothing (W19: a DELETE of an agent then found its sessions over and deleted them); a step
// back keeps paging exactly-once and the expiry where it was.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createEventPump } from '../src/events/due-events.js';
import { MINUTE, T0, type FakeClock } from './helpers/fake-clock.js';
import { createSession, registerAgent } from './helpers/fixtures.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';

const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const iso = (ms: number) => new Date(ms).toISOString();

/** A wall clock and a monotonic one: pass() is time passing (both move), step() sets the wall clock only. */
function steppingClock(): FakeClock & { pass(ms: number): void; step(ms: number): void } {
  let wall = T0;
  let steady = 0;
  return {
    now: () => wall,
    monotonic: () => steady,
    advance(ms) {
      wall += ms;
      steady += ms;
    },
    set(ms) {
      wall = ms;
    },
    pass(ms) {
      wall += ms;
      steady += ms;
    },
    step(ms) {
      wall += ms;
    },
  };
}

let t: TestApp;
let clock: ReturnType<typeof steppingClock>;
let agentId: string;

beforeEach(async () => {
  clock = steppingClock();
  t = await startTestApp({ clock });
  agentId = await registerAgent(t);
});
afterEach(() => t.close());

const url = (sessionId: string, action = '') => `/api/messaging/sessions/${sessionId}${action}`;
const get = (id: string) => t.request({ method: 'GET', url: url(id) });
const heartbeat = (id: string) => t.request({ method: 'POST', url: url(id, '/heartbeat') });
const patch = (id: string, body: unknown) => t.request({ method: 'PATCH', url: url(id, '/timeout'), body });
const send = (id: string, content: string) => t.request({ method: 'POST', url: url(id, '/messages'), body: { content } });
const newSession = async (timeoutConfig: Record<string, unknown> = {}) => (await createSession(t, { agentId, timeoutConfig })).sessionId as string;
const typesOf = async (sessionId: string) => (await t.store.listEvents({ sessionId, limit: 10_000 })).map((event) => event.type);

describe('a forward step of the wall clock that has not held a minute', () => {
  it('the pump announces nothing during a 2 h step (baseline: steadyWallTime works)', async () => {
    const id = await newSession({ timeoutMinutes: 30 });
    const pump = createEventPump({ store: t.store, clock }); // made before the step, as at startup
    clock.pass(MINUTE);
    clock.step(2 * HOUR);
    expect(await pump.tick()).toBe(0);
    clock.step(-2 * HOUR);
    expect((await get(id)).body.status).toBe('active');
  });

  it('a PATCH during the step does not expire the session for good', async () => {
    const id = await newSession({ timeoutMinutes: 180 });
    clock.pass(10 * MINUTE);
    clock.step(2 * HOUR); // for a few seconds
    // By real time (T0+10 min) a 60-minute timeout leaves 50 minutes.
    const during = await patch(id, { timeoutMinutes: 60 });
    clock.step(-2 * HOUR); // set right again
    clock.pass(1000);
    const after = await get(id);
    expect({ during: during.status, after: after.status, events: await typesOf(id) }).toEqual({
      during: 200,
      after: 200,
      events: ['session.created', 'session.timeout_updated'],
    });
  });

  it('a heartbeat during the step renews to the real time, not the stepped one', async () => {
    const id = await newSession({ timeoutMinutes: 180 });
    clock.pass(10 * MINUTE);
    clock.step(2 * HOUR);
    const during = (await heartbeat(id)).body;
    clock.step(-2 * HOUR);
    clock.pass(1000);
    const after = (await get(id)).body;
    // timeRemaining can never exceed timeoutMinutes by the policy.
    expect(after.timeRemaining).toBeLessThanOrEqual(180 * MINUTE);
    expect({ lastActivity: during.lastActivity, expiresAt: after.expiresAt }).toEqual({
      lastActivity: iso(T0 + 10 * MINUTE),
      expiresAt: iso(T0 + 190 * MINUTE),
    });
  });

  it('a heartbeat during the step fires no warning for a deadline hours away (autoRenew false)', async () => {
    const id = await newSession({ timeoutMinutes: 180, autoRenew: false, warningThresholdMinutes: 5 });
    clock.pass(10 * MINUTE);
    clock.step(167 * MINUTE); // T0+177 min: into the warning window of T0+180 min
    await heartbeat(id);
    clock.step(-167 * MINUTE);
    expect(await typesOf(id)).not.toContain('session.warning');
  });

  it('messages sent during a 2 h step, then after it is set right: createdAt follows real time', async () => {
    const id = await newSession({ timeoutMinutes: 600 });
    clock.pass(MINUTE);
    clock.step(2 * HOUR);
    const during = (await send(id, 'during')).body;
    clock.step(-2 * HOUR);
    clock.pass(10 * MINUTE);
    const after = (await send(id, 'after, 10 min later')).body;
    const session = (await get(id)).body;
    expect({ during: during.createdAt, after: after.createdAt, wasRenewed: after.sessionStatus.wasRenewed, timeRemaining: session.timeRemaining <= 600 * MINUTE }).toEqual({
      during: iso(T0 + MINUTE),
      after: iso(T0 + 11 * MINUTE),
      wasRenewed: true,
      timeRemaining: true,
    });
  });

  it('a session created during a 30-day step lives by the policy once the clock is set right', async () => {
    clock.pass(MINUTE);
    clock.step(30 * DAY);
    const created = await createSession(t, { agentId, timeoutConfig: { timeoutMinutes: 30, maxDurationMinutes: 60 } });
    clock.step(-30 * DAY);
    clock.pass(1000);
    const info = (await get(created.sessionId)).body;
    expect(info.timeRemaining).toBeLessThanOrEqual(30 * MINUTE);
    expect(Date.parse(info.createdAt)).toBeLessThanOrEqual(clock.now());
  });

  it('DELETE /api/agents/{id} without force during a 30-day step still refuses while sessions are active', async () => {
    const ids = await Promise.all(Array.from({ length: 5 }, () => newSession({ timeoutMinutes: 60 })));
    clock.pass(MINUTE);
    clock.step(30 * DAY);
    const response = await t.request({ method: 'DELETE', url: `/api/agents/${agentId}` });
    clock.step(-30 * DAY);
    const after = await Promise.all(ids.map(async (id) => (await get(id)).status));
    expect({ status: response.status, after }).toEqual({ status: 409, after: [200, 200, 200, 200, 200] });
  });
});

describe('a step back of the wall clock', () => {
  it('listSessions by cursor: 10 created, clock back 1 h, 10 more: each once', async () => {
    const first = await Promise.all(Array.from({ length: 10 }, async (_, i) => {
      clock.pass(1000);
      return newSession();
    }));
    clock.step(-HOUR);
    const second: string[] = [];
    for (let i = 0; i < 10; i++) {
      clock.pass(1000);
      second.push(await newSession());
    }
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = (await t.request({ method: 'GET', url: `/api/messaging/sessions?limit=3${cursor ? `&cursor=${cursor}` : ''}` })).body;
      seen.push(...page.sessions.map((s: { sessionId: string }) => s.sessionId));
      cursor = page.nextCursor;
    } while (cursor);
    expect(new Set(seen).size).toBe(20);
    expect(seen.length).toBe(20);
    expect(new Set(seen)).toEqual(new Set([...first, ...second]));
  });

  it('listSessions by cursor while sessions are created after a step back, between pages', async () => {
    for (let i = 0; i < 10; i++) {
      clock.pass(1000);
      await newSession();
    }
    const seen: string[] = [];
    let page = (await t.request({ method: 'GET', url: '/api/messaging/sessions?limit=3' })).body;
    seen.push(...page.sessions.map((s: { sessionId: string }) => s.sessionId));
    clock.step(-HOUR);
    const made: string[] = [];
    while (page.nextCursor) {
      clock.pass(1000);
      made.push(await newSession());
      page = (await t.request({ method: 'GET', url: `/api/messaging/sessions?limit=3&cursor=${page.nextCursor}` })).body;
      seen.push(...page.sessions.map((s: { sessionId: string }) => s.sessionId));
    }
    expect(seen.length).toBe(new Set(seen).size); // nothing repeated
  });

  it('messages paged by cursor across a step back 1 h: each once, newest first by position', async () => {
    const id = await newSession({ timeoutMinutes: 600 });
    const sent: string[] = [];
    for (let i = 0; i < 10; i++) {
      clock.pass(1000);
      sent.push((await send(id, `a${i}`)).body.id);
    }
    clock.step(-HOUR);
    for (let i = 0; i < 10; i++) {
      clock.pass(1000);
      sent.push((await send(id, `b${i}`)).body.id);
    }
    const seen: string[] = [];
    let before: string | undefined;
    for (;;) {
      const page = (await t.request({ method: 'GET', url: `${url(id, '/messages')}?limit=3${before ? `&before=${before}` : ''}` })).body;
      seen.push(...page.messages.map((m: { id: string }) => m.id));
      if (!page.hasMore) break;
      before = String(page.cursors.before);
    }
    expect(seen).toEqual([...sent].reverse());
  });

  it('a step back 1 day then forward again: no duplicate or early expiry/warning events, times never negative', async () => {
    const id = await newSession({ timeoutMinutes: 30 });
    const pump = createEventPump({ store: t.store, clock });
    clock.pass(10 * MINUTE);
    await heartbeat(id);
    clock.step(-DAY);
    const back = (await get(id)).body;
    expect(back.timeRemaining).toBeGreaterThanOrEqual(0);
    await pump.tick();
    clock.step(DAY);
    await pump.tick(); // the pump ticks every 250 ms: it sees the step as it happens
    clock.pass(40 * MINUTE + 61_000); // holds
    await pump.tick();
    await pump.tick();
    const types = await typesOf(id);
    expect(types.filter((type) => type === 'session.expired')).toHaveLength(1);
    expect(types.filter((type) => type === 'session.warning')).toHaveLength(1);
  });
});
