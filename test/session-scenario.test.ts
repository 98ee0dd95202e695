// One session through its whole life, every timestamp checked to the millisecond:
// create → heartbeats → PATCH → renew until 422 → expiry → 410 (twice) → purge → 404.
import { afterEach, expect, it } from 'vitest';
import { MINUTE, T0 } from './helpers/fake-clock.js';
import { USER_ID, createSession, registerAgent } from './helpers/fixtures.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';

const RETENTION = 60 * MINUTE;
const at = (minutes: number, ms = 0) => new Date(T0 + minutes * MINUTE + ms).toISOString();
let t: TestApp;
afterEach(() => t.close());

it('walks one session from creation to purge', async () => {
  t = await startTestApp({ retentionMs: RETENTION });
  const agentId = await registerAgent(t);
  const sessionUrl = (action = '') => `/api/messaging/sessions/${id}${action}`;
  const call = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', action = '', body?: unknown) => t.request({ method, url: sessionUrl(action), body });
  const step = async (minutes: number, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', action: string, body?: unknown, ms = 0) => {
    t.clock.set(T0 + minutes * MINUTE + ms);
    return call(method, action, body);
  };

  const created = await createSession(t, {
    agentId,
    userId: USER_ID,
    timeoutConfig: { timeoutMinutes: 30, autoRenew: true, maxDurationMinutes: 120, warningThresholdMinutes: 5 },
  });
  const id: string = created.sessionId;
  expect(created).toMatchObject({ createdAt: at(0), expiresAt: at(30) });

  // Heartbeats renew from now.
  expect((await step(10, 'POST', '/heartbeat')).body).toMatchObject({ lastActivity: at(10), expiresAt: at(40), renewalCount: 1, timeRemaining: 30 * MINUTE });
  expect((await step(20, 'POST', '/heartbeat', undefined, 7)).body).toMatchObject({ lastActivity: at(20, 7), expiresAt: at(50, 7), renewalCount: 2 });

  // PATCH: same anchor (20 min + 7 ms), new timeout; then autoRenew off leaves expiry alone.
  expect((await step(25, 'PATCH', '/timeout', { timeoutMinutes: 60 })).body).toMatchObject({
    lastActivity: at(20, 7),
    expiresAt: at(80, 7),
    renewalCount: 2,
    timeoutConfig: { timeoutMinutes: 60, autoRenew: true, maxDurationMinutes: 120, warningThresholdMinutes: 5 },
  });
  expect((await step(30, 'PATCH', '/timeout', { autoRenew: false })).body).toMatchObject({ expiresAt: at(80, 7), timeoutConfig: { autoRenew: false } });

  // Without autoRenew a heartbeat is activity only.
  expect((await step(40, 'POST', '/heartbeat')).body).toMatchObject({ lastActivity: at(40), expiresAt: at(80, 7), renewalCount: 2 });

  // Manual renewals, up to the maximum duration (created + 120 min), then 422.
  expect((await step(50, 'POST', '/renew')).body).toMatchObject({ lastActivity: at(40), expiresAt: at(110), renewalCount: 3 });
  expect((await step(70, 'POST', '/renew')).body).toMatchObject({ expiresAt: at(120), renewalCount: 4 });
  const refused = await step(71, 'POST', '/renew');
  expect(refused.status).toBe(422);
  expect(refused.body.error.code).toBe('MAX_DURATION_REACHED');
  expect((await step(71, 'GET', '')).body).toMatchObject({ lastActivity: at(40), expiresAt: at(120), renewalCount: 4, isNearExpiration: false });

  // The warning window, then expiry at exactly 120 min.
  expect((await step(115, 'GET', '')).body).toMatchObject({ timeRemaining: 5 * MINUTE, isNearExpiration: true, status: 'active' });
  expect((await step(119, 'GET', '', undefined, 59_999)).body).toMatchObject({ timeRemaining: 1, isNearExpiration: true });
  for (const request of [() => step(120, 'GET', ''), () => step(120, 'GET', ''), () => step(121, 'POST', '/heartbeat')]) {
    const response = await request();
    expect(response.status).toBe(410);
    expect(response.body.error).toMatchObject({ code: 'SESSION_EXPIRED', details: `expiresAt ${at(120)}` });
  }

  // The sweeper announces its warning and expiry (no pump runs here), which marks it; it
  // still answers 410 until retention ends, then it is purged: 404.
  expect(await t.sweeper.sweep()).toMatchObject({ announced: 2, purged: 0 });
  expect((await step(179, 'GET', '', undefined, 59_999)).status).toBe(410);
  t.clock.set(T0 + 180 * MINUTE);
  expect(await t.sweeper.sweep()).toMatchObject({ announced: 0, purged: 1 });
  const gone = await call('GET');
  expect(gone.status).toBe(404);
  expect(gone.body.error.code).toBe('SESSION_NOT_FOUND');
  expect(t.rowCounts().sessions).toBe(0);
});
