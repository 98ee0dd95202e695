import { afterEach, describe, expect, it, vi } from 'vitest';
import { openSqliteStore } from '../src/storage/sqlite/sqlite-store.js';
import type { Store } from '../src/storage/store.js';
import { MINUTE, T0 } from './helpers/fake-clock.js';
import { createSession, registerAgent } from './helpers/fixtures.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';

const HEALTH = '/api/messaging/sessions/health';
let t: TestApp;
afterEach(() => t.close());

describe('getSessionsHealth', () => {
  it('is healthy, counting active sessions and those near expiration, with timestamp and uptime', async () => {
    t = await startTestApp();
    const agentId = await registerAgent(t);
    await createSession(t, { agentId, timeoutConfig: { timeoutMinutes: 10, warningThresholdMinutes: 5 } });
    await createSession(t, { agentId, timeoutConfig: { timeoutMinutes: 30 } });
    await createSession(t, { agentId, timeoutConfig: { timeoutMinutes: 5 } });
    t.clock.set(T0 + 5 * MINUTE); // the 10-minute one is 5 minutes from expiry; the 5-minute one has expired
    const response = await t.request({ method: 'GET', url: HEALTH });
    expect(response.status).toBe(200);
    expect(response.body).toEqual({
      status: 'healthy',
      activeSessions: 2,
      expiringSoon: 1,
      timestamp: new Date(T0 + 5 * MINUTE).toISOString(),
      uptime: 300,
    });
  });

  it('is degraded while the last expiry sweep failed, healthy again after one succeeds', async () => {
    const real = openSqliteStore(':memory:');
    let failing = true;
    const store: Store = {
      ...real,
      announceDue: async (now, limit, announce) => {
        if (failing) throw new Error('disk I/O error');
        return real.announceDue(now, limit, announce);
      },
    };
    t = await startTestApp({ store });
    await t.sweeper.sweep();
    expect((await t.request({ method: 'GET', url: HEALTH })).body.status).toBe('degraded');
    failing = false;
    await t.sweeper.sweep();
    expect((await t.request({ method: 'GET', url: HEALTH })).body.status).toBe('healthy');
  });

  it('answers 503 unhealthy, in the error envelope, when the database cannot be read', async () => {
    t = await startTestApp();
    await t.store.close();
    const response = await t.request({ method: 'GET', url: HEALTH });
    expect(response.status).toBe(503);
    expect(response.headers['retry-after']).toBe('1');
    expect(response.body).toEqual({
      success: false,
      error: { code: 'SERVICE_UNAVAILABLE', message: 'Service unavailable', details: expect.stringMatching(/^read: .*not open.*; write: /) },
      status: 'unhealthy',
      failedChecks: ['read', 'write'],
      timestamp: new Date(T0).toISOString(),
      uptime: 0,
    });
  });

  it('needs 1 MiB free on the database file system: exactly that is healthy, a byte less is 503 disk', async () => {
    const real = openSqliteStore(':memory:');
    let free: number | undefined = 1024 * 1024;
    t = await startTestApp({ store: { ...real, freeDiskBytes: async () => free } });
    expect((await t.request({ method: 'GET', url: HEALTH })).body.status).toBe('healthy');
    free = 1024 * 1024 - 1;
    const response = await t.request({ method: 'GET', url: HEALTH });
    expect(response.status).toBe(503);
    expect(response.body).toMatchObject({ status: 'unhealthy', failedChecks: ['disk'] });
    expect(response.body.error.details).toBe(`disk: ${1024 * 1024 - 1} bytes free, under ${1024 * 1024}`);
    free = undefined; // a file system that cannot tell
    expect((await t.request({ method: 'GET', url: HEALTH })).body.status).toBe('healthy');
    // So does a database in memory: it has no disk to fill (not the working folder's).
    await expect(real.freeDiskBytes()).resolves.toBeUndefined();
  });

  it('answers 503 read when the counts fail after every check passed', async () => {
    const real = openSqliteStore(':memory:');
    t = await startTestApp({ store: { ...real, countSessions: async () => Promise.reject(new Error('counts unreadable')) } });
    const response = await t.request({ method: 'GET', url: HEALTH });
    expect(response.status).toBe(503);
    expect(response.headers['retry-after']).toBe('1');
    expect(response.body).toMatchObject({ status: 'unhealthy', failedChecks: ['read'] });
    expect(response.body.error.details).toBe('read: counts unreadable');
  });

  it('gives the write probe at most 1 s, then answers 503 write', async () => {
    const real = openSqliteStore(':memory:');
    t = await startTestApp({ store: { ...real, probeWrite: () => new Promise<void>(() => {}) } });
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const pending = t.request({ method: 'GET', url: HEALTH });
      await vi.advanceTimersByTimeAsync(999);
      let settled = false;
      void pending.then(() => (settled = true));
      await vi.advanceTimersByTimeAsync(0);
      expect(settled).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      const response = await pending;
      expect(response.status).toBe(503);
      expect(response.body).toMatchObject({ status: 'unhealthy', failedChecks: ['write'] });
      expect(response.body.error.details).toBe('write: the write probe did not finish within 1000 ms');
    } finally {
      vi.useRealTimers();
    }
  });
});
