// Server-Sent Events over a real socket: 404 before the stream, replay from positions all
// along the log, live delivery during concurrent writes with nothing missed or
// repeated, the end of an expired session's stream, filters, and API key scopes.
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { generateApiKey, hashApiKey } from '../src/api-keys.js';
import Fastify from 'fastify';
import { createEventPump } from '../src/events/due-events.js';
import { createEventFeed } from '../src/events/event-feed.js';
import { createEventStreams, KEEP_ALIVE_MS, REAUTHORIZE_MS } from '../src/events/event-stream.js';
import { openSqliteStore } from '../src/storage/sqlite/sqlite-store.js';
import type { Store } from '../src/storage/store.js';
import { MINUTE } from './helpers/fake-clock.js';
import { USER_ID, createSession, registerAgent } from './helpers/fixtures.js';
import { openStream, type SseClient } from './helpers/sse-client.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';
import { until } from './helpers/until.js';

let t: TestApp;
let base: string;
let agentId: string;
const streams: SseClient[] = [];

beforeEach(async () => {
  t = await startTestApp();
  base = await t.listen();
  agentId = await registerAgent(t);
});
afterEach(async () => {
  for (const stream of streams.splice(0)) stream.close();
  await t.close();
});

async function stream(path: string, headers: Record<string, string> = {}): Promise<SseClient> {
  const client = await openStream(`${base}${path}`, headers);
  streams.push(client);
  return client;
}
const sessionStream = (id: string, headers: Record<string, string> = {}, query = '') =>
  stream(`/api/messaging/sessions/${id}/events${query}`, headers);
const pump = () => createEventPump({ store: t.store, clock: t.clock }).tick();
const ids = (events: Array<{ id: string }>) => events.map((event) => event.id);

describe('GET /api/messaging/sessions/{sessionId}/events', () => {
  it('answers 404 in the envelope before any stream for an unknown session, and 400 for a malformed Last-Event-ID', async () => {
    const unknown = await t.request({ method: 'GET', url: `/api/messaging/sessions/${randomUUID()}/events` });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('SESSION_NOT_FOUND');
    const { sessionId } = await createSession(t, { agentId });
    const bad = await t.request({ method: 'GET', url: `/api/messaging/sessions/${sessionId}/events`, headers: { 'last-event-id': 'abc' } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details).toMatch(/last-event-id/i);
    const asBody = await t.request({ method: 'POST', url: `/api/messaging/sessions/${sessionId}/heartbeat`, body: 'data: x', headers: { 'content-type': 'text/event-stream' } });
    expect(asBody.status).toBe(415);
    expect(asBody.body.error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    const badQuery = await t.request({ method: 'GET', url: `/api/messaging/sessions/${sessionId}/events?lastEventId=-1` });
    expect(badQuery.status).toBe(400);
    expect(badQuery.body.error.details).toMatch(/lastEventId/);
  });

  it('resumes from positions all along a 500-event log (the first and last 20, every 25th) with exactly the rest, in order, then closes on expiry', async () => {
    const { sessionId } = await createSession(t, { agentId, timeoutConfig: { timeoutMinutes: 30 } });
    for (let i = 0; i < 497; i += 1) await t.store.modifySession(sessionId, (s) => s!, { events: (s) => [{ type: 'message.created', occurredAt: 0, agentId: s.agentId, sessionId: s.id, userId: s.userId, data: { content: `n${i}`, id: randomUUID(), authorId: USER_ID, isAgent: false, createdAt: new Date(0).toISOString(), attachments: [], metadata: {} } }] });
    t.clock.advance(31 * MINUTE);
    expect(await pump()).toBe(2);
    const log = await t.store.listEvents({ sessionId, limit: 1000 });
    expect(log).toHaveLength(500);

    const all = await sessionStream(sessionId);
    await all.ended;
    expect(all.status).toBe(200);
    expect(all.contentType).toMatch(/^text\/event-stream/);
    expect(ids(all.events)).toEqual(ids(log));
    expect(all.events.at(-1)!.type).toBe('session.expired');

    // Not all 500: the replays' cost grows with the square of the log's length, and the
    // positions between behave alike (one page of at most 500 from the cursor).
    const positions = log.map((_event, position) => position).filter((position) => position < 20 || position >= log.length - 20 || position % 25 === 0);
    for (const position of positions) {
      const resumeAfter = log[position]!.id;
      // The header, and every seventh time the query parameter.
      const resumed = position % 7 === 0 ? await sessionStream(sessionId, {}, `?lastEventId=${resumeAfter}`) : await sessionStream(sessionId, { 'last-event-id': resumeAfter });
      await resumed.ended;
      expect(ids(resumed.events), `after position ${position}`).toEqual(ids(log.slice(position + 1)));
      streams.pop();
    }
  }, 120_000);

  it('replays a log longer than one read of the log (500 events), all of it, in order', async () => {
    const { sessionId } = await createSession(t, { agentId, timeoutConfig: { timeoutMinutes: 30 } });
    for (let i = 0; i < 510; i += 1) await t.store.modifySession(sessionId, (s) => s!, { events: (s) => [{ type: 'message.created', occurredAt: 0, agentId: s.agentId, sessionId: s.id, userId: s.userId, data: { content: `n${i}`, id: randomUUID(), authorId: USER_ID, isAgent: false, createdAt: new Date(0).toISOString(), attachments: [], metadata: {} } }] });
    t.clock.advance(31 * MINUTE);
    expect(await pump()).toBe(2);
    const log = await t.store.listEvents({ sessionId, limit: 1000 });
    expect(log).toHaveLength(513);
    const all = await sessionStream(sessionId);
    await all.ended;
    expect(ids(all.events)).toEqual(ids(log));
  });

  it('sends an event recorded during a replay once, though the replay reads it and the live feed has queued it', async () => {
    const { sessionId } = await createSession(t, { agentId, timeoutConfig: { timeoutMinutes: 30 } });
    for (let i = 0; i < 510; i += 1) await t.store.modifySession(sessionId, (s) => s!, { events: (s) => [{ type: 'message.created', occurredAt: 0, agentId: s.agentId, sessionId: s.id, userId: s.userId, data: { content: `n${i}`, id: randomUUID(), authorId: USER_ID, isAgent: false, createdAt: new Date(0).toISOString(), attachments: [], metadata: {} } }] });
    // Between the replay's first page and its second, a heartbeat records an event: the
    // feed hands it to the stream, and the second page reads it too.
    const listEvents = t.store.listEvents;
    let heartbeat: Promise<unknown> | undefined;
    t.store.listEvents = async (query) => {
      const page = await listEvents.call(t.store, query);
      if (heartbeat === undefined && query.sessionId === sessionId && page.length === query.limit) {
        heartbeat = t.request({ method: 'POST', url: `/api/messaging/sessions/${sessionId}/heartbeat` });
        await heartbeat;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      return page;
    };
    try {
      const client = await sessionStream(sessionId);
      await client.waitFor(512);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(heartbeat).toBeDefined();
      expect(ids(client.events)).toEqual(ids(await listEvents.call(t.store, { sessionId, limit: 1000 })));
    } finally {
      t.store.listEvents = listEvents;
    }
  });

  it('reads a replay in pages of about 1 M characters of events, however wide they are (X19: 500 maximal messages were 31 M a page)', async () => {
    const { sessionId } = await createSession(t, { agentId, timeoutConfig: { timeoutMinutes: 30 } });
    const record = (count: number, metadata: Record<string, string>) =>
      t.store.modifySession(sessionId, (s) => s!, {
        events: (s) =>
          Array.from({ length: count }, () => ({ type: 'message.created' as const, occurredAt: 0, agentId: s.agentId, sessionId: s.id, userId: s.userId, data: { content: 'hi', id: randomUUID(), authorId: USER_ID, isAgent: false, createdAt: new Date(0).toISOString(), attachments: [], metadata } })),
      });
    await record(60, {});
    for (let i = 0; i < 40; i += 1) await record(1, { wide: 'x'.repeat(100_000) }); // ~100 K characters each
    const listEvents = t.store.listEvents;
    const pages: number[] = [];
    t.store.listEvents = async (query) => {
      const page = await listEvents.call(t.store, query);
      if (query.sessionId === sessionId) pages.push(page.length);
      return page;
    };
    try {
      const client = await sessionStream(sessionId);
      await client.waitFor(101);
      expect(ids(client.events)).toEqual(ids(await listEvents.call(t.store, { sessionId, limit: 1000 })));
      // The small ones and the first wide ones, then about ten wide ones a page.
      expect(pages.length).toBeGreaterThanOrEqual(4);
      expect(Math.max(...pages.slice(1))).toBeLessThanOrEqual(11);
    } finally {
      t.store.listEvents = listEvents;
    }
  });

  it('reads a Last-Event-ID with leading zeros as the same event id', async () => {
    const { sessionId } = await createSession(t, { agentId });
    for (let i = 0; i < 3; i += 1) await t.request({ method: 'POST', url: `/api/messaging/sessions/${sessionId}/heartbeat` });
    const log = await t.store.listEvents({ sessionId, limit: 100 });
    expect(log).toHaveLength(4);
    const resumed = await sessionStream(sessionId, { 'last-event-id': `000${log[1]!.id}` });
    // From the latest event: nothing to replay, so the padded id is the cursor live events are judged by.
    const caughtUp = await sessionStream(sessionId, { 'last-event-id': `000${log[3]!.id}` });
    // One more, live: the streams send what follows their ids, then it, and nothing before.
    await t.request({ method: 'POST', url: `/api/messaging/sessions/${sessionId}/heartbeat` });
    const [latest] = (await t.store.listEvents({ sessionId, after: log[3]!.id, limit: 10 }));
    expect(ids(await resumed.waitFor(3))).toEqual([...ids(log.slice(2)), latest!.id]);
    expect(ids(await caughtUp.waitFor(1))).toEqual([latest!.id]);
  });

  it('goes live after the replay, and closes after session.ended', async () => {
    const { sessionId } = await createSession(t, { agentId });
    const client = await sessionStream(sessionId);
    await client.waitFor(1);
    await t.request({ method: 'POST', url: `/api/messaging/sessions/${sessionId}/messages`, body: { content: 'hello' } });
    await t.request({ method: 'DELETE', url: `/api/messaging/sessions/${sessionId}` });
    await client.ended;
    expect(client.events.map((event) => event.type)).toEqual(['session.created', 'message.created', 'session.renewed', 'session.ended']);
    expect(client.events[1]!.data).toMatchObject({ content: 'hello' });
  });

  it('resumes a Last-Event-ID beyond the newest event (a database recreated since) from the newest, on both streams', async () => {
    const { sessionId } = await createSession(t, { agentId });
    const newest = (await t.store.lastEventId())!;
    const beyond = String(BigInt(newest) + 1000n);
    const ofSession = await sessionStream(sessionId, { 'last-event-id': beyond });
    const ofAll = await stream(`/api/messaging/sessions/events?lastEventId=${'9'.repeat(19)}`);
    await t.request({ method: 'POST', url: `/api/messaging/sessions/${sessionId}/messages`, body: { content: 'after' } });
    for (const client of [ofSession, ofAll]) {
      await client.waitFor(2);
      expect(client.events.map((event) => event.type)).toEqual(['message.created', 'session.renewed']);
      expect(BigInt(client.events[0]!.id)).toBe(BigInt(newest) + 1n);
    }
  });

  it('sends an expired session its remaining events once the expiry is announced, then closes', async () => {
    const { sessionId } = await createSession(t, { agentId, timeoutConfig: { timeoutMinutes: 5, warningThresholdMinutes: 1 } });
    t.clock.advance(5 * MINUTE); // expired, not yet announced
    const client = await sessionStream(sessionId);
    await client.waitFor(1);
    await pump();
    await client.ended;
    expect(client.events.map((event) => event.type)).toEqual(['session.created', 'session.warning', 'session.expired']);
  });

  it('answers 204, no stream, to a reconnect after an expired session’s last event (EventSource stops there; it reconnected to a 200 that ended at once every 3 s); one that missed some still gets them', async () => {
    const { sessionId } = await createSession(t, { agentId, timeoutConfig: { timeoutMinutes: 5, warningThresholdMinutes: 1 } });
    const other = await createSession(t, { agentId });
    t.clock.advance(5 * MINUTE);
    await pump();
    const all = await sessionStream(sessionId);
    await all.ended;
    expect(all.status).toBe(200);
    const [, warning, expired] = all.events;
    expect(all.events.map((event) => event.type)).toEqual(['session.created', 'session.warning', 'session.expired']);
    // Events of other sessions after it are not this stream's.
    await t.request({ method: 'POST', url: `/api/messaging/sessions/${other.sessionId}/heartbeat` });
    const missedOne = await sessionStream(sessionId, { 'last-event-id': warning!.id });
    await missedOne.ended;
    expect([missedOne.status, missedOne.events.map((event) => event.type)]).toEqual([200, ['session.expired']]);
    for (const [headers, query] of [[{ 'last-event-id': expired!.id }, ''], [{}, `?lastEventId=${expired!.id}`]] as const) {
      const answer = await t.requestText(`/api/messaging/sessions/${sessionId}/events${query}`, { accept: 'text/event-stream', ...headers });
      expect([answer.status, answer.text]).toEqual([204, ""]);
    }
    // Not expired: a stream from its newest event stays open for what comes.
    const live = await sessionStream(other.sessionId, { 'last-event-id': '999999' });
    expect(live.status).toBe(200);
  });
});

describe('HEAD on the streams', () => {
  it("answers the stream's status and headers and ends, opening no stream (the GET routes' HEAD)", async () => {
    const { sessionId } = await createSession(t, { agentId });
    for (const path of ['/api/messaging/sessions/events', `/api/messaging/sessions/${sessionId}/events`]) {
      const response = await fetch(`${base}${path}`, { method: 'HEAD', signal: AbortSignal.timeout(5000) });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
      expect(await response.text()).toBe('');
    }
    const unknown = await fetch(`${base}/api/messaging/sessions/${randomUUID()}/events`, { method: 'HEAD', signal: AbortSignal.timeout(5000) });
    expect(unknown.status).toBe(404);
    // A live stream still sees the next event: the HEADs above left nothing behind in its way.
    const live = await stream('/api/messaging/sessions/events');
    await t.request({ method: 'POST', url: `/api/messaging/sessions/${sessionId}/heartbeat` });
    await live.waitFor(1);
    expect(live.events.map((event) => event.type)).toEqual(['session.renewed']);
  });
});

describe('GET /api/messaging/sessions/events', () => {
  it('delivers every event recorded during concurrent writes, once each, in log order', async () => {
    const before = await t.store.lastEventId();
    const live = await stream('/api/messaging/sessions/events');
    const sessions = await Promise.all(Array.from({ length: 20 }, () => createSession(t, { agentId })));
    // A second client joins mid-way, resuming from an event it saw: it must end up with the same tail.
    const joined = await stream('/api/messaging/sessions/events', { 'last-event-id': (await live.waitFor(5))[4]!.id });
    await Promise.all(
      sessions.flatMap(({ sessionId }) => [
        t.request({ method: 'POST', url: `/api/messaging/sessions/${sessionId}/heartbeat` }),
        t.request({ method: 'POST', url: `/api/messaging/sessions/${sessionId}/messages`, body: { content: 'one' } }),
        t.request({ method: 'POST', url: `/api/messaging/sessions/${sessionId}/messages`, body: { content: 'two' } }),
      ]),
    );
    const marker = await registerAgent(t); // the last event: agent.created
    const log = await t.store.listEvents({ after: before, limit: 10_000 });
    expect(log.at(-1)).toMatchObject({ type: 'agent.created', agentId: marker });
    expect(log).toHaveLength(20 + 20 * 5 + 1);
    await live.waitFor(log.length);
    await joined.waitFor(log.length - 5);
    // Anything repeated or extra would show once the marker is in.
    await new Promise((resolve) => setTimeout(resolve, 1200));
    expect(ids(live.events)).toEqual(ids(log));
    expect(ids(joined.events)).toEqual(ids(log.slice(5)));
  });

  it('filters by agentId, userId and types, and refuses an unknown type naming querystring/types', async () => {
    const other = await registerAgent(t);
    const otherUser = randomUUID();
    const byAgent = await stream(`/api/messaging/sessions/events?agentId=${other}`);
    const byUser = await stream(`/api/messaging/sessions/events?userId=${otherUser}`);
    const byTypes = await stream('/api/messaging/sessions/events?types=session.created,agent.created');
    const mine = await createSession(t, { agentId });
    const theirs = await createSession(t, { agentId: other, userId: otherUser });
    await t.request({ method: 'POST', url: `/api/messaging/sessions/${theirs.sessionId}/heartbeat` });
    await registerAgent(t);
    expect((await byAgent.waitFor(2)).map((e) => [e.sessionId, e.type])).toEqual([
      [theirs.sessionId, 'session.created'],
      [theirs.sessionId, 'session.renewed'],
    ]);
    expect((await byUser.waitFor(2)).map((e) => e.userId)).toEqual([otherUser, otherUser]);
    expect((await byTypes.waitFor(3)).map((e) => [e.type, e.sessionId])).toEqual([
      ['session.created', mine.sessionId],
      ['session.created', theirs.sessionId],
      ['agent.created', undefined],
    ]);

    const refused = await t.request({ method: 'GET', url: '/api/messaging/sessions/events?types=session.created,session.exploded' });
    expect(refused.status).toBe(400);
    expect(refused.body.error.details).toMatch(/^querystring\/types "session.exploded"/);
    const repeated = await t.request({ method: 'GET', url: '/api/messaging/sessions/events?types=agent.created,session.created,agent.created' });
    expect(repeated.status).toBe(400);
    expect(repeated.body.error.details).toBe('querystring/types names agent.created twice');
  });
});

describe('API key scopes', () => {
  const ADMIN_KEY = 'admin-key-for-stream-tests-0123';

  it("shows a key bound to agents only its agents' events, and 404 for another agent's session", async () => {
    await t.close();
    t = await startTestApp({ access: { apiKeys: [ADMIN_KEY] } });
    base = await t.listen();
    const admin = { 'x-api-key': ADMIN_KEY };
    const agent = async () => (await t.request({ method: 'POST', url: '/api/agents', headers: admin, body: { characterJson: { name: 'A' } } })).body.data.character.id as string;
    const [mineAgent, theirAgent] = [await agent(), await agent()];
    const key = generateApiKey();
    await t.store.insertApiKey({ id: randomUUID(), name: 'scoped', keyHash: hashApiKey(key), admin: false, agentIds: [mineAgent], createdAt: 0 });
    const scoped = { 'x-api-key': key };

    const theirs = await t.request({ method: 'POST', url: '/api/messaging/sessions', headers: admin, body: { agentId: theirAgent, userId: USER_ID } });
    const hidden = await t.request({ method: 'GET', url: `/api/messaging/sessions/${theirs.body.sessionId}/events`, headers: scoped });
    expect(hidden.status).toBe(404);
    expect((await t.request({ method: 'GET', url: '/api/messaging/sessions/events' })).status).toBe(401);

    const all = await stream('/api/messaging/sessions/events?lastEventId=0', scoped);
    const mine = await t.request({ method: 'POST', url: '/api/messaging/sessions', headers: admin, body: { agentId: mineAgent, userId: USER_ID } });
    await t.request({ method: 'POST', url: '/api/messaging/sessions', headers: admin, body: { agentId: theirAgent, userId: USER_ID } });
    await t.request({ method: 'POST', url: `/api/messaging/sessions/${mine.body.sessionId}/heartbeat`, headers: admin });
    await all.waitFor(3);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(all.events.map((e) => [e.type, e.agentId])).toEqual([
      ['agent.created', mineAgent],
      ['session.created', mineAgent],
      ['session.renewed', mineAgent],
    ]);
  });

  /** A server with keys on, listening, and a stored admin key named `streamer` (returned). */
  async function withStreamerKey(): Promise<string> {
    await t.close();
    t = await startTestApp({ access: { apiKeys: [ADMIN_KEY] } });
    base = await t.listen();
    const key = generateApiKey();
    await t.store.insertApiKey({ id: randomUUID(), name: 'streamer', keyHash: hashApiKey(key), admin: true, agentIds: [], createdAt: 0 });
    return key;
  }

  it('ends a stream within a second (REAUTHORIZE_MS) of the revocation of the key that opened it; another key\'s stream goes on', async () => {
    const key = await withStreamerKey();
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      const revoked = await stream('/api/messaging/sessions/events', { 'x-api-key': key });
      const kept = await stream('/api/messaging/sessions/events', { 'x-api-key': ADMIN_KEY });
      let ended = false;
      void revoked.ended.then(() => (ended = true));
      await vi.advanceTimersByTimeAsync(REAUTHORIZE_MS);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(ended).toBe(false);
      await t.store.revokeApiKey('streamer', 1);
      await vi.advanceTimersByTimeAsync(REAUTHORIZE_MS);
      await revoked.ended;
      await t.request({ method: 'POST', url: '/api/agents', headers: { 'x-api-key': ADMIN_KEY }, body: { characterJson: { name: 'After' } } });
      await kept.waitFor(1);
      expect(revoked.events).toEqual([]);
      expect(revoked.comments.at(-1)).toBe('the API key that opened this stream was revoked');
    } finally {
      vi.useRealTimers();
    }
  });

  it('checks the key of an open stream one check at a time: a store that does not answer is not asked again every second', async () => {
    const key = await withStreamerKey();
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      await stream('/api/messaging/sessions/events', { 'x-api-key': key });
      let asked = 0;
      let answer: () => void = () => {};
      const findApiKey = t.store.findApiKey;
      t.store.findApiKey = (hash) => {
        asked += 1;
        return new Promise((resolve) => (answer = () => resolve(findApiKey.call(t.store, hash))));
      };
      await vi.advanceTimersByTimeAsync(5 * REAUTHORIZE_MS);
      expect(asked).toBe(1);
      answer();
      await vi.advanceTimersByTimeAsync(REAUTHORIZE_MS);
      expect(asked).toBe(2);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('headers of a stream', () => {
  it('carries CORS, the security headers and the request id, as every other answer does', async () => {
    const origin = 'https://app.example.com';
    const withCors = await startTestApp({ access: { corsOrigins: [origin] } });
    try {
      const url = await withCors.listen();
      const agent = await registerAgent(withCors);
      const { sessionId } = await createSession(withCors, { agentId: agent });
      const json = await fetch(`${url}/api/messaging/sessions/${sessionId}`, { headers: { origin } });
      const client = await openStream(`${url}/api/messaging/sessions/${sessionId}/events`, { origin });
      streams.push(client);
      await client.waitFor(1);
      for (const name of ['access-control-allow-origin', 'access-control-expose-headers', 'vary', 'content-security-policy', 'x-frame-options', 'referrer-policy', 'x-content-type-options']) {
        expect(client.headers.get(name), name).toBe(json.headers.get(name));
      }
      expect(client.headers.get('access-control-allow-origin')).toBe(origin);
      expect(client.headers.get('x-request-id')).toMatch(/\S/);
      expect(client.headers.get('cache-control')).toBe('no-cache, no-transform');
    } finally {
      await withCors.close();
    }
  });
});

describe('keep-alive and shutdown', () => {
  it("keeps the app's streams alive every 15 s, not before", async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      const { sessionId } = await createSession(t, { agentId });
      const client = await sessionStream(sessionId);
      await client.waitFor(1);
      await vi.advanceTimersByTimeAsync(KEEP_ALIVE_MS - 1);
      // A frame written after that moment: any keep-alive due by then would have come before it.
      await t.request({ method: 'POST', url: `/api/messaging/sessions/${sessionId}/heartbeat` });
      await client.waitFor(2);
      expect(client.comments.filter((comment) => comment === 'keep-alive')).toHaveLength(0);
      await vi.advanceTimersByTimeAsync(1);
      await until('a keep-alive comment arrives', () => client.comments.includes('keep-alive'));
    } finally {
      vi.useRealTimers();
    }
  });

  it('sends a comment line every keep-alive interval (15 s by default), and ends open streams when the app closes', async () => {
    expect(KEEP_ALIVE_MS).toBe(15_000);
    const streamsOfApp = createEventStreams({ keepAliveMs: 100, feed: createEventFeed(t.store) });
    const app = Fastify();
    app.get('/stream', async (request, reply) => streamsOfApp.open(request, reply, t.store, { filter: {}, after: '0' }));
    app.addHook('preClose', async () => streamsOfApp.closeAll());
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    const client = await openStream(`${url}/stream`);
    await client.waitFor(1); // agent.created, from the log
    await new Promise((resolve) => setTimeout(resolve, 450));
    expect(client.comments.filter((comment) => comment === 'keep-alive').length).toBeGreaterThanOrEqual(2);
    expect(streamsOfApp.size()).toBe(1);
    await app.close();
    await client.ended;
    expect(client.comments.at(-1)).toBe('the server is shutting down; reconnect with Last-Event-ID');
    expect(streamsOfApp.size()).toBe(0);
  });

  it.each([
    ['whose read of the log fails', () => ({ feed: createEventFeed(t.store), store: { ...t.store, listEvents: async () => Promise.reject(new Error('disk on fire')) } })],
    ['that cannot follow the live log', () => ({ feed: { follow: async () => Promise.reject(new Error('feed on fire')), size: () => 0 }, store: t.store })],
  ])('ends a stream %s, saying so in its last comment', async (_what, failing) => {
    const { feed, store } = failing();
    const streamsOfApp = createEventStreams({ feed });
    const app = Fastify({ logger: false });
    app.get('/stream', async (request, reply) => streamsOfApp.open(request, reply, store, { filter: {}, after: '0' }));
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const client = await openStream(`${url}/stream`);
      await client.ended;
      expect(client.comments.at(-1)).toBe('the stream failed on the server (logged there); reconnect with Last-Event-ID');
      expect(streamsOfApp.size()).toBe(0);
    } finally {
      await app.close();
    }
  });
});

describe('EVENT_STREAMS_PER_KEY_MAX', () => {
  it("refuses a key bound to agents a stream beyond its most with 429 and Retry-After, on both streams, so that one tenant cannot take the instance's every stream (S16); other keys and admin keys go on; one closed frees a place", async () => {
    const ADMIN_KEY = 'admin-key-for-per-key-streams-01';
    const admin = { 'x-api-key': ADMIN_KEY };
    const keyed = await startTestApp({ access: { apiKeys: [ADMIN_KEY] }, app: { maxEventStreams: 10, maxEventStreamsPerKey: 2 } });
    try {
      const url = await keyed.listen();
      const agent = async () => (await keyed.request({ method: 'POST', url: '/api/agents', headers: admin, body: { characterJson: { name: 'A' } } })).body.data.character.id as string;
      const keyFor = async (agent: string) => {
        const key = generateApiKey();
        await keyed.store.insertApiKey({ id: randomUUID(), name: `key-of-${agent}`, keyHash: hashApiKey(key), admin: false, agentIds: [agent], createdAt: 0 });
        return { 'x-api-key': key };
      };
      const [mallory, alice] = [await agent(), await agent()];
      const [malloryKey, aliceKey] = [await keyFor(mallory), await keyFor(alice)];
      const { sessionId } = (await keyed.request({ method: 'POST', url: '/api/messaging/sessions', headers: malloryKey, body: { agentId: mallory, userId: USER_ID } })).body;
      const open = async (path: string, headers: Record<string, string>) => {
        const client = await openStream(`${url}${path}`, headers);
        streams.push(client);
        return client;
      };
      const first = await open(`/api/messaging/sessions/${sessionId}/events`, malloryKey);
      expect(first.status).toBe(200);
      expect((await open('/api/messaging/sessions/events', malloryKey)).status).toBe(200);
      for (const path of [`/api/messaging/sessions/${sessionId}/events`, '/api/messaging/sessions/events']) {
        const refused = await keyed.request({ method: 'GET', url: path, headers: malloryKey });
        expect(refused.status, path).toBe(429);
        expect(refused.body.error.code).toBe('RATE_LIMITED');
        expect(refused.body.error.details).toBe('this API key has the most event streams a key may keep open (EVENT_STREAMS_PER_KEY_MAX=2) open; close one, or retry when one closes');
        expect(refused.headers['retry-after']).toBe('1');
      }
      for (let i = 0; i < 2; i += 1) expect((await open('/api/messaging/sessions/events', aliceKey)).status).toBe(200);
      for (let i = 0; i < 3; i += 1) expect((await open('/api/messaging/sessions/events', admin)).status).toBe(200);
      first.close();
      await until("the closed stream's place is free", async () => {
        const again = await open('/api/messaging/sessions/events', malloryKey);
        return again.status === 200;
      });
    } finally {
      for (const client of streams.splice(0)) client.close();
      await keyed.close();
    }
  });
});

describe('EVENT_STREAMS_PER_KEY_MAX and HEAD', () => {
  it('counts no stream for a HEAD request of a key bound to agents: it answers the headers and holds nothing open', async () => {
    const ADMIN_KEY = 'admin-key-for-per-key-streams-02';
    const keyed = await startTestApp({ access: { apiKeys: [ADMIN_KEY] }, app: { maxEventStreams: 10, maxEventStreamsPerKey: 1 } });
    try {
      const url = await keyed.listen();
      const agent = (await keyed.request({ method: 'POST', url: '/api/agents', headers: { 'x-api-key': ADMIN_KEY }, body: { characterJson: { name: 'A' } } })).body.data.character.id as string;
      const key = generateApiKey();
      await keyed.store.insertApiKey({ id: randomUUID(), name: 'headed', keyHash: hashApiKey(key), admin: false, agentIds: [agent], createdAt: 0 });
      for (let i = 0; i < 3; i += 1) {
        const head = await fetch(`${url}/api/messaging/sessions/events`, { method: 'HEAD', headers: { 'x-api-key': key }, signal: AbortSignal.timeout(5000) });
        expect(head.status).toBe(200);
      }
      const client = await openStream(`${url}/api/messaging/sessions/events`, { 'x-api-key': key });
      streams.push(client);
      expect(client.status).toBe(200);
    } finally {
      for (const client of streams.splice(0)) client.close();
      await keyed.close();
    }
  });
});

describe('EVENT_STREAMS_MAX', () => {
  it('is not a small number when not set: an app built without it keeps several streams open', async () => {
    const plain = await startTestApp();
    try {
      const url = await plain.listen();
      for (let i = 0; i < 5; i++) {
        const client = await openStream(`${url}/api/messaging/sessions/events`);
        streams.push(client);
        expect(client.status).toBe(200);
      }
    } finally {
      for (const client of streams.splice(0)) client.close();
      await plain.close();
    }
  });

  it('keeps no place for a client that left before its stream opened (while the handler read the store)', async () => {
    const real = openSqliteStore(':memory:');
    let slow = false;
    const store = new Proxy(real, {
      get: (target, name: keyof Store) =>
        name === 'lastEventId' ? async () => (slow && (await new Promise((resolve) => setTimeout(resolve, 300))), target.lastEventId()) : target[name],
    });
    const capped = await startTestApp({ store, app: { maxEventStreams: 1 } });
    try {
      const url = await capped.listen();
      slow = true;
      const leaving = new AbortController();
      const left = fetch(`${url}/api/messaging/sessions/events`, { signal: leaving.signal }).catch(() => undefined);
      setTimeout(() => leaving.abort(), 50);
      await left;
      await new Promise((resolve) => setTimeout(resolve, 400)); // the handler has gone on past its read
      slow = false;
      const next = await openStream(`${url}/api/messaging/sessions/events`);
      streams.push(next);
      expect(next.status).toBe(200);
    } finally {
      for (const client of streams.splice(0)) client.close();
      await capped.close();
    }
  });

  it('refuses a stream beyond the most kept open with 503 and Retry-After, on both streams, and takes one again once another closed', async () => {
    const capped = await startTestApp({ app: { maxEventStreams: 2 } });
    try {
      const url = await capped.listen();
      const agent = await registerAgent(capped);
      const { sessionId } = await createSession(capped, { agentId: agent });
      const first = await openStream(`${url}/api/messaging/sessions/${sessionId}/events`);
      streams.push(first);
      const second = await openStream(`${url}/api/messaging/sessions/events`);
      streams.push(second);
      await first.waitFor(1);
      for (const path of [`/api/messaging/sessions/${sessionId}/events`, '/api/messaging/sessions/events']) {
        const refused = await capped.request({ method: 'GET', url: path });
        expect(refused.status, path).toBe(503);
        expect(refused.body.error.code).toBe('SERVICE_UNAVAILABLE');
        expect(refused.body.error.details).toMatch(/EVENT_STREAMS_MAX=2\) are open/);
        expect(refused.headers['retry-after']).toMatch(/^\d+$/);
      }
      first.close();
      let third: SseClient | undefined;
      await until('the closed stream is let go', async () => {
        const attempt = await openStream(`${url}/api/messaging/sessions/${sessionId}/events`);
        if (attempt.status !== 200) return void attempt.close(), false;
        streams.push((third = attempt));
        return true;
      });
      await third!.waitFor(1);
      expect(third!.events[0]?.type).toBe('session.created');
    } finally {
      for (const client of streams.splice(0)) client.close();
      await capped.close();
    }
  });
});

describe('a slow reader', () => {
  it('waits for the socket to drain after every full buffer, without piling up listeners', async () => {
    // A socket whose buffer is full after every frame: each write waits for a drain.
    const socket = Object.assign(new EventEmitter(), {
      frames: [] as string[],
      writeHead() {},
      end() {},
      write(text: string) {
        socket.frames.push(text);
        setImmediate(() => socket.emit('drain'));
        return false;
      },
    });
    for (let i = 0; i < 30; i += 1) await createSession(t, { agentId });
    const request = { raw: new EventEmitter(), log: { error() {} } };
    const reply = { raw: socket, hijack() {}, getHeaders: () => ({}) };
    const streamsOfTest = createEventStreams({ feed: createEventFeed(t.store) });
    streamsOfTest.open(request as never, reply as never, t.store, { filter: { types: ['session.created'] }, after: '0' });
    await expect.poll(() => [...socket.frames.join('').matchAll(/^id: /gm)].length).toBe(30);
    expect(socket.listenerCount('close')).toBe(1); // the stream's own: none left by the waits for a drain
    expect(socket.listenerCount('drain')).toBe(0);
    streamsOfTest.closeAll();
  });
});

// Replays past log rows of over 1 M characters that hold none of the stream's events (R50): a
// read that found nothing said it was cut short (EventQuery.maxChars), and the replay then
// read the same rows in a loop, for ever.
const wideEvents = (sessionId: string, count: number, mention = '') =>
  t.store.modifySession(sessionId, (s) => s!, {
    events: (s) => Array.from({ length: count }, () => ({ type: 'message.created' as const, occurredAt: 0, agentId: s.agentId, sessionId: s.id, userId: s.userId, data: { content: 'hi', id: randomUUID(), authorId: USER_ID, isAgent: false, createdAt: new Date(0).toISOString(), attachments: [], metadata: { wide: 'x'.repeat(100_000), about: mention } } })),
  });

describe('a filtered stream past 1 M characters of others\' events that mention its session', () => {
  it('store: an empty filtered page is not cut short', async () => {
    const quiet = await createSession(t, { agentId, timeoutConfig: { timeoutMinutes: 30 } });
    const busy = await createSession(t, { agentId, timeoutConfig: { timeoutMinutes: 30 } });
    for (let i = 0; i < 15; i += 1) await wideEvents(busy.sessionId, 1, quiet.sessionId);
    const page = await t.store.listEvents({ sessionId: quiet.sessionId, after: '0', limit: 500, maxChars: 1024 * 1024 });
    const after = page.at(-1)!.id;
    const rest = await t.store.listEvents({ sessionId: quiet.sessionId, after, limit: 500, maxChars: 1024 * 1024 });
    expect({ events: rest.length, cutShort: rest.cutShort }).toEqual({ events: 0, cutShort: undefined });
  });

  it('stream: the replay ends (reads the log a few times, not in a loop)', async () => {
    const quiet = await createSession(t, { agentId, timeoutConfig: { timeoutMinutes: 30 } });
    const busy = await createSession(t, { agentId, timeoutConfig: { timeoutMinutes: 30 } });
    for (let i = 0; i < 15; i += 1) await wideEvents(busy.sessionId, 1, quiet.sessionId);
    const listEvents = t.store.listEvents;
    let reads = 0;
    t.store.listEvents = async (query) => {
      if (query.sessionId === quiet.sessionId) reads += 1;
      return listEvents.call(t.store, query);
    };
    try {
      const client = await openStream(`${base}/api/messaging/sessions/${quiet.sessionId}/events`);
      streams.push(client);
      await client.waitFor(1);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(reads).toBeLessThan(5);
    } finally {
      t.store.listEvents = listEvents;
    }
  });
});

describe('a stream resuming from the newest event, which ends a row of over 1 M characters', () => {
  it('store: nothing after the newest event, and not cut short', async () => {
    const { sessionId } = await createSession(t, { agentId, timeoutConfig: { timeoutMinutes: 30 } });
    await wideEvents(sessionId, 12); // one transaction: one row of ~1.2 M characters
    const newest = (await t.store.lastEventId())!;
    const rest = await t.store.listEvents({ sessionId, after: newest, limit: 500, maxChars: 1024 * 1024 });
    expect({ events: rest.length, cutShort: rest.cutShort }).toEqual({ events: 0, cutShort: undefined });
  });

  it('stream: Last-Event-ID = the newest event reads the log a few times, not in a loop', async () => {
    const { sessionId } = await createSession(t, { agentId, timeoutConfig: { timeoutMinutes: 30 } });
    await wideEvents(sessionId, 12);
    const newest = (await t.store.lastEventId())!;
    const listEvents = t.store.listEvents;
    let reads = 0;
    t.store.listEvents = async (query) => {
      if (query.sessionId === sessionId) reads += 1;
      return listEvents.call(t.store, query);
    };
    try {
      const client = await openStream(`${base}/api/messaging/sessions/${sessionId}/events`, { 'last-event-id': newest });
      streams.push(client);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(reads).toBeLessThan(5);
    } finally {
      t.store.listEvents = listEvents;
    }
  });
});
