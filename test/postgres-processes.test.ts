// Real server processes on one PostgreSQL database, at the sizes issue 13 names: three
// processes share heartbeats, messages and the expiry of a session (one event, one webhook
// delivery); then one is killed with SIGKILL under load and the others go on, with every
// acknowledged write, taking over its webhook lease once the lease runs out. The
// processes are started once for the file; time moves through their clock-offset header
// (shift-clock.ts), never by sleeping through a timeout.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './helpers/postgres-database.js';
import { cleanUpServerProcesses, fetchChecked, startServer } from './helpers/server-process.js';
import { CLOCK_OFFSET_HEADER } from './helpers/shift-clock.js';
import { receiver } from './helpers/webhook-receiver.js';
import { until } from './helpers/until.js';

/** Polling other processes: every 50 ms. */
const POLL = { everyMs: 50 };

const shiftClock = new URL('./helpers/shift-clock.ts', import.meta.url).href;
const USER = '5f1c1c8e-4a3b-4c7d-9e2f-0a1b2c3d4e5f';
const MINUTE = 60_000;

/** Runs `task(i)` for i in [0, n), at most `width` at a time; the results in order of i. */
async function inParallel<T>(n: number, width: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = [];
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < n; i = next++) results[i] = await task(i);
  };
  await Promise.all(Array.from({ length: width }, worker));
  return results;
}

describe('three server processes on one PostgreSQL database', { timeout: 60_000 }, () => {
  let database: TestDatabase;
  let servers: Array<ReturnType<typeof startServer>>;
  let urls: string[];
  const at = (i: number) => urls[i % urls.length]!;
  /** Sets a process's clock to run `ms` ahead (a cheap request carries the header). */
  const setClock = (i: number, ms: number) => fetchChecked(urls[i]!, 'GET', '/api/messaging/sessions/health', undefined, { [CLOCK_OFFSET_HEADER]: String(ms) });

  beforeAll(async () => {
    database = await createTestDatabase();
    servers = [0, 1, 2].map(() => startServer({ DATABASE_URL: database.url, DATABASE_POOL_SIZE: '4', LOG_LEVEL: 'warn' }, { preload: [shiftClock] }));
    urls = await Promise.all(servers.map((server) => server.listening));
  }, 60_000);
  afterAll(async () => {
    cleanUpServerProcesses();
    await database?.drop();
  });

  async function newAgent(via: string, id = randomUUID()): Promise<string> {
    expect((await fetchChecked(via, 'POST', '/api/agents', { characterJson: { id, name: 'Eliza' } })).status).toBe(201);
    return id;
  }

  async function newSession(via: string, agentId: string, timeoutConfig?: object): Promise<string> {
    const created = await fetchChecked(via, 'POST', '/api/messaging/sessions', { agentId, userId: USER, ...(timeoutConfig ? { timeoutConfig } : {}) });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    return created.body.sessionId;
  }

  it('300 concurrent heartbeats spread over the three give renewalCount 300', async () => {
    const sessionId = await newSession(at(0), await newAgent(at(1)));
    const beats = await inParallel(300, 60, (i) => fetchChecked(at(i), 'POST', `/api/messaging/sessions/${sessionId}/heartbeat`));
    expect(beats.map((beat) => beat.status)).toEqual(Array(300).fill(200));
    for (const url of urls) expect((await fetchChecked(url, 'GET', `/api/messaging/sessions/${sessionId}`)).body.renewalCount).toBe(300);
  });

  it('1,000 messages sent through the three page back through them exactly once each, in order', async () => {
    const sessionId = await newSession(at(2), await newAgent(at(0)));
    const sent = await inParallel(1000, 60, (i) => fetchChecked(at(i), 'POST', `/api/messaging/sessions/${sessionId}/messages`, { content: `m${i}` }));
    expect(sent.filter((answer) => answer.status !== 201)).toEqual([]);

    const seen: Array<{ id: string; createdAt: string }> = [];
    let before: string | undefined;
    for (let page = 0; page < 20; page++) {
      const query = `limit=100${before ? `&before=${encodeURIComponent(before)}` : ''}`;
      const answer = await fetchChecked(at(page), 'GET', `/api/messaging/sessions/${sessionId}/messages?${query}`);
      expect(answer.status).toBe(200);
      seen.push(...answer.body.messages);
      if (!answer.body.hasMore) break;
      before = answer.body.cursors.before;
    }
    expect(seen).toHaveLength(1000);
    expect(new Set(seen.map((m) => m.id)).size).toBe(1000);
    expect(seen.map((m) => m.id).sort()).toEqual(sent.map((answer) => answer.body.id).sort());
    const times = seen.map((m) => Date.parse(m.createdAt));
    expect(times).toEqual([...times].sort((x, y) => y - x)); // newest first
  });

  it('a session expired while all three sweep: exactly one session.expired event and one webhook delivery', async () => {
    const hook = await receiver(() => 204);
    try {
      const agentId = await newAgent(at(0));
      const webhook = await fetchChecked(at(1), 'POST', '/api/webhooks', { url: hook.url, types: ['session.expired'], agentId });
      expect(webhook.status).toBe(201);
      const sessionId = await newSession(at(2), agentId, { timeoutMinutes: 5, autoRenew: false });
      const expiresAt = Date.parse((await fetchChecked(at(0), 'GET', `/api/messaging/sessions/${sessionId}`)).body.expiresAt);

      // The clocks are moved one after the other, so they disagree meanwhile: they cross the
      // expiry in steps smaller than a webhook lease (15 s), as NTP-synchronised clocks would.
      // (A process 5 minutes behind another would see the other's lease as long expired.)
      const setClockTo = (i: number, time: number) => setClock(i, time - Date.now());
      for (let i = 0; i < 3; i++) await setClockTo(i, expiresAt - 3_000);
      for (let i = 0; i < 3; i++) await setClockTo(i, expiresAt + 3_000);
      await until('the expiry is delivered', () => hook.received.length > 0, POLL);
      // Each dispatcher ticks every second and on every commit: give the other two time to post twice.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(hook.received).toHaveLength(1);
      expect(JSON.parse(hook.received[0]!.body)).toMatchObject({ type: 'session.expired', sessionId });

      const admin = new pg.Client({ connectionString: database.url });
      await admin.connect();
      try {
        const { rows } = await admin.query("SELECT id FROM events WHERE type = 'session.expired' AND session_id = $1", [sessionId]);
        expect(rows).toHaveLength(1);
        expect(hook.received[0]!.headers['webhook-id']).toBe(`evt_${rows[0].id}`);
      } finally {
        await admin.end();
      }
      const deliveries = await fetchChecked(at(0), 'GET', `/api/webhooks/${webhook.body.id}/deliveries`);
      expect(deliveries.body.deliveries).toHaveLength(1);
      expect(deliveries.body.deliveries[0]).toMatchObject({ attempt: 1, statusCode: 204, error: null });
    } finally {
      await hook.close();
    }
  });

  // Last: it kills the process that claimed the webhook. The other two go on.
  it('kill -9 of one process under load: the others go on, every acknowledged write is there, its webhook lease is taken over once it runs out', async () => {
    // The clocks run 3 s apart, well within what a lease allows for (15 s): whichever process
    // claims the webhook first hangs on its POST, and the POST's webhook-timestamp names it.
    const base = 10 * MINUTE;
    const offsets = [base, base + 3_000, base + 6_000];
    for (const i of [0, 1, 2]) await setClock(i, offsets[i]!);
    const agentId = await newAgent(urls[0]!);
    const sessionId = await newSession(urls[0]!, agentId);
    const hook = await receiver((n) => (n === 1 ? 'hang' : 204));
    try {
      const webhook = await fetchChecked(urls[1]!, 'POST', '/api/webhooks', { url: hook.url, types: ['agent.created'] });
      expect(webhook.status).toBe(201);
      await newAgent(urls[1]!);
      await until('a process posts the event', () => hook.received.length === 1, POLL);
      // Its clock's lead over real time, from the POST's timestamp (whole seconds, so up to 1 s short).
      const lead = Number(hook.received[0]!.headers['webhook-timestamp']) * 1000 - Date.now();
      const VICTIM = offsets.reduce((nearest, offset, i) => (Math.abs(offset - lead - 500) < Math.abs(offsets[nearest]! - lead - 500) ? i : nearest), 0);
      const survivors = [0, 1, 2].filter((i) => i !== VICTIM);

      // Load on the victim and on a survivor: sessions created and messages sent, each
      // acknowledged answer noted. The victim is killed while it runs.
      const acknowledged = { sessions: [] as string[], messages: [] as string[] };
      const survivorStatuses: number[] = [];
      let killed = false;
      const load = async (url: string, survivor: boolean) => {
        for (let n = 0; n < 400 && !(survivor && killed && n > 40); n++) {
          try {
            const write = n % 2 === 0
              ? await fetchChecked(url, 'POST', '/api/messaging/sessions', { agentId, userId: USER })
              : await fetchChecked(url, 'POST', `/api/messaging/sessions/${sessionId}/messages`, { content: `m${n}` });
            if (survivor) survivorStatuses.push(write.status);
            if (write.status === 201) (n % 2 === 0 ? acknowledged.sessions : acknowledged.messages).push(write.body.sessionId ?? write.body.id);
          } catch (error) {
            if (survivor || !killed) throw error; // only the dead process may fail to answer
            return;
          }
        }
      };
      const running = [...Array.from({ length: 4 }, () => load(urls[VICTIM]!, false)), ...Array.from({ length: 4 }, () => load(urls[survivors[0]!]!, true))];
      await until('some writes are acknowledged', () => acknowledged.sessions.length + acknowledged.messages.length >= 40, POLL);
      killed = true;
      servers[VICTIM]!.child.kill('SIGKILL');
      await servers[VICTIM]!.exited;
      await Promise.all(running);

      expect(survivorStatuses.length).toBeGreaterThan(0);
      expect(survivorStatuses.filter((status) => status !== 201)).toEqual([]);
      const reader = urls[survivors[1]!]!;
      for (const id of acknowledged.sessions) expect((await fetchChecked(reader, 'GET', `/api/messaging/sessions/${id}`)).status).toBe(200);
      const stored = new Set<string>();
      let before: string | undefined;
      for (let page = 0; page < 20; page++) {
        const answer = await fetchChecked(reader, 'GET', `/api/messaging/sessions/${sessionId}/messages?limit=100${before ? `&before=${before}` : ''}`);
        for (const message of answer.body.messages) stored.add(message.id);
        if (!answer.body.hasMore) break;
        before = encodeURIComponent(answer.body.cursors.before);
      }
      expect(acknowledged.messages.filter((id) => !stored.has(id))).toEqual([]);

      // The survivors' clocks read 2 s after the victim's claim (the POST's timestamp, whole
      // seconds, is up to 1 s before it), however long the load took: its lease (the attempt's
      // 10 s and a 5 s margin) still holds, so nobody posts; past it, one survivor posts the same event.
      const claimedAt = Number(hook.received[0]!.headers['webhook-timestamp']) * 1000;
      const setClockTo = (i: number, time: number) => setClock(i, time - Date.now());
      for (const i of survivors) await setClockTo(i, claimedAt + 2_000);
      await new Promise((resolve) => setTimeout(resolve, 1200));
      expect(hook.received).toHaveLength(1);
      for (const i of survivors) await setClockTo(i, claimedAt + 20_000);
      await until('a survivor takes the webhook over', () => hook.received.length >= 2, POLL);
      await new Promise((resolve) => setTimeout(resolve, 1200));
      expect(hook.received.map((r) => r.headers['webhook-id'])).toEqual([hook.received[0]!.headers['webhook-id'], hook.received[0]!.headers['webhook-id']]);
      const deliveries = await fetchChecked(reader, 'GET', `/api/webhooks/${webhook.body.id}/deliveries`);
      expect(deliveries.body.deliveries).toMatchObject([{ attempt: 1, statusCode: 204, error: null }]);
    } finally {
      await hook.close();
    }
  });
});
