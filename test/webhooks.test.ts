// Webhooks against a real receiver on 127.0.0.1: signatures checked with the
// `standardwebhooks` package, order, retries with backoff on 500 and on timeout (the
// clock injected), disabling after 24 h of failure, resuming after a restart, scopes.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import Database from 'better-sqlite3';
import { Webhook } from 'standardwebhooks';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateApiKey, hashApiKey } from '../src/api-keys.js';
import { createWebhookDispatcher, retryDelayMs } from '../src/events/webhook-delivery.js';
import type { Store } from '../src/storage/store.js';
import { specSchemaValidator } from '../src/spec.js';
import { openSqliteStore } from '../src/storage/sqlite/sqlite-store.js';
import { fakeClock, MINUTE } from './helpers/fake-clock.js';
import { USER_ID, createSession, registerAgent } from './helpers/fixtures.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';
import { until } from './helpers/until.js';
import { receiver } from './helpers/webhook-receiver.js';

/** A full garbage collection now (V8's gc, exposed at run time). */
function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

const isEvent = specSchemaValidator('Event');
let t: TestApp;
let agentId: string;
const cleanups: Array<() => Promise<void> | void> = [];

beforeEach(async () => {
  // Near the real time: receivers reject signatures more than 5 minutes off.
  t = await startTestApp({ clock: fakeClock(Date.now()) });
  agentId = await registerAgent(t);
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
  await t.close();
});

async function subscribe(body: Record<string, unknown>, headers: Record<string, string> = {}) {
  const response = await t.request({ method: 'POST', url: '/api/webhooks', body, headers });
  expect(response.status).toBe(201);
  return response.body as { id: string; secret: string; createdByKey?: string };
}
const dispatcher = (
  options: { timeoutMs?: number; privateAddresses?: 'allow' | 'deny'; stopGraceMs?: number; random?: () => number; onAttempt?: (outcome: string) => void } = {},
) =>
  createWebhookDispatcher({ store: t.store, clock: t.clock, random: () => 0.5, ...options });
const deliveries = async (id: string) => (await t.request({ method: 'GET', url: `/api/webhooks/${id}/deliveries` })).body.deliveries;

describe('webhooks', () => {
  it('ticks woken together (a commit wakes one each) read the webhooks once, and each event is still posted once', async () => {
    const hook = await receiver(() => 200);
    cleanups.push(hook.close);
    await subscribe({ url: hook.url, types: ['session.created'] });
    await createSession(t, { agentId });
    let reads = 0;
    const store = { ...t.store, listWebhooks: () => (reads++, t.store.listWebhooks()) };
    const send = createWebhookDispatcher({ store, clock: t.clock, random: () => 0.5 });
    await Promise.all([send.tick(), send.tick(), send.tick()]);
    expect(reads).toBe(1);
    expect(hook.received).toHaveLength(1);
    await send.tick();
    expect(reads).toBe(2);
  });

  it('delivers again when started again after a stop', async () => {
    const hook = await receiver(() => 200);
    cleanups.push(hook.close);
    await subscribe({ url: hook.url, agentId });
    const send = createWebhookDispatcher({ store: t.store, clock: t.clock, random: () => 0.5, intervalMs: 3_600_000 });
    send.start();
    await send.stop();
    send.start();
    cleanups.push(() => send.stop());
    await createSession(t, { agentId }); // the commit wakes it
    await until('the delivery', () => hook.received.length === 1, { ms: 5_000, everyMs: 5 });
  });

  it('reads once when the idle window ends, however many commits came within it', async () => {
    let reads = 0;
    const store = { ...t.store, listWebhooks: () => (reads++, t.store.listWebhooks()) };
    const send = createWebhookDispatcher({ store, clock: t.clock, random: () => 0.5, intervalMs: 3_600_000, idleRereadMs: 3_000 });
    send.start();
    cleanups.push(() => send.stop());
    await until('the first read', () => reads === 1); // none: idle for 3 s from now
    for (let i = 0; i < 10; i += 1) await createSession(t, { agentId }); // 10 commits, well within the 3 s
    expect(reads).toBe(1);
    await until('the read at the end of the window', () => reads === 2, { everyMs: 5 });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(reads).toBe(2);
  });

  it('reads no webhooks per commit while there are none, and reads again within idleRereadMs of a commit', async () => {
    let reads = 0;
    const store = { ...t.store, listWebhooks: () => (reads++, t.store.listWebhooks()) };
    // The periodic tick out of the way (an hour): only commits wake these dispatchers.
    const dispatcherWith = (idleRereadMs: number) => {
      const send = createWebhookDispatcher({ store, clock: t.clock, random: () => 0.5, intervalMs: 3_600_000, idleRereadMs });
      send.start();
      cleanups.push(() => send.stop());
      return send;
    };
    const idleForAnHour = dispatcherWith(3_600_000);
    await until('the first read', () => reads === 1); // start() reads once: none
    for (let i = 0; i < 30; i += 1) await createSession(t, { agentId });
    expect(reads).toBe(1);
    await idleForAnHour.stop();

    const rereading = dispatcherWith(50);
    await until('the first read', () => reads === 2);
    const hook = await receiver(() => 200);
    cleanups.push(hook.close);
    await subscribe({ url: hook.url, types: ['session.created'] });
    const { sessionId } = await createSession(t, { agentId }); // within 50 ms of the empty read, or after
    await until('the first delivery', () => hook.received.length === 1, { everyMs: 5 });
    expect(JSON.parse(hook.received[0]!.body)).toMatchObject({ type: 'session.created', sessionId });
    // With a webhook known, each commit reads again at once.
    const before = reads;
    await createSession(t, { agentId });
    await until('the second delivery', () => hook.received.length === 2, { everyMs: 5 });
    expect(reads).toBeGreaterThan(before);
    await rereading.stop();
  });

  it('POSTs each later event, signed so that standardwebhooks verifies it, in order; shows the secret once', async () => {
    const hook = await receiver(() => 200);
    cleanups.push(hook.close);
    const created = await subscribe({ url: hook.url, types: ['session.created', 'message.created'] });
    expect(created.secret).toMatch(/^whsec_/);
    const { sessionId } = await createSession(t, { agentId });
    await t.request({ method: 'POST', url: `/api/messaging/sessions/${sessionId}/messages`, body: { content: 'one' } });
    await t.request({ method: 'POST', url: `/api/messaging/sessions/${sessionId}/messages`, body: { content: 'two' } });
    await dispatcher().tick();

    const verifier = new Webhook(created.secret);
    const events = hook.received.map(({ headers, body }) => verifier.verify(body, headers as Record<string, string>) as any);
    expect(events.map((event) => [event.type, event.data.content])).toEqual([
      ['session.created', undefined],
      ['message.created', 'one'],
      ['message.created', 'two'],
    ]);
    expect(events.every((event) => isEvent(event))).toBe(true);
    expect(hook.received[0]!.headers['webhook-id']).toBe(`evt_${events[0].id}`);
    // A tampered body fails verification.
    expect(() => verifier.verify(hook.received[0]!.body.replace('session', 'Session'), hook.received[0]!.headers as Record<string, string>)).toThrow();

    const listed = await t.request({ method: 'GET', url: '/api/webhooks' });
    expect(listed.body.webhooks).toEqual([{ id: created.id, url: hook.url, types: ['session.created', 'message.created'], status: 'active', createdAt: expect.any(String) }]);
    expect(listed.rawBody).not.toContain(created.secret);
    expect((await deliveries(created.id)).map((d: any) => [d.attempt, d.statusCode, d.error, d.nextRetryAt])).toEqual([
      [1, 200, null, null],
      [1, 200, null, null],
      [1, 200, null, null],
    ]);
    const limited = await t.request({ method: 'GET', url: `/api/webhooks/${created.id}/deliveries?limit=2` });
    expect(limited.body.deliveries).toHaveLength(2);
  });

  it('dates an attempt when its request was sent, and times its retry from when the answer came', async () => {
    const hook = await receiver((n) => (t.clock.advance(3000), n === 1 ? 500 : 200)); // each answer takes 3 s
    cleanups.push(hook.close);
    const created = await subscribe({ url: hook.url, agentId });
    await createSession(t, { agentId });
    const send = dispatcher();
    const sentAt = t.clock.now();
    await send.tick();
    const [failed] = await deliveries(created.id);
    expect(failed).toMatchObject({ attempt: 1, statusCode: 500, attemptedAt: new Date(sentAt).toISOString() });
    expect(failed.nextRetryAt).toBe(new Date(sentAt + 3000 + retryDelayMs(1, 0.5)).toISOString());
    t.clock.set(Date.parse(failed.nextRetryAt));
    const retriedAt = t.clock.now();
    await send.tick();
    expect((await deliveries(created.id))[0]).toMatchObject({ attempt: 2, statusCode: 200, attemptedAt: new Date(retriedAt).toISOString() });
  });

  it('retries a 500 and a timeout with growing backoff before any later event, then delivers in order', async () => {
    const hook = await receiver((n) => (n === 1 ? 500 : n === 2 ? 'hang' : 200));
    cleanups.push(hook.close);
    const created = await subscribe({ url: hook.url, agentId });
    await createSession(t, { agentId });
    await createSession(t, { agentId });
    const send = dispatcher({ timeoutMs: 300 });
    await send.tick(); // 500
    const first = retryDelayMs(1, 0.5);
    t.clock.advance(first - 1);
    await send.tick(); // not yet
    expect(hook.received).toHaveLength(1);
    t.clock.advance(1);
    await send.tick(); // no answer in time
    expect(hook.received).toHaveLength(2);
    const second = retryDelayMs(2, 0.5);
    expect(second).toBeGreaterThan(first);
    t.clock.advance(second);
    await send.tick(); // both delivered, in order
    const ids = hook.received.map((r) => JSON.parse(r.body).id);
    expect(ids[0]).toBe(ids[1]);
    expect(ids[1]).toBe(ids[2]);
    expect(Number(ids[3])).toBeGreaterThan(Number(ids[2]));
    expect(hook.received).toHaveLength(4);
    const attempts = (await deliveries(created.id)).reverse();
    expect(attempts.map((d: any) => [d.attempt, d.statusCode, d.error])).toEqual([
      [1, 500, 'HTTP 500'],
      [2, null, 'no answer within 300 ms'],
      [3, 200, null],
      [1, 200, null],
    ]);
    expect(attempts[0].nextRetryAt).not.toBeNull();
  });

  it('gives up on a receiver that never answers after its timeout, a garbage collection meanwhile or not (Node 20 collects the timeout inside AbortSignal.any: the attempt then waited 300 s)', async () => {
    const hook = await receiver(() => 'hang');
    cleanups.push(hook.close);
    const created = await subscribe({ url: hook.url, agentId });
    await createSession(t, { agentId });
    const ticking = dispatcher({ timeoutMs: 300 }).tick();
    await until('the receiver has the attempt', () => hook.received.length === 1);
    collectGarbage();
    await ticking;
    expect(await deliveries(created.id)).toMatchObject([{ attempt: 1, statusCode: null, error: 'no answer within 300 ms' }]);
  });

  it('waits out the whole backoff after a failure: no retry on the ticks right after it, nor at the largest jitter before its time', async () => {
    for (const random of [0, 0.5, 0.999_999]) {
      const hook = await receiver((n) => (n === 1 ? 500 : 200));
      cleanups.push(hook.close);
      const created = await subscribe({ url: hook.url, agentId });
      await createSession(t, { agentId });
      const send = dispatcher({ random: () => random });
      await send.tick(); // 500
      const wait = retryDelayMs(1, random);
      for (const passed of [0, 1, Math.floor(wait / 2), wait - 1]) {
        t.clock.set(Date.parse((await deliveries(created.id))[0].attemptedAt) + passed);
        await send.tick();
        expect(hook.received, `random ${random}, ${passed} ms after the failure`).toHaveLength(1);
      }
      t.clock.advance(1);
      await send.tick();
      expect(hook.received, `random ${random}, at the retry`).toHaveLength(2);
      await t.request({ method: 'DELETE', url: `/api/webhooks/${created.id}` });
    }
  });

  it('disables a webhook that has failed for 24 hours, and says so', async () => {
    const hook = await receiver(() => 503);
    cleanups.push(hook.close);
    const created = await subscribe({ url: hook.url });
    await createSession(t, { agentId });
    const outcomes: string[] = [];
    const send = dispatcher({ onAttempt: (outcome) => outcomes.push(outcome) });
    for (let hours = 0; hours <= 25; hours += 1) {
      await send.tick();
      t.clock.advance(60 * MINUTE + 1);
    }
    const [listed] = (await t.request({ method: 'GET', url: '/api/webhooks' })).body.webhooks;
    expect(listed).toMatchObject({ id: created.id, status: 'disabled', failingSince: expect.any(String), disabledAt: expect.any(String) });
    expect(Date.parse(listed.disabledAt) - Date.parse(listed.failingSince)).toBeGreaterThanOrEqual(24 * 60 * MINUTE);
    // The attempt that disabled it says so (sessions_api_webhook_deliveries_total{outcome="disabled"}).
    expect(outcomes.at(-1)).toBe('disabled');
    expect(outcomes.slice(0, -1).every((outcome) => outcome === 'failed')).toBe(true);
    const count = hook.received.length;
    t.clock.advance(60 * MINUTE);
    await send.tick();
    expect(hook.received).toHaveLength(count);
  });

  it('resumes pending deliveries after a restart', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'webhooks-'));
    cleanups.push(() => rmSync(directory, { recursive: true, force: true }));
    await t.close();
    const databasePath = join(directory, 'sessions.db');
    t = await startTestApp({ databasePath, clock: fakeClock(Date.now()) });
    agentId = await registerAgent(t);
    const down = await receiver(() => 500);
    const created = await subscribe({ url: down.url });
    await createSession(t, { agentId });
    await dispatcher().tick();
    await down.close();
    await t.close();

    const up = await receiver(() => 200);
    cleanups.push(up.close);
    t = await startTestApp({ databasePath, clock: fakeClock(Date.now() + 60 * MINUTE) });
    // The same URL cannot be reused on another port: point the stored webhook at the new receiver.
    const db = (await import('better-sqlite3')).default(databasePath);
    db.prepare('UPDATE webhooks SET url = ? WHERE id = ?').run(up.url, created.id);
    db.close();
    await dispatcher().tick();
    expect(up.received.map((r) => JSON.parse(r.body).type)).toEqual(['session.created']);
  });

  it('stops after its grace under a receiver that does not answer, recording no attempt: the event goes again', async () => {
    const hook = await receiver((n) => (n === 1 ? 'hang' : 200));
    cleanups.push(() => hook.close());
    const created = await subscribe({ url: hook.url, agentId });
    await createSession(t, { agentId });
    const stopping = dispatcher({ timeoutMs: 600_000, stopGraceMs: 100 }); // stop must not wait this out
    stopping.start();
    await until('the first POST is under way', async () => hook.received.length === 1);
    await stopping.stop();
    expect(await deliveries(created.id)).toEqual([]);

    await dispatcher().tick();
    expect(hook.received.map((r) => r.headers['webhook-id'])).toEqual([hook.received[0]!.headers['webhook-id'], hook.received[0]!.headers['webhook-id']]);
    expect(await deliveries(created.id)).toMatchObject([{ attempt: 1, statusCode: 200 }]);
  });

  it('lets a POST under way finish when it stops, recording it: a restart does not send that event again', async () => {
    const hook = await receiver(async () => {
      await new Promise((resolve) => setTimeout(resolve, 300));
      return 204;
    });
    cleanups.push(() => hook.close());
    const created = await subscribe({ url: hook.url, agentId });
    await createSession(t, { agentId });
    await createSession(t, { agentId });
    const stopping = dispatcher();
    stopping.start();
    await until('the first POST is under way', async () => hook.received.length === 1);
    await stopping.stop();
    expect(await deliveries(created.id)).toMatchObject([{ attempt: 1, statusCode: 204 }]);
    // The next start sends the second event only.
    await dispatcher().tick();
    expect(hook.received.map((r) => JSON.parse(r.body).type)).toEqual(['session.created', 'session.created']);
    expect(new Set(hook.received.map((r) => r.headers['webhook-id'])).size).toBe(2);
  });

  it('gives back, when it stops, the claims of deliveries it finished before: a restart goes on at once (it waited out each claim, up to 15 s after the last delivery)', async () => {
    const hook = await receiver(() => 204);
    cleanups.push(() => hook.close());
    const created = await subscribe({ url: hook.url, agentId });
    const other = await subscribe({ url: hook.url, agentId, types: ['session.ended'] });
    await createSession(t, { agentId });
    const before = dispatcher();
    await before.tick(); // delivered, nothing under way; the claims last 15 s more
    expect(hook.received).toHaveLength(1);
    await before.stop();
    await createSession(t, { agentId });
    const after = dispatcher(); // another holder: the next start, the same clock
    await after.tick();
    cleanups.push(() => after.stop());
    expect(hook.received.map((r) => JSON.parse(r.body).type)).toEqual(['session.created', 'session.created']);
    expect(await deliveries(created.id)).toHaveLength(2);
    expect(await deliveries(other.id)).toEqual([]);
  });

  it('stops all the same when giving a claim back fails, passing the failure to onError (the claim then runs out, as before)', async () => {
    const hook = await receiver(() => 204);
    cleanups.push(() => hook.close());
    await subscribe({ url: hook.url, agentId });
    await createSession(t, { agentId });
    let failing = false;
    const store = { ...t.store, claimWebhook: (...args: Parameters<Store['claimWebhook']>) => (failing ? Promise.reject(new Error('storage down')) : t.store.claimWebhook(...args)) };
    const errors: unknown[] = [];
    const send = createWebhookDispatcher({ store, clock: t.clock, random: () => 0.5, onError: (error) => errors.push(error) });
    await send.tick();
    expect(hook.received).toHaveLength(1);
    failing = true;
    await expect(send.stop()).resolves.toBeUndefined();
    expect(errors.map(String)).toEqual(['Error: storage down']);
  });

  it('stops delivering to a webhook deleted during an attempt: that attempt is its last', async () => {
    let id = '';
    const hook = await receiver(async (n) => {
      if (n === 1) expect((await t.request({ method: 'DELETE', url: `/api/webhooks/${id}` })).status).toBe(200);
      return 200;
    });
    cleanups.push(hook.close);
    ({ id } = await subscribe({ url: hook.url }));
    const { sessionId } = await createSession(t, { agentId });
    for (const content of ['one', 'two']) await t.request({ method: 'POST', url: `/api/messaging/sessions/${sessionId}/messages`, body: { content } });
    await dispatcher().tick();
    expect(hook.received.map(({ body }) => JSON.parse(body).type)).toEqual(['session.created']);
    expect((await t.request({ method: 'GET', url: `/api/webhooks/${id}/deliveries` })).status).toBe(404);
  });

  it('refuses a URL that is not http(s), has no host or carries credentials, and an unknown agent; an unknown webhook is 404', async () => {
    const undeliverable = ['http://', 'https://', 'http://:80/', 'http:///path', 'http://127.0.0.1:99999/x', 'http://127.0.0.1:0/x', 'http://127.0.0.1:25/x', 'http://hooks.example.com:6000/x', 'http://user:secret@127.0.0.1/x', 'https://:secret@hooks.example.com/x'];
    for (const url of ['ftp://example.com/hook', 'javascript:alert(1)', 'file:///etc/passwd', 'not a url', ...undeliverable]) {
      const refused = await t.request({ method: 'POST', url: '/api/webhooks', body: { url } });
      expect(refused.status, url).toBe(400);
      expect(refused.body.error.details).toMatch(/body\/url/);
      expect(refused.rawBody).not.toContain('secret@');
    }
    const repeated = await t.request({ method: 'POST', url: '/api/webhooks', body: { url: 'https://hooks.example.com/x', types: ['session.created', 'session.created'] } });
    expect(repeated.status).toBe(400);
    expect(repeated.body.error.details).toMatch(/^body\/types /);
    const unknownAgent = await t.request({ method: 'POST', url: '/api/webhooks', body: { url: 'https://hooks.example.com/x', agentId: randomUUID() } });
    expect(unknownAgent.status).toBe(404);
    expect(unknownAgent.body.error).toMatchObject({ code: 'AGENT_NOT_FOUND', details: expect.stringMatching(/^body\/agentId /) });
    expect((await t.request({ method: 'GET', url: '/api/webhooks' })).body.webhooks).toEqual([]);
    const unknown = randomUUID();
    for (const request of [{ method: 'DELETE' as const, url: `/api/webhooks/${unknown}` }, { method: 'GET' as const, url: `/api/webhooks/${unknown}/deliveries` }]) {
      const refused = await t.request(request);
      expect(refused.status).toBe(404);
      expect(refused.body.error).toEqual({ code: 'WEBHOOK_NOT_FOUND', message: 'Webhook not found', details: `params/webhookId ${unknown} does not exist` });
    }
    const created = await subscribe({ url: 'https://hooks.example.com/x' });
    expect((await t.request({ method: 'DELETE', url: `/api/webhooks/${created.id}` })).body).toEqual({ success: true, message: 'Webhook deleted' });
    expect((await t.request({ method: 'DELETE', url: `/api/webhooks/${created.id}` })).status).toBe(404);
    // Two at once: the one that deleted it answers 200, the other 404.
    const raced = await subscribe({ url: 'https://hooks.example.com/y' });
    const answers = await Promise.all([1, 2].map(() => t.request({ method: 'DELETE', url: `/api/webhooks/${raced.id}` })));
    expect(answers.map((answer) => answer.status).sort()).toEqual([200, 404]);
    expect(answers.find((answer) => answer.status === 404)!.body.error).toEqual({ code: 'WEBHOOK_NOT_FOUND', message: 'Webhook not found', details: `params/webhookId ${raced.id} does not exist` });
  });

  it('replays POST /api/webhooks under the same Idempotency-Key, creating one webhook', async () => {
    const headers = { 'idempotency-key': 'hook-1' };
    const first = await t.request({ method: 'POST', url: '/api/webhooks', body: { url: 'https://hooks.example.com/a' }, headers });
    const again = await t.request({ method: 'POST', url: '/api/webhooks', body: { url: 'https://hooks.example.com/a' }, headers });
    expect(again.status).toBe(201);
    expect(again.body).toEqual(first.body);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect((await t.request({ method: 'GET', url: '/api/webhooks' })).body.webhooks).toHaveLength(1);
  });

  it("lets a key bound to agents manage only its own webhooks, which carry only its agents' events", async () => {
    const ADMIN_KEY = 'admin-key-for-webhook-tests-01';
    await t.close();
    t = await startTestApp({ clock: fakeClock(Date.now()), access: { apiKeys: [ADMIN_KEY] } });
    const admin = { 'x-api-key': ADMIN_KEY };
    const agent = async () => (await t.request({ method: 'POST', url: '/api/agents', headers: admin, body: { characterJson: { name: 'A' } } })).body.data.character.id as string;
    const [mine, theirs] = [await agent(), await agent()];
    const key = generateApiKey();
    await t.store.insertApiKey({ id: randomUUID(), name: 'scoped', keyHash: hashApiKey(key), admin: false, agentIds: [mine], createdAt: 0 });
    const scoped = { 'x-api-key': key };
    const hook = await receiver(() => 200);
    cleanups.push(hook.close);

    const adminHook = await subscribe({ url: 'https://hooks.example.com/admin' }, admin);
    // An admin's webhook stays the admin's, even one carrying only this key's agent.
    const adminHookOfMine = await subscribe({ url: 'https://hooks.example.com/admin-mine', agentId: mine }, admin);
    const own = await subscribe({ url: hook.url }, scoped);
    // Another key bound within the same agents: its webhooks are visible to this one.
    const sibling = generateApiKey();
    await t.store.insertApiKey({ id: randomUUID(), name: 'sibling', keyHash: hashApiKey(sibling), admin: false, agentIds: [mine], createdAt: 0 });
    const siblings = await subscribe({ url: 'https://hooks.example.com/sibling' }, { 'x-api-key': sibling });
    expect((await t.request({ method: 'POST', url: '/api/webhooks', headers: scoped, body: { url: hook.url, agentId: theirs } })).status).toBe(404);
    expect((await t.request({ method: 'GET', url: '/api/webhooks', headers: scoped })).body.webhooks.map((w: any) => w.id)).toEqual([own.id, siblings.id]);
    expect((await t.request({ method: 'GET', url: '/api/webhooks', headers: admin })).body.webhooks.map((w: any) => w.id)).toEqual([adminHook.id, adminHookOfMine.id, own.id, siblings.id]);
    expect((await t.request({ method: 'DELETE', url: `/api/webhooks/${siblings.id}`, headers: scoped })).status).toBe(200);
    expect((await t.request({ method: 'DELETE', url: `/api/webhooks/${adminHook.id}`, headers: scoped })).status).toBe(404);

    await t.request({ method: 'POST', url: '/api/messaging/sessions', headers: admin, body: { agentId: theirs, userId: USER_ID } });
    await t.request({ method: 'POST', url: '/api/messaging/sessions', headers: admin, body: { agentId: mine, userId: USER_ID } });
    await createWebhookDispatcher({ store: t.store, clock: t.clock, timeoutMs: 300 }).tick();
    expect(hook.received.map((r) => JSON.parse(r.body).agentId)).toEqual([mine]);
  });

  it('holds a key bound to agents to WEBHOOKS_PER_KEY_MAX webhooks (403 FORBIDDEN, nothing made), each key apart, admin keys not at all; a deleted one frees a place (S17)', async () => {
    const ADMIN_KEY = 'admin-key-for-webhook-tests-03';
    await t.close();
    t = await startTestApp({ clock: fakeClock(Date.now()), access: { apiKeys: [ADMIN_KEY] }, webhooksPerKeyMax: 2 });
    const admin = { 'x-api-key': ADMIN_KEY };
    const agent = (await t.request({ method: 'POST', url: '/api/agents', headers: admin, body: { characterJson: { name: 'A' } } })).body.data.character.id as string;
    const keyed = async (name: string) => {
      const key = generateApiKey();
      await t.store.insertApiKey({ id: randomUUID(), name, keyHash: hashApiKey(key), admin: false, agentIds: [agent], createdAt: 0 });
      return { 'x-api-key': key };
    };
    const [mallory, alice] = [await keyed('mallory'), await keyed('alice')];
    const [first] = [await subscribe({ url: 'https://hooks.example.com/1' }, mallory), await subscribe({ url: 'https://hooks.example.com/2' }, mallory)];
    const refused = await t.request({ method: 'POST', url: '/api/webhooks', headers: mallory, body: { url: 'https://hooks.example.com/3' } });
    expect(refused.status).toBe(403);
    expect(refused.body.error).toMatchObject({ code: 'FORBIDDEN', details: 'this API key has the most webhooks a key bound to agents may have (WEBHOOKS_PER_KEY_MAX=2); delete one first' });
    expect((await t.request({ method: 'GET', url: '/api/webhooks', headers: admin })).body.webhooks).toHaveLength(2);
    await subscribe({ url: 'https://hooks.example.com/a' }, alice);
    for (let i = 0; i < 3; i += 1) await subscribe({ url: `https://hooks.example.com/admin-${i}` }, admin);
    expect((await t.request({ method: 'DELETE', url: `/api/webhooks/${first.id}`, headers: mallory })).status).toBe(200);
    await subscribe({ url: 'https://hooks.example.com/3' }, mallory);
    // Creates sent at once by a key with room for none more, and by one with room for one: counted one after another.
    const bob = await keyed('bob');
    const atOnce = await Promise.all(
      [mallory, mallory, bob, bob, bob].map((headers, i) => t.request({ method: 'POST', url: '/api/webhooks', headers, body: { url: `https://hooks.example.com/at-once-${i}` } })),
    );
    expect(atOnce.map((response) => response.status)).toEqual([403, 403, 201, 201, 403]);
  });

  it('R47: a create retried under its Idempotency-Key once the key is at WEBHOOKS_PER_KEY_MAX replays its 201, not 403', async () => {
    const ADMIN_KEY = 'admin-key-for-webhook-tests-04';
    await t.close();
    t = await startTestApp({ clock: fakeClock(Date.now()), access: { apiKeys: [ADMIN_KEY] }, webhooksPerKeyMax: 1 });
    const agent = (await t.request({ method: 'POST', url: '/api/agents', headers: { 'x-api-key': ADMIN_KEY }, body: { characterJson: { name: 'A' } } })).body.data.character.id as string;
    const key = generateApiKey();
    await t.store.insertApiKey({ id: randomUUID(), name: 'k', keyHash: hashApiKey(key), admin: false, agentIds: [agent], createdAt: 0 });
    const headers = { 'x-api-key': key, 'idempotency-key': 'create-once' };
    const first = await t.request({ method: 'POST', url: '/api/webhooks', headers, body: { url: 'https://hooks.example.com/1' } });
    expect(first.status).toBe(201);
    const again = await t.request({ method: 'POST', url: '/api/webhooks', headers, body: { url: 'https://hooks.example.com/1' } });
    expect(again.status).toBe(201);
    expect(again.body.id).toBe(first.body.id);
    expect(again.headers['idempotent-replayed']).toBe('true');
  });

  /** A server with keys on, an agent, and a stored key named `leaked` bound to it. */
  async function withLeakedKey() {
    const ADMIN_KEY = 'admin-key-for-webhook-tests-02';
    await t.close();
    t = await startTestApp({ clock: fakeClock(Date.now()), access: { apiKeys: [ADMIN_KEY] } });
    const admin = { 'x-api-key': ADMIN_KEY };
    const agentId = (await t.request({ method: 'POST', url: '/api/agents', headers: admin, body: { characterJson: { name: 'A' } } })).body.data.character.id as string;
    const key = generateApiKey();
    const keyId = randomUUID();
    await t.store.insertApiKey({ id: keyId, name: 'leaked', keyHash: hashApiKey(key), admin: false, agentIds: [agentId], createdAt: 0 });
    return { admin, agentId, key, keyId };
  }

  it('disables the webhooks of a revoked key: a leaked key cannot keep receiving its agents\' events', async () => {
    const { admin, agentId, key, keyId } = await withLeakedKey();
    const hook = await receiver(() => 200);
    cleanups.push(hook.close);
    const made = await subscribe({ url: hook.url }, { 'x-api-key': key });
    expect(made.createdByKey).toBe(keyId);
    const byAdmin = await subscribe({ url: 'https://hooks.example.com/admin' }, admin);
    expect(byAdmin.createdByKey).toMatch(/^env:[0-9a-f]{16}$/);

    await t.store.revokeApiKey('leaked', t.clock.now());
    const listed = (await t.request({ method: 'GET', url: '/api/webhooks', headers: admin })).body.webhooks;
    expect(listed.map((w: any) => [w.createdByKey, w.status])).toEqual([[keyId, 'disabled'], [byAdmin.createdByKey, 'active']]);
    await t.request({ method: 'POST', url: '/api/messaging/sessions', headers: admin, body: { agentId, userId: USER_ID } });
    await createWebhookDispatcher({ store: t.store, clock: t.clock, timeoutMs: 300 }).tick();
    expect(hook.received).toEqual([]);
  });

  it('refuses (401) a webhook whose key another process revoked while the create waited for the write lock, writing nothing', async () => {
    const { admin, key, keyId } = await withLeakedKey();
    // npm run keys -- revoke leaked: another process, holding the write lock while it revokes.
    const keysCommand = new Database(t.databasePath);
    try {
      keysCommand.exec('BEGIN IMMEDIATE');
      // Authenticated (the key live), the request's insert waits for the lock.
      let inserting = false;
      const insertWebhook = t.store.insertWebhook;
      t.store.insertWebhook = (...args) => ((inserting = true), insertWebhook.apply(t.store, args));
      const creating = t.request({ method: 'POST', url: '/api/webhooks', headers: { 'x-api-key': key }, body: { url: 'https://hooks.example.com/leak' } });
      await until('the insert waits for the lock', () => inserting);
      keysCommand.prepare('UPDATE api_keys SET revoked_at = ? WHERE id = ?').run(t.clock.now(), keyId);
      keysCommand.prepare('UPDATE webhooks SET disabled_at = ? WHERE created_by_key = ? AND disabled_at IS NULL').run(t.clock.now(), keyId);
      keysCommand.exec('COMMIT');
      const created = await creating;
      expect(created.status).toBe(401);
      expect(created.body.error).toMatchObject({ code: 'UNAUTHORIZED', details: 'the API key is not valid' });
      expect(created.headers['www-authenticate']).toBeDefined();
      expect((await t.request({ method: 'GET', url: '/api/webhooks', headers: admin })).body.webhooks).toEqual([]);
    } finally {
      keysCommand.close();
    }
  });

  it('keeps a revoked key\'s webhook disabled when an attempt was under way as it was revoked (its record used to enable it again)', async () => {
    const { admin, agentId, key } = await withLeakedKey();
    let answer: (status: number) => void = () => {};
    const hook = await receiver(() => new Promise<number>((resolve) => (answer = resolve)));
    cleanups.push(hook.close);
    const made = await subscribe({ url: hook.url }, { 'x-api-key': key });
    const status = async () => (await t.request({ method: 'GET', url: '/api/webhooks', headers: admin })).body.webhooks.find((w: { id: string }) => w.id === made.id).status;

    await t.request({ method: 'POST', url: '/api/messaging/sessions', headers: admin, body: { agentId, userId: USER_ID } });
    const send = dispatcher();
    const ticking = send.tick();
    await until('the attempt is under way', () => hook.received.length === 1);
    await t.store.revokeApiKey('leaked', t.clock.now());
    answer(200);
    await ticking;
    expect(await status()).toBe('disabled');
    expect((await t.request({ method: 'GET', url: `/api/webhooks/${made.id}/deliveries`, headers: admin })).body.deliveries).toMatchObject([{ attempt: 1, statusCode: 200 }]);
    await t.request({ method: 'POST', url: '/api/messaging/sessions', headers: admin, body: { agentId, userId: USER_ID } });
    await send.tick();
    expect(hook.received).toHaveLength(1);
  });
});

describe('WEBHOOK_PRIVATE_ADDRESSES=deny', () => {
  it('refuses a webhook to a private address or to this machine when it is made', async () => {
    const strict = await startTestApp({ webhookPrivateAddresses: 'deny' });
    cleanups.push(() => strict.close());
    const inside = ['http://127.0.0.1:8080/x', 'http://localhost:8080/x', 'http://api.LOCALHOST./x', 'http://[::1]/x', 'http://[::ffff:10.0.0.1]/x', 'http://169.254.169.254/latest', 'http://10.1.2.3/x', 'http://192.168.1.1/x', 'http://2130706433/x', 'http://0/x'];
    for (const url of inside) {
      const refused = await strict.request({ method: 'POST', url: '/api/webhooks', body: { url } });
      expect(refused.status, url).toBe(400);
      expect(refused.body.error.details, url).toMatch(/^body\/url host .*: this server delivers to public addresses only \(WEBHOOK_PRIVATE_ADDRESSES=deny\)$/);
    }
    // A name is checked when it is looked up, at each delivery.
    expect((await strict.request({ method: 'POST', url: '/api/webhooks', body: { url: 'https://hooks.example.com/x' } })).status).toBe(201);
  });

  it('keeps refusing private addresses by name after a stop and a start, with connections of its own again (not the closed ones)', async () => {
    const hook = await receiver(() => 200);
    cleanups.push(() => hook.close());
    const byName = await subscribe({ url: hook.url.replace('127.0.0.1', 'localhost'), agentId });
    const send = dispatcher({ privateAddresses: 'deny' });
    await createSession(t, { agentId });
    await send.tick();
    await send.stop();
    send.start();
    await send.tick(); // joins the read start() began: nothing due yet
    t.clock.advance(10 * MINUTE); // past the failed attempt's backoff
    await send.tick();
    const refusal = 'fetch failed: localhost resolves to 127.0.0.1, a private or special address (WEBHOOK_PRIVATE_ADDRESSES=deny)';
    expect((await deliveries(byName.id)).map((delivery: { error: string }) => delivery.error)).toEqual([refusal, refusal]);
    expect(hook.received).toEqual([]);
    await send.stop();
    await send.stop(); // once stopped, a stop is nothing more
  });

  it('delivers to no private address, by address or by a name resolving to one (webhooks made before deny included)', async () => {
    const hook = await receiver(() => 200);
    cleanups.push(() => hook.close());
    const byAddress = await subscribe({ url: hook.url, agentId });
    const byName = await subscribe({ url: hook.url.replace('127.0.0.1', 'localhost'), agentId });
    await createSession(t, { agentId });

    await dispatcher({ privateAddresses: 'deny' }).tick();
    expect(hook.received).toEqual([]);
    expect((await deliveries(byAddress.id))[0]).toMatchObject({ statusCode: null, error: '127.0.0.1 is a private or special address (WEBHOOK_PRIVATE_ADDRESSES=deny)' });
    expect((await deliveries(byName.id))[0]).toMatchObject({
      statusCode: null,
      error: 'fetch failed: localhost resolves to 127.0.0.1, a private or special address (WEBHOOK_PRIVATE_ADDRESSES=deny)',
    });

    // The same webhooks, allowed: the receiver answers.
    t.clock.advance(10 * MINUTE);
    await dispatcher().tick();
    expect(hook.received).toHaveLength(2);
  });
});

describe('webhook filters', () => {
  it("carries only the events of the agentId it subscribed to", async () => {
    const hook = await receiver(() => 200);
    cleanups.push(hook.close);
    const other = await registerAgent(t);
    await subscribe({ url: hook.url, agentId });
    await createSession(t, { agentId: other });
    const mine = await createSession(t, { agentId });
    await dispatcher().tick();
    const received = hook.received.map((r) => JSON.parse(r.body));
    expect(received.map((event) => [event.type, event.agentId, event.sessionId])).toEqual([['session.created', agentId, mine.sessionId]]);
  });

  it('claims no webhook (a write) on a tick when no event was recorded past its cursor (S17: thousands of webhooks made every tick write once each)', async () => {
    const hook = await receiver(() => 200);
    cleanups.push(hook.close);
    for (let i = 0; i < 50; i += 1) await subscribe({ url: `${hook.url}/${i}` });
    let claims = 0;
    const store = { ...t.store, claimWebhook: (...args: Parameters<TestApp['store']['claimWebhook']>) => (claims++, t.store.claimWebhook(...args)) };
    const send = createWebhookDispatcher({ store, clock: t.clock, random: () => 0.5 });
    await send.tick();
    await send.tick();
    expect(claims).toBe(0);
    // An event: each claims once to deliver it.
    await createSession(t, { agentId });
    await send.tick();
    expect(claims).toBe(50);
    expect(hook.received).toHaveLength(50);
  });

  it('reads each event once for a filter that matches rarely: a tick walks only what was recorded since the last', async () => {
    const hook = await receiver(() => 200);
    cleanups.push(hook.close);
    const { id } = await subscribe({ url: hook.url, types: ['agent.deleted'] });
    const storedCursor = async () => (await t.store.listWebhooks()).find((webhook) => webhook.id === id)!.cursor;
    const subscribedAt = await storedCursor();
    for (let i = 0; i < 30; i += 1) await createSession(t, { agentId });
    const head = await t.store.lastEventId();
    const readsAfter: Array<string | undefined> = [];
    const store = { ...t.store, listEvents: (query: Parameters<typeof t.store.listEvents>[0]) => (readsAfter.push(query.after), t.store.listEvents(query)) };
    const send = createWebhookDispatcher({ store, clock: t.clock, random: () => 0.5 });
    await send.tick();
    expect(readsAfter).toEqual([subscribedAt]);
    // Nothing recorded since: no read, and no claim (a write: S17).
    await send.tick();
    expect(readsAfter).toHaveLength(1);
    expect(await storedCursor()).toBe(subscribedAt);
    await createSession(t, { agentId });
    await send.tick();
    expect(readsAfter).toEqual([subscribedAt, head]);
    // The claim before that read stored how far the first one went.
    expect(await storedCursor()).toBe(head);
    // A match after all that is still delivered.
    const quiet = await registerAgent(t);
    expect((await t.request({ method: 'DELETE', url: `/api/agents/${quiet}` })).status).toBe(200);
    await send.tick();
    expect(hook.received.map((r) => JSON.parse(r.body)).map((event) => [event.type, event.agentId])).toEqual([['agent.deleted', quiet]]);
  });
});

describe('webhook claims (instances sharing a store)', () => {
  it('two processes on one SQLite file post each event once: each claims the webhook before its attempt', async () => {
    const hook = await receiver(() => 200);
    cleanups.push(hook.close);
    await subscribe({ url: hook.url, types: ['session.created'] });
    for (let i = 0; i < 5; i++) await createSession(t, { agentId });
    const otherProcess = openSqliteStore(t.databasePath);
    cleanups.push(() => otherProcess.close());
    const [one, other] = [t.store, otherProcess].map((store) => createWebhookDispatcher({ store, clock: t.clock, random: () => 0.5 }));
    await Promise.all([one!.tick(), other!.tick()]);
    await Promise.all([one!.tick(), other!.tick()]);
    const ids = hook.received.map((r) => r.headers['webhook-id']);
    expect(ids).toHaveLength(5);
    expect(new Set(ids).size).toBe(5);
  });

  it('an instance whose claim ran out under a slow attempt does not move the cursor back over what the next holder delivered since', async () => {
    let answerFirst: (status: number) => void = () => {};
    const hook = await receiver((n) => (n === 1 ? new Promise<number>((resolve) => (answerFirst = resolve)) : 200));
    cleanups.push(hook.close);
    await subscribe({ url: hook.url, types: ['session.created'] });
    for (let i = 0; i < 3; i++) await createSession(t, { agentId });
    const slow = dispatcher();
    const slowTick = slow.tick();
    await until('the first attempt is under way', () => hook.received.length === 1);
    // Another instance, 20 s on (its clock ahead, or the slow one stalled past its 15 s claim), takes over: all three (the first again).
    const laterClock = fakeClock(t.clock.now() + 20_000);
    const next = createWebhookDispatcher({ store: t.store, clock: laterClock, random: () => 0.5 });
    await next.tick();
    expect(hook.received).toHaveLength(4);
    answerFirst(200);
    await slowTick;
    laterClock.advance(1000);
    await next.tick();
    const ids = hook.received.map((r) => r.headers['webhook-id']);
    expect(ids).toEqual([ids[0], ids[0], ids[2], ids[3]]);
    expect(new Set(ids).size).toBe(3);
  });

  it('claims a webhook for longer than one delivery attempt can take', async () => {
    const hook = await receiver(() => 200);
    cleanups.push(hook.close);
    await subscribe({ url: hook.url });
    await createSession(t, { agentId });
    const claims: Array<{ now: number; until: number }> = [];
    const store = {
      ...t.store,
      claimWebhook: async (id: string, _holder: string, now: number, until: number) => {
        claims.push({ now, until });
        return (await t.store.listWebhooks()).find((webhook) => webhook.id === id);
      },
    };
    for (const timeoutMs of [10_000, 60_000]) {
      claims.length = 0;
      await createWebhookDispatcher({ store, clock: t.clock, random: () => 0.5, timeoutMs }).tick();
      expect(claims.length).toBeGreaterThan(0);
      for (const claim of claims) expect(claim.until - claim.now).toBeGreaterThan(timeoutMs);
    }
  });
});

describe('webhook retries, as the README schedules them', () => {
  it('waits 5 s doubling up to an hour, times a jitter of 0.5-1.5', () => {
    // random 0.5: no jitter.
    expect([1, 2, 3, 4, 10, 11, 12, 40].map((attempt) => retryDelayMs(attempt, 0.5))).toEqual([
      5_000, 10_000, 20_000, 40_000, 2_560_000, 60 * MINUTE, 60 * MINUTE, 60 * MINUTE,
    ]);
    // The jitter's ends: half the wait at random 0, nearly one and a half at random → 1.
    expect(retryDelayMs(1, 0)).toBe(2_500);
    expect(retryDelayMs(2, 0.999_999)).toBe(15_000);
    expect(retryDelayMs(20, 0)).toBe(30 * MINUTE);
  });

  it('treats a redirect as a failed attempt, and follows none', async () => {
    const target = await receiver(() => 200);
    cleanups.push(target.close);
    const { createServer } = await import('node:http');
    let redirected = 0;
    const server = createServer((request, response) => {
      request.resume();
      request.on('end', () => {
        redirected += 1;
        response.writeHead(307, { location: target.url }).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))));
    const { port } = server.address() as { port: number };
    const created = await subscribe({ url: `http://127.0.0.1:${port}/hook`, agentId });
    await createSession(t, { agentId });
    await dispatcher().tick();
    expect(redirected).toBe(1);
    expect(target.received).toHaveLength(0);
    const [attempt] = await deliveries(created.id);
    expect(attempt).toMatchObject({ attempt: 1, statusCode: 307, error: 'HTTP 307' });
    expect(attempt.nextRetryAt).not.toBeNull();
  });

  it('records why a delivery could not be made, not only that fetch failed (the connection refused)', async () => {
    const agentId = await registerAgent(t);
    const { createServer } = await import('node:http');
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as { port: number };
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const created = await subscribe({ url: `http://127.0.0.1:${port}/hook`, agentId });
    await createSession(t, { agentId });
    await dispatcher().tick();
    const [attempt] = await deliveries(created.id);
    expect(attempt).toMatchObject({ attempt: 1, statusCode: null, error: 'fetch failed: ECONNREFUSED' });
  });

  // Two hours, and two seconds: less than any backoff, so no rule about clocks stepped past a backoff decides it.
  it.each([2 * 60 * MINUTE, 2_000])('goes on at once after the clock is set back %i ms: a webhook that is not failing has nothing to wait out', async (step) => {
    const hook = await receiver(() => 204);
    cleanups.push(() => hook.close());
    await subscribe({ url: hook.url, agentId });
    await createSession(t, { agentId });
    const send = dispatcher();
    await send.tick();
    t.clock.advance(-step);
    await createSession(t, { agentId });
    await send.tick();
    expect(hook.received.map((r) => JSON.parse(r.body).type)).toEqual(['session.created', 'session.created']);
  });

  it('goes by the state its claim returns, not a listing read before a failure: no retry before the backoff', async () => {
    const hook = await receiver((n) => (n === 1 ? 500 : 200));
    cleanups.push(() => hook.close());
    await subscribe({ url: hook.url, agentId });
    await createSession(t, { agentId });
    let stale: Awaited<ReturnType<typeof t.store.listWebhooks>> | undefined;
    const store = { ...t.store, listWebhooks: async () => stale ?? t.store.listWebhooks() };
    const send = createWebhookDispatcher({ store, clock: t.clock, random: () => 0.5 });
    const before = await t.store.listWebhooks(); // not failing: due
    await send.tick(); // 500: the retry is 5 s ahead
    stale = before;
    await send.tick();
    expect(hook.received).toHaveLength(1);
  });

  it('retries after its backoff, not after the step, when the clock stepped back since the failure', async () => {
    const hook = await receiver((n) => (n === 1 ? 500 : 200));
    cleanups.push(() => hook.close());
    const created = await subscribe({ url: hook.url, agentId });
    await createSession(t, { agentId });
    await dispatcher().tick();
    expect((await deliveries(created.id))[0]).toMatchObject({ attempt: 1, statusCode: 500 });
    t.clock.advance(-60 * MINUTE); // the retry, 5 s after the failure by the clock then, is an hour and 5 s ahead now
    await dispatcher().tick();
    expect(hook.received).toHaveLength(2);
    expect((await deliveries(created.id))[0]).toMatchObject({ attempt: 2, statusCode: 200 });
  });

  it('does not disable a failing webhook while the clock is set days ahead for a moment', async () => {
    const hook = await receiver(() => 500);
    cleanups.push(() => hook.close());
    const created = await subscribe({ url: hook.url, agentId });
    await createSession(t, { agentId });
    let steady = 0;
    const clock = { now: () => t.clock.now(), monotonic: () => steady };
    const jumpy = createWebhookDispatcher({ store: t.store, clock, random: () => 0.5 });
    await jumpy.tick();
    t.clock.advance(2 * 24 * 60 * MINUTE);
    steady += 1000;
    await jumpy.tick();
    expect(hook.received).toHaveLength(2);
    const [listed] = (await t.request({ method: 'GET', url: '/api/webhooks' })).body.webhooks;
    expect(listed).toMatchObject({ id: created.id, status: 'active' });
  });

  it('disables the webhook at exactly 24 hours of failure', async () => {
    const hook = await receiver(() => 503);
    cleanups.push(hook.close);
    const created = await subscribe({ url: hook.url });
    await createSession(t, { agentId });
    const send = dispatcher();
    await send.tick(); // the first failure: failingSince
    const [failing] = (await t.request({ method: 'GET', url: '/api/webhooks' })).body.webhooks;
    expect(failing.status).not.toBe('disabled');
    t.clock.advance(24 * 60 * MINUTE);
    await send.tick(); // the retry fails exactly 24 hours later
    const [listed] = (await t.request({ method: 'GET', url: '/api/webhooks' })).body.webhooks;
    expect(listed).toMatchObject({ id: created.id, status: 'disabled' });
    expect(Date.parse(listed.disabledAt) - Date.parse(listed.failingSince)).toBe(24 * 60 * MINUTE);
  });

  it('forgets the failing streak once an attempt succeeds: a later failure starts a new 24 hours', async () => {
    const hook = await receiver((n) => (n === 1 ? 500 : n === 2 ? 200 : 500));
    cleanups.push(hook.close);
    await subscribe({ url: hook.url, agentId });
    await createSession(t, { agentId });
    const send = dispatcher();
    await send.tick(); // 500: failing since now
    t.clock.advance(retryDelayMs(1, 0.5));
    await send.tick(); // 200
    const [healed] = (await t.request({ method: 'GET', url: '/api/webhooks' })).body.webhooks;
    expect(healed.status).not.toBe('disabled');
    expect(healed.failingSince).toBeUndefined();
    // A day later, a new event fails: failing since then, not since the first 500.
    t.clock.advance(24 * 60 * MINUTE);
    await createSession(t, { agentId });
    await send.tick();
    expect(hook.received).toHaveLength(3);
    const [listed] = (await t.request({ method: 'GET', url: '/api/webhooks' })).body.webhooks;
    expect(listed.status).not.toBe('disabled');
    expect(Date.parse(listed.failingSince)).toBe(t.clock.now());
  });
});
