// sendSessionMessage with transport http and sse (and the deprecated mode): the answer
// waits for the agent's reply, woken by the event log's commits (no polling), times out
// with 504 keeping the user's message, streams both messages, and releases its wait when
// the client goes away.
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { generateApiKey, hashApiKey } from '../src/api-keys.js';
import { MAX_OPEN_PER_SESSION, createAgentReplies } from '../src/events/agent-replies.js';
import { createEventPump } from '../src/events/due-events.js';
import { createEventFeed, type EventFeed, type FeedFollower } from '../src/events/event-feed.js';
import { KEEP_ALIVE_MS } from '../src/events/event-stream.js';
import { openSqliteStore } from '../src/storage/sqlite/sqlite-store.js';
import { type EventRecord, type Store, StorageFault } from '../src/storage/store.js';
import { abandonedRequest } from './helpers/abandoned-request.js';
import { USER_ID, createSession, registerAgent } from './helpers/fixtures.js';
import { logLines } from './helpers/log-lines.js';
import { openStream } from './helpers/sse-client.js';
import { storedMessages } from './helpers/stored-messages.js';
import { startTestApp, type TestApp, type TestResponse } from './helpers/test-app.js';
import { until } from './helpers/until.js';

let t: TestApp;
let agentId: string;
let sessionId: string;

async function start(agentReplyTimeoutMs = 10_000): Promise<void> {
  t = await startTestApp({ agentReplyTimeoutMs });
  agentId = await registerAgent(t);
  ({ sessionId } = await createSession(t, { agentId }));
}
beforeEach(() => start());
afterEach(() => t.close());

const messagesUrl = () => `/api/messaging/sessions/${sessionId}/messages`;
const send = (body: Record<string, unknown>) => t.request({ method: 'POST', url: messagesUrl(), body: { content: 'Hello, Eliza!', ...body } });
const agentSays = (content: string, metadata: Record<string, unknown> = {}) =>
  t.request({ method: 'POST', url: messagesUrl(), body: { content, authorId: agentId, metadata } });
const stored = async () => (await storedMessages(t.store, { sessionId, limit: 100 })).messages;

/** Sends with `body`, waits until the user's message is stored and waiting, and then runs `meanwhile`. */
async function sendAndReply(body: Record<string, unknown>, meanwhile: () => Promise<unknown>): Promise<TestResponse> {
  const answer = send(body);
  await until('the message is stored and waiting', async () => t.replies.size() === 1 && (await stored()).length === 1);
  await meanwhile();
  return answer;
}

describe('transport http', () => {
  it('answers with the agent reply posted through the API during the wait, as sendMessageSync reads it', async () => {
    const answer = await sendAndReply({ transport: 'http' }, async () => {
      // The user's own messages are not the reply; the agent's next message is.
      expect((await send({ content: 'are you there?' })).status).toBe(201);
      expect((await agentSays('Hello! How can I help you today?', { thought: 'The user greets me.', actions: ['REPLY'], other: 1 })).status).toBe(201);
      expect((await agentSays('a second reply, not this one')).status).toBe(201);
    });

    expect(answer.status).toBe(201);
    const { data } = answer.body;
    expect(answer.body.success).toBe(true);
    expect(data.success).toBe(true);
    expect(data.userMessage).toMatchObject({ content: 'Hello, Eliza!', authorId: USER_ID, isAgent: false });
    expect(data.userMessage.id).toBe((await stored()).at(-1)!.id);
    expect(data.agentResponse).toEqual({ text: 'Hello! How can I help you today?', thought: 'The user greets me.', actions: ['REPLY'] });
    expect(data.sessionStatus).toMatchObject({ renewalCount: 1, wasRenewed: true, isNearExpiration: false });
    expect(t.replies.size()).toBe(0);
  });

  /** Sends two messages with transport http, in this order, each waiting once it is stored. */
  async function twoWaits() {
    const before = (await stored()).length;
    const first = send({ transport: 'http', content: 'first question' });
    await until('the first message is waiting', async () => t.replies.size() === 1 && (await stored()).length === before + 1);
    const second = send({ transport: 'http', content: 'second question' });
    await until('both are waiting', async () => t.replies.size() === 2 && (await stored()).length === before + 2);
    const [secondId, firstId] = (await stored()).map((message) => message.id); // newest first
    return { first, second, firstId: firstId!, secondId: secondId! };
  }

  it('pairs two waits in one session with the replies that name their messages (metadata.inReplyTo), whichever comes first; a reply naming none answers each wait', async () => {
    const { first, second, firstId, secondId } = await twoWaits();
    // The second answered first: the first's wait knows that message (recorded after its own) and passes the reply by.
    expect((await agentSays('to the second', { inReplyTo: secondId })).status).toBe(201);
    expect((await second).body.data.agentResponse.text).toBe('to the second');
    expect(t.replies.size()).toBe(1);
    expect((await agentSays('to the first', { inReplyTo: firstId })).status).toBe(201);
    const answered = await first;
    expect([answered.body.data.userMessage.id, answered.body.data.agentResponse.text]).toEqual([firstId, 'to the first']);

    // The first answered first: the second's wait knows that message as another wait's here.
    const again = await twoWaits();
    expect((await agentSays('to the first again', { inReplyTo: again.firstId })).status).toBe(201);
    expect((await again.first).body.data.agentResponse.text).toBe('to the first again');
    expect(t.replies.size()).toBe(1);
    expect((await agentSays('to the second again', { inReplyTo: again.secondId, other: null })).status).toBe(201);
    expect((await again.second).body.data.agentResponse.text).toBe('to the second again');

    const third = send({ transport: 'http', content: 'third' });
    await until('the third is waiting', async () => t.replies.size() === 1);
    expect((await agentSays('to nobody in particular', { inReplyTo: null })).status).toBe(201);
    expect((await third).body.data.agentResponse.text).toBe('to nobody in particular');
  });

  it('takes a reply naming an id it does not know as its own (elizaOS agents name a UUID derived from the message id), and any inReplyTo a message stored before this version had', async () => {
    const answer = sendAndReply({ transport: 'http' }, () => agentSays('Hi!', { inReplyTo: randomUUID() }));
    expect((await answer).body.data.agentResponse.text).toBe('Hi!');
    const other = send({ transport: 'http' });
    await until('the second message is waiting', async () => t.replies.size() === 1 && (await stored()).length === 3);
    expect((await agentSays('Hi again!', { inReplyTo: 42 })).status).toBe(201);
    expect((await other).body.data.agentResponse.text).toBe('Hi again!');
  });

  it('leaves out of agentResponse a thought that is not a string and actions that are not all strings', async () => {
    const answer = await sendAndReply({ transport: 'http' }, async () => {
      expect((await agentSays('Hi', { thought: 42, actions: ['REPLY', 7] })).status).toBe(201);
    });
    expect(answer.status).toBe(201);
    expect(answer.body.data.agentResponse).toEqual({ text: 'Hi' });
  });

  it("tells the user's messages from the agent's in a session whose userId is the agentId (the seed's own example)", async () => {
    ({ sessionId } = await createSession(t, { agentId, userId: agentId }));
    const plain = await send({});
    expect(plain.status).toBe(201);
    expect(plain.body).toMatchObject({ authorId: agentId, isAgent: false });
    const answer = await sendAndReply({ transport: 'http' }, async () => {
      // Unstored until now: the user's message above and this one's are the user's; the agent names itself.
      await until('the second user message is stored', async () => (await stored()).length === 2);
      expect((await agentSays('Hello to myself')).status).toBe(201);
    });
    expect(answer.status).toBe(201);
    expect(answer.body.data.userMessage).toMatchObject({ authorId: agentId, isAgent: false });
    expect(answer.body.data.agentResponse).toEqual({ text: 'Hello to myself' });
    expect(Object.fromEntries((await stored()).map((message) => [message.content, message.isAgent]))).toEqual({ 'Hello, Eliza!': false, 'Hello to myself': true });
    expect((await stored()).filter((message) => !message.isAgent)).toHaveLength(2);
  });

  it('answers 504 AGENT_REPLY_TIMEOUT after the timeout, keeping the message and naming it; logged at info, without a stack', async () => {
    await t.close();
    const { lines, stream } = logLines();
    t = await startTestApp({ agentReplyTimeoutMs: 50, app: { logger: { level: 'info', stream } } });
    agentId = await registerAgent(t);
    ({ sessionId } = await createSession(t, { agentId }));
    const answer = await send({ transport: 'http' });
    expect(answer.status).toBe(504);
    expect(answer.body.error.code).toBe('AGENT_REPLY_TIMEOUT');
    const [message] = await stored();
    expect(message!.content).toBe('Hello, Eliza!');
    expect(answer.body.error.details).toContain(message!.id);
    expect(t.replies.size()).toBe(0);
    // A slow agent is an expected outcome: nothing at warn or above (an alert on errors is not paged).
    expect(lines.filter((line) => line.level >= 40)).toEqual([]);
    expect(lines.find((line) => line.code === 'AGENT_REPLY_TIMEOUT')).toMatchObject({ level: 30, msg: 'request answered 504 AGENT_REPLY_TIMEOUT', details: answer.body.error.details });
  });

  it('replays the answer with the reply under the same Idempotency-Key, writing nothing; with no reply in time, the stored message', async () => {
    const keyed = (key: string) =>
      t.request({ method: 'POST', url: messagesUrl(), body: { content: 'Hello, Eliza!', transport: 'http' }, headers: { 'idempotency-key': key } });
    const first = keyed('with-reply');
    await until('the message is stored and waiting', async () => t.replies.size() === 1 && (await stored()).length === 1);
    expect((await agentSays('Hello! How can I help you today?')).status).toBe(201);
    const answer = await first;
    expect(answer.body.data.agentResponse).toEqual({ text: 'Hello! How can I help you today?' });

    const replay = await keyed('with-reply');
    expect(replay.status).toBe(201);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.body).toEqual(answer.body);
    expect(await stored()).toHaveLength(2);
    expect(t.replies.size()).toBe(0);

    await t.close();
    await start(50);
    const timedOut = await keyed('no-reply');
    expect(timedOut.status).toBe(504);
    const [message] = await stored();
    const replayed = await keyed('no-reply');
    expect(replayed.status).toBe(201);
    expect(replayed.headers['idempotent-replayed']).toBe('true');
    expect(replayed.body).toMatchObject({ id: message!.id, content: 'Hello, Eliza!', sessionStatus: { renewalCount: 1 } });
    expect(await stored()).toHaveLength(1);
  });

  it("answers with the reply when storing it in the Idempotency-Key record fails (not 503 'nothing was changed'); a replay then gives the stored message", async () => {
    await t.close();
    const { lines, stream } = logLines();
    const real = openSqliteStore(':memory:');
    const store = new Proxy(real, {
      get: (target, name: keyof Store) =>
        name === 'settleIdempotencyRecord' ? () => Promise.reject(new StorageFault('the database is full (test)')) : target[name],
    });
    t = await startTestApp({ store, app: { logger: { level: 'warn', stream } } });
    agentId = await registerAgent(t);
    ({ sessionId } = await createSession(t, { agentId }));
    const keyed = () => t.request({ method: 'POST', url: messagesUrl(), body: { content: 'Hello, Eliza!', transport: 'http' }, headers: { 'idempotency-key': 'settle-fails' } });
    const first = keyed();
    await until('the message is stored and waiting', async () => t.replies.size() === 1 && (await stored()).length === 1);
    expect((await agentSays('Hello! How can I help you today?')).status).toBe(201);
    const answer = await first;
    expect(answer.status).toBe(201);
    expect(answer.body.data.agentResponse).toEqual({ text: 'Hello! How can I help you today?' });
    expect(lines.map((line) => line.msg)).toContain('the Idempotency-Key record keeps the stored answer: settling it failed');
    const replay = await keyed();
    expect(replay.status).toBe(201);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.body).toMatchObject({ id: answer.body.data.userMessage.id, content: 'Hello, Eliza!' });
    expect(await stored()).toHaveLength(2);
  });

  it('answers 503 SERVICE_UNAVAILABLE with Retry-After when the server stops while it waits, not a 504 timeout (the message stored)', async () => {
    const answer = send({ transport: 'http' });
    await until('the message is stored and waiting', async () => t.replies.size() === 1 && (await stored()).length === 1);
    const [message] = await stored();
    const closing = t.close();
    const response = await answer;
    await closing;
    expect(response.status).toBe(503);
    expect(response.headers['retry-after']).toBeDefined();
    expect(response.body.error).toMatchObject({ code: 'SERVICE_UNAVAILABLE', details: `the server is shutting down; message ${message!.id} is stored` });
    await start(); // for afterEach
  });

  it.each([
    ['ended', () => t.request({ method: 'DELETE', url: `/api/messaging/sessions/${sessionId}` })],
    ['gone with its agent (force)', () => t.request({ method: 'DELETE', url: `/api/agents/${agentId}?force=true` })],
  ])('ends the wait at once when the session is %s: 404, saying the message went with it', async (_how, end) => {
    const answer = await sendAndReply({ transport: 'http' }, async () => expect((await end()).status).toBe(200));
    const messageId = (answer.body.error.details as string).match(/message (\S+) /)?.[1];
    expect(answer.status).toBe(404);
    expect(answer.body.error).toMatchObject({ code: 'SESSION_NOT_FOUND', details: `the session was ended while message ${messageId} waited for the agent's reply; the message went with it` });
    expect(t.replies.size()).toBe(0);
  });

  it('ends the wait at once when the session expires meanwhile: 410, the message stored', async () => {
    const answer = await sendAndReply({ transport: 'http' }, async () => {
      t.clock.advance(31 * 60_000);
      expect(await createEventPump({ store: t.store, clock: t.clock }).tick()).toBe(2); // the warning, then the expiry
    });
    const [message] = await stored();
    expect(answer.status).toBe(410);
    expect(answer.body.error).toMatchObject({ code: 'SESSION_EXPIRED', details: `the session expired while message ${message!.id} waited for the agent's reply; the message is stored` });
  });

  it('releases the wait when the write fails: 404 for an unknown session, 410 for an expired one', async () => {
    const unknown = await t.request({ method: 'POST', url: `/api/messaging/sessions/${randomUUID()}/messages`, body: { content: 'hi', transport: 'http' } });
    expect(unknown.status).toBe(404);
    t.clock.advance(31 * 60_000);
    const expired = await send({ transport: 'http' });
    expect(expired.status).toBe(410);
    expect(t.replies.size()).toBe(0);
  });

  it('releases the wait when the client disconnects', async () => {
    const request = abandonedRequest(`${await t.listen()}${messagesUrl()}`, { 'content-type': 'application/json' }, { content: 'hello?', transport: 'http' });
    await until('the request waits', () => t.replies.size() === 1);
    await request.abort();
    expect(await request.answer).toBe('AbortError');
    await until('the wait is released (its own timeout is 10 s)', () => t.replies.size() === 0, { ms: 2000 });
    expect((await stored()).map((message) => message.content)).toEqual(['hello?']);
  });
});

describe('a key revoked while its message waits for the reply (S16)', () => {
  const ADMIN_KEY = 'admin-key-for-reply-tests-012345';
  const admin = { 'x-api-key': ADMIN_KEY };
  /** Keys on; a stored key named `waiter` (returned) sends, the admin key replies as the agent. */
  async function withWaiterKey(): Promise<Record<string, string>> {
    await t.close();
    t = await startTestApp({ agentReplyTimeoutMs: 10_000, access: { apiKeys: [ADMIN_KEY] } });
    agentId = (await t.request({ method: 'POST', url: '/api/agents', headers: admin, body: { characterJson: { name: 'Eliza' } } })).body.data.character.id;
    sessionId = (await t.request({ method: 'POST', url: '/api/messaging/sessions', headers: admin, body: { agentId, userId: USER_ID } })).body.sessionId;
    const key = generateApiKey();
    await t.store.insertApiKey({ id: randomUUID(), name: 'waiter', keyHash: hashApiKey(key), admin: false, agentIds: [agentId], createdAt: 0 });
    return { 'x-api-key': key };
  }
  const reply = (content: string) => t.request({ method: 'POST', url: messagesUrl(), headers: admin, body: { content, authorId: agentId } });

  it('answers 401 UNAUTHORIZED instead of the reply (http), the message stored; an unrevoked key gets its reply', async () => {
    const waiter = await withWaiterKey();
    const kept = t.request({ method: 'POST', url: messagesUrl(), headers: waiter, body: { content: 'first', transport: 'http' } });
    await until('the first waits', async () => t.replies.size() === 1);
    await reply('to the first');
    expect((await kept).status).toBe(201);

    const answer = t.request({ method: 'POST', url: messagesUrl(), headers: waiter, body: { content: 'second', transport: 'http' } });
    await until('the second waits', async () => t.replies.size() === 1);
    await t.store.revokeApiKey('waiter', 1);
    await reply('to the second');
    const refused = await answer;
    expect(refused.status).toBe(401);
    expect(refused.body.error.code).toBe('UNAUTHORIZED');
    const second = (await stored()).find((message) => message.content === 'second')!;
    expect(refused.body.error.details).toBe(`the API key was revoked while message ${second.id} waited for the agent's reply; the message is stored`);
    // R46: a 401 carries its challenge, as every other 401 of the API does (createWebhook's revoked-meanwhile one included).
    expect(refused.headers['www-authenticate']).toBe('Bearer realm="sessions-api", ApiKey header="X-API-KEY"');
  });

  it('hands the reply over when the key cannot be asked again (the store failing), as an event stream goes on', async () => {
    const waiter = await withWaiterKey();
    const answer = t.request({ method: 'POST', url: messagesUrl(), headers: waiter, body: { content: 'mine', transport: 'http' } });
    await until('it waits', async () => t.replies.size() === 1);
    const failing = vi.spyOn(t.store, 'findApiKey').mockRejectedValue(new Error('the store is unreachable'));
    try {
      await reply('to mine');
      const answered = await answer;
      expect(answered.status).toBe(201);
      expect(answered.body.data.agentResponse.text).toBe('to mine');
    } finally {
      failing.mockRestore();
    }
  });

  it('ends the sse stream after the user\'s message, saying the key was revoked, instead of sending the reply', async () => {
    const waiter = await withWaiterKey();
    const base = await t.listen();
    const stream = await openStream(`${base}${messagesUrl()}`, waiter, { content: 'mine', transport: 'sse' });
    await stream.waitFor(1);
    await t.store.revokeApiKey('waiter', 1);
    await reply('not for a revoked key');
    await stream.ended;
    expect(stream.events.map((event) => event.data.content)).toEqual(['mine']);
    expect(stream.comments.at(-1)).toBe('the API key that opened this stream was revoked');
  });

  it('says why no reply came, not the revocation, when the wait ends without one (nothing is handed over) (J16 S5)', async () => {
    const waiter = await withWaiterKey();
    const base = await t.listen();
    const stream = await openStream(`${base}${messagesUrl()}`, waiter, { content: 'mine', transport: 'sse' });
    await stream.waitFor(1);
    await t.store.revokeApiKey('waiter', 1);
    expect((await t.request({ method: 'DELETE', url: `/api/messaging/sessions/${sessionId}`, headers: admin })).status).toBe(200);
    await stream.ended;
    expect(stream.events.map((event) => event.data.content)).toEqual(['mine']);
    expect(stream.comments.at(-1)).toBe('the session was ended; the message went with it');
  });
});

describe('a retry under the Idempotency-Key of a message still waiting for its reply', () => {
  it('answers 409 IDEMPOTENCY_KEY_IN_USE (the stored answer is not the final one yet), then replays the reply', async () => {
    const keyed = { method: 'POST' as const, url: messagesUrl(), body: { content: 'hello?', transport: 'http' }, headers: { 'idempotency-key': 'waiting' } };
    const first = t.request(keyed);
    await until('the message is stored and waiting', async () => t.replies.size() === 1 && (await stored()).length === 1);
    const retries = await Promise.all([t.request(keyed), t.request(keyed)]);
    expect(retries.map((retry) => [retry.status, retry.body.error?.code])).toEqual([
      [409, 'IDEMPOTENCY_KEY_IN_USE'],
      [409, 'IDEMPOTENCY_KEY_IN_USE'],
    ]);
    expect((await agentSays('here')).status).toBe(201);
    const answer = await first;
    expect(answer.body.data.agentResponse).toEqual({ text: 'here' });
    const replayed = await t.request(keyed);
    expect(replayed.headers['idempotent-replayed']).toBe('true');
    expect(replayed.rawBody).toBe(answer.rawBody);
  });
});

describe('a client that disconnects while waiting under an Idempotency-Key', () => {
  it.each(['http', 'sse'])('frees the key (transport %s): the retry replays the stored message, not 409 IDEMPOTENCY_KEY_IN_USE', async (transport) => {
    const body = { content: 'hello?', transport };
    const request = abandonedRequest(`${await t.listen()}${messagesUrl()}`, { 'content-type': 'application/json', 'idempotency-key': `gone-${transport}` }, body);
    await until('the message is stored and waiting', async () => t.replies.size() === 1 && (await stored()).length === 1);
    await request.abort();
    expect(await request.answer).toBe('AbortError');
    await until('the wait is released (its own timeout is 10 s)', () => t.replies.size() === 0, { ms: 2000 });

    const retry = await t.request({ method: 'POST', url: messagesUrl(), body, headers: { 'idempotency-key': `gone-${transport}` } });
    expect(retry.status).toBe(201);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    const [message] = await stored();
    expect(retry.body).toMatchObject({ id: message!.id, content: 'hello?' });
    expect(await stored()).toHaveLength(1);
  });
});

describe('mode (deprecated) and bad transports', () => {
  it('maps sync to http and websocket to the immediate answer', async () => {
    const sync = await sendAndReply({ mode: 'sync' }, () => agentSays('hi from the agent'));
    expect(sync.status).toBe(201);
    expect(sync.body.data.agentResponse).toEqual({ text: 'hi from the agent' });
    const websocket = await send({ mode: 'websocket', transport: 'websocket' });
    expect(websocket.status).toBe(201);
    expect(websocket.body.sessionStatus).toBeDefined();
    expect(websocket.body.success).toBeUndefined();
  });

  it('refuses a mode that disagrees with transport, and an unknown transport or mode, naming the field and storing nothing', async () => {
    const disagree = await send({ mode: 'sync', transport: 'sse' });
    expect(disagree.status).toBe(400);
    expect(disagree.body.error.details).toMatch(/body\/mode.*body\/transport/);
    const badTransport = await send({ transport: 'pigeon' });
    expect(badTransport.status).toBe(400);
    expect(JSON.stringify(badTransport.body.error.details)).toContain('transport');
    const badMode = await send({ mode: 'http' });
    expect(badMode.status).toBe(400);
    expect(JSON.stringify(badMode.body.error.details)).toContain('mode');
    expect(await stored()).toEqual([]);
    expect(t.replies.size()).toBe(0);
  });

  it.each([
    [{ transport: 'http' }, 'body/transport http'],
    [{ transport: 'sse' }, 'body/transport sse'],
    [{ mode: 'sync' }, 'body/mode sync'],
  ])("refuses %j on the agent's own message (it would wait for itself), naming the field sent and storing nothing", async (body, named) => {
    const answer = await send({ authorId: agentId, ...body });
    expect(answer.status).toBe(400);
    expect(answer.body.error.details.startsWith(`${named} waits for the agent's reply, but the agent wrote this message`)).toBe(true);
    expect(await stored()).toEqual([]);
    expect(t.replies.size()).toBe(0);
  });
});

describe('transport sse', () => {
  it("streams the user's message.created and then the agent's, then closes (mode stream too)", async () => {
    const base = await t.listen();
    for (const body of [{ transport: 'sse' }, { mode: 'stream' }]) {
      const before = (await stored()).length;
      const stream = await openStream(`${base}${messagesUrl()}`, {}, { content: 'stream me', ...body });
      expect(stream.status).toBe(201);
      expect(stream.contentType).toMatch(/^text\/event-stream/);
      await stream.waitFor(1);
      await until('the message is stored', async () => (await stored()).length === before + 1);
      await agentSays('streamed reply');
      await stream.ended;
      expect(stream.events.map((event) => [event.type, event.data.content, event.data.isAgent])).toEqual([
        ['message.created', 'stream me', false],
        ['message.created', 'streamed reply', true],
      ]);
    }
    expect(t.replies.size()).toBe(0);
  });

  it("closes after the user's message, saying so, when the server stops while it waits", async () => {
    const base = await t.listen();
    const stream = await openStream(`${base}${messagesUrl()}`, {}, { content: 'anyone?', transport: 'sse' });
    await stream.waitFor(1);
    const closing = t.close();
    await stream.ended;
    await closing;
    expect(stream.events.map((event) => event.data.content)).toEqual(['anyone?']);
    expect(stream.comments).toContain('the server is shutting down');
    await start(); // for afterEach
  });

  it("closes after the user's message, saying so, when the session is ended while it waits", async () => {
    const base = await t.listen();
    const stream = await openStream(`${base}${messagesUrl()}`, {}, { content: 'anyone?', transport: 'sse' });
    await stream.waitFor(1);
    expect((await t.request({ method: 'DELETE', url: `/api/messaging/sessions/${sessionId}` })).status).toBe(200);
    await stream.ended;
    expect(stream.events.map((event) => event.data.content)).toEqual(['anyone?']);
    expect(stream.comments).toContain('the session was ended; the message went with it');
  });

  it('keeps the stream alive every 15 s while it waits, as the event streams (a proxy would cut a quiet one), and no more once the reply came (N18)', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      const base = await t.listen();
      const stream = await openStream(`${base}${messagesUrl()}`, {}, { content: 'slow agent', transport: 'sse' });
      await stream.waitFor(1);
      await vi.advanceTimersByTimeAsync(KEEP_ALIVE_MS);
      await until('a keep-alive comment arrives', () => stream.comments.includes('keep-alive'));
      await vi.advanceTimersByTimeAsync(KEEP_ALIVE_MS);
      await until('a second one', () => stream.comments.filter((comment) => comment === 'keep-alive').length === 2);
      await agentSays('at last');
      await stream.ended;
      expect(stream.events.map((event) => event.data.content)).toEqual(['slow agent', 'at last']);
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it("closes after the user's message when the agent does not reply in time", async () => {
    await t.close();
    await start(50);
    const base = await t.listen();
    const stream = await openStream(`${base}${messagesUrl()}`, {}, { content: 'anyone?', transport: 'sse' });
    await stream.ended;
    expect(stream.events.map((event) => event.data.content)).toEqual(['anyone?']);
    expect(stream.comments).toContain('no reply from the agent in time');
  });
});

describe('the waiting room', () => {
  it("hands each session's reply to that session's waiters only, and stops reading when none is left", async () => {
    const sessions = [sessionId];
    for (let i = 0; i < 4; i += 1) sessions.push((await createSession(t, { agentId })).sessionId);
    let reads = 0;
    const store = new Proxy(t.store, { get: (target, key) => (key === 'listEvents' ? (...args: [never]) => (reads++, target.listEvents(...args)) : Reflect.get(target, key)) });
    const feed = createEventFeed(store, { pollMs: 60_000 });
    const counted = createAgentReplies(feed);

    const waits = await Promise.all(sessions.map((id) => counted.wait(id, 10_000)));
    expect(counted.size()).toBe(5);
    expect(feed.size()).toBe(5);
    const userMessages: string[] = [];
    for (const id of sessions) userMessages.push((await t.request({ method: 'POST', url: `/api/messaging/sessions/${id}/messages`, body: { content: `to ${id}` } })).body.id);
    waits.forEach((wait, i) => wait.expect(userMessages[i]!));
    // Replies in reverse order: each wait gets its own session's.
    for (const id of [...sessions].reverse()) await t.request({ method: 'POST', url: `/api/messaging/sessions/${id}/messages`, body: { content: `reply in ${id}`, authorId: agentId } });
    const answers = await Promise.all(waits.map((wait) => wait.reply));
    expect(answers.map((event) => event!.data)).toEqual(sessions.map((id) => expect.objectContaining({ content: `reply in ${id}` })));
    expect((await Promise.all(waits.map((wait) => wait.own))).map((event) => event!.sessionId)).toEqual(sessions);
    expect(counted.size()).toBe(0);
    // Each settled wait stopped following the feed (else one follower a message, for ever).
    expect(feed.size()).toBe(0);

    // Idle: commits no longer make it read the log.
    const readsWhenIdle = reads;
    await t.request({ method: 'POST', url: messagesUrl(), body: { content: 'nobody waits' } });
    expect(reads).toBe(readsWhenIdle);
  });

  it("gives the user's own message even when the session's end was seen before the message was named", async () => {
    const waiting = createAgentReplies(createEventFeed(t.store));
    const wait = await waiting.wait(sessionId, 10_000);
    const own = (await t.request({ method: 'POST', url: messagesUrl(), body: { content: 'mine' } })).body.id as string;
    expect((await t.request({ method: 'DELETE', url: `/api/messaging/sessions/${sessionId}` })).status).toBe(200);
    await until('the end is read', async () => (await t.store.listEvents({ limit: 100 })).some((event) => event.type === 'session.ended'));
    wait.expect(own);
    expect(((await wait.own)!.data as { id: string }).id).toBe(own);
    expect(await wait.reply).toBeUndefined();
    expect(wait.endedBy).toBe('ended');
  });

  it("takes as the user's own message only the one named, not an agent message recorded before it", async () => {
    const waiting = createAgentReplies(createEventFeed(t.store));
    const wait = await waiting.wait(sessionId, 10_000);
    const before = (await agentSays('an earlier agent message')).body.id as string;
    const own = (await t.request({ method: 'POST', url: messagesUrl(), body: { content: 'mine' } })).body.id as string;
    wait.expect(own);
    await agentSays('the reply');
    expect(((await wait.own)!.data as { id: string }).id).toBe(own);
    const reply = (await wait.reply)!.data as { id: string; content: string };
    expect(reply.content).toBe('the reply');
    expect(reply.id).not.toBe(before);
  });

  it('passes by a reply naming a message whose wait ended without a reply (a late answer after a 504); one naming a message whose wait was answered answers (an agent naming its thread\'s first message in every reply); past endedWaitsKept the oldest unanswered are forgotten', async () => {
    const waiting = createAgentReplies(createEventFeed(t.store), { endedWaitsKept: 1 });
    const userSays = async (content: string) => (await t.request({ method: 'POST', url: messagesUrl(), body: { content } })).body.id as string;
    const waitFor = async (content: string) => {
      const wait = await waiting.wait(sessionId, 10_000);
      const id = await userSays(content);
      wait.expect(id);
      return { wait, id, reply: wait.reply.then((event) => (event?.data as { content: string } | undefined)?.content) };
    };
    // The first gives up (a timeout, or its client went away): its late answer is not the second's.
    const first = await waitFor('first');
    first.wait.release();
    const second = await waitFor('second');
    await agentSays('late, to the first', { inReplyTo: first.id });
    await agentSays('to the second', { inReplyTo: second.id });
    expect(await second.reply).toBe('to the second');
    // The second was answered: a reply naming it again (its thread) is the third's.
    const third = await waitFor('third');
    await agentSays('to the third, in the thread of the second', { inReplyTo: second.id });
    expect(await third.reply).toBe('to the third, in the thread of the second');
    // Two unanswered, one kept: the first is forgotten, a reply naming it is an unknown id's; the fourth's is passed by.
    const fourth = await waitFor('fourth');
    fourth.wait.release();
    const fifth = await waitFor('fifth');
    await agentSays('late, to the fourth', { inReplyTo: fourth.id });
    await agentSays('naming the first', { inReplyTo: first.id });
    expect(await fifth.reply).toBe('naming the first');
    expect(waiting.size()).toBe(0);
  });

  /** A log of its own, recorded by hand: each event seen by its session's followers at once. */
  function handLog() {
    const followers = new Set<FeedFollower>();
    let ids = 0;
    const feed: EventFeed = { follow: async (follower) => (followers.add(follower), () => void followers.delete(follower)), size: () => followers.size };
    const record = (session: string, data: Record<string, unknown>) => {
      const event = { id: String((ids += 1)), type: 'message.created', occurredAt: 0, agentId, sessionId: session, data } as EventRecord;
      for (const follower of [...followers]) if (follower.sessionId === undefined || follower.sessionId === session) follower.see(event);
    };
    return { feed, record };
  }
  /** Waits on `waiting` that end without a reply, and whether a reply naming a message is the next wait's. */
  function waitsOn(waiting: ReturnType<typeof createAgentReplies>, record: ReturnType<typeof handLog>['record']) {
    return {
      /** The user's message `id`, its wait given up after it was named, or before (a timeout or a gone client during the write). */
      async unanswered(session: string, id: string, givenUpBeforeNamed = false) {
        const wait = await waiting.wait(session, 10_000);
        if (givenUpBeforeNamed) wait.release();
        record(session, { id, content: id });
        wait.expect(id);
        wait.release();
        expect(await wait.reply).toBeUndefined();
      },
      /** Whether an agent message naming `named` answers the session's next wait (else its own reply does). */
      async answersNext(session: string, named: string) {
        const wait = await waiting.wait(session, 10_000);
        const id = randomUUID();
        record(session, { id, content: 'next' });
        wait.expect(id);
        record(session, { id: randomUUID(), isAgent: true, content: 'naming', metadata: { inReplyTo: named } });
        record(session, { id: randomUUID(), isAgent: true, content: 'its own', metadata: { inReplyTo: id } });
        return ((await wait.reply)!.data as { content: string }).content === 'naming';
      },
    };
  }

  it('keeps known the message of a wait given up before its message was named; forgets the oldest unanswered past endedWaitsKept, whichever session it was in, one each time', async () => {
    const { feed, record } = handLog();
    const { unanswered, answersNext } = waitsOn(createAgentReplies(feed, { endedWaitsKept: 2 }), record);
    const [one, two] = [randomUUID(), randomUUID()];
    await unanswered(one, 'a', true);
    expect(await answersNext(one, 'a')).toBe(false);
    await unanswered(one, 'b');
    // A third unanswered, in another session: the oldest (a, of the first session) is forgotten, b kept.
    await unanswered(two, 'c');
    expect(await answersNext(one, 'a')).toBe(true);
    expect(await answersNext(one, 'b')).toBe(false);
    // A fourth: then b.
    await unanswered(two, 'd');
    expect(await answersNext(one, 'b')).toBe(true);
    expect(await answersNext(two, 'c')).toBe(false);
    expect(await answersNext(two, 'd')).toBe(false);
  });

  it('keeps the messages of the last 10,000 unanswered waits by default', async () => {
    const { feed, record } = handLog();
    const { unanswered, answersNext } = waitsOn(createAgentReplies(feed), record);
    const first = randomUUID();
    await unanswered(first, 'm0');
    for (let i = 1; i < 10_000; i += 1) await unanswered(randomUUID(), `m${i}`);
    expect(await answersNext(first, 'm0')).toBe(false);
    await unanswered(randomUUID(), 'm10000');
    expect(await answersNext(first, 'm0')).toBe(true);
  });

  it("passes by an answer to another wait that came while its own message was not yet named, even once that wait was answered and its message forgotten", async () => {
    const { feed, record } = handLog();
    const waiting = createAgentReplies(feed);
    const first = await waiting.wait(sessionId, 10_000);
    record(sessionId, { id: 'm1', content: 'first' });
    first.expect('m1');
    const second = await waiting.wait(sessionId, 10_000);
    record(sessionId, { id: 'm2', content: 'second' });
    // The answer to the first comes before the second's write returned: the first takes it (and forgets m1) before the second reads it.
    record(sessionId, { id: 'r1', isAgent: true, content: 'to the first', metadata: { inReplyTo: 'm1' } });
    second.expect('m2');
    record(sessionId, { id: 'r2', isAgent: true, content: 'to the second', metadata: { inReplyTo: 'm2' } });
    expect(((await first.reply)!.data as { content: string }).content).toBe('to the first');
    expect(((await second.reply)!.data as { content: string }).content).toBe('to the second');
  });

  it("costs each wait the same however many waits its session had or has open (S16: a copy per wait of the others' messages ran a server out of memory)", async () => {
    const { feed, record } = handLog();
    const waiting = createAgentReplies(feed, { maxOpenPerSession: 1_000 });
    const { unanswered } = waitsOn(waiting, record);
    for (let i = 0; i < 2_000; i += 1) await unanswered(sessionId, `gone${i}`);
    // Entries written into sets and maps while 1,000 waits open in the session, each with its message: counted, not timed.
    const [setAdd, mapSet] = [Set.prototype.add, Map.prototype.set];
    let written = 0;
    Set.prototype.add = function (this: Set<unknown>, ...args: [unknown]) { written += 1; return setAdd.apply(this, args); };
    Map.prototype.set = function (this: Map<unknown, unknown>, ...args: [unknown, unknown]) { written += 1; return mapSet.apply(this, args); };
    const waits = [];
    try {
      for (let i = 0; i < 1_000; i += 1) {
        const wait = await waiting.wait(sessionId, 10_000);
        record(sessionId, { id: `open${i}`, content: 'again' });
        wait.expect(`open${i}`);
        waits.push(wait);
      }
    } finally {
      [Set.prototype.add, Map.prototype.set] = [setAdd, mapSet];
    }
    expect(written).toBeLessThan(10 * 1_000);
    record(sessionId, { id: 'answer', isAgent: true, content: 'to the last', metadata: { inReplyTo: 'open999' } });
    expect(((await waits[999]!.reply)!.data as { content: string }).content).toBe('to the last');
    for (const wait of waits) wait.release();
    expect(waiting.size()).toBe(0);
  });

  it('keeps at most maxOpenPerSession waits open in a session (429 RATE_LIMITED), counting each session apart and freeing a place as one ends', async () => {
    const { feed } = handLog();
    const waiting = createAgentReplies(feed, { maxOpenPerSession: 2 });
    const [first, second] = [await waiting.wait(sessionId, 10_000), await waiting.wait(sessionId, 10_000)];
    await expect(waiting.wait(sessionId, 10_000)).rejects.toMatchObject({
      code: 'RATE_LIMITED',
      details: `session ${sessionId} has 2 messages waiting for the agent's reply at this server, the most it keeps; send when one is answered, or without transport`,
    });
    const elsewhere = await waiting.wait(randomUUID(), 10_000);
    first.release();
    const third = await waiting.wait(sessionId, 10_000);
    // The session's count goes on while one of its waits is open: full again.
    await expect(waiting.wait(sessionId, 10_000)).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    for (const wait of [second, elsewhere, third]) wait.release();
    expect(waiting.size()).toBe(0);
  });

  it('gives back its place in the session when following the log fails', async () => {
    const { feed } = handLog();
    let failing = true;
    const flaky: EventFeed = { ...feed, follow: async (follower) => { if (failing) throw new Error('the log is unreadable'); return feed.follow(follower); } };
    const waiting = createAgentReplies(flaky, { maxOpenPerSession: 1 });
    await expect(waiting.wait(sessionId, 10_000)).rejects.toThrow('the log is unreadable');
    failing = false;
    const wait = await waiting.wait(sessionId, 10_000);
    wait.release();
    expect(waiting.size()).toBe(0);
  });

  it('passes by a reply naming a message recorded after its own that no wait here knows (sent without transport, or waited on at another instance)', async () => {
    const { feed, record } = handLog();
    const waiting = createAgentReplies(feed);
    const wait = await waiting.wait(sessionId, 10_000);
    record(sessionId, { id: 'm1', content: 'mine' });
    wait.expect('m1');
    record(sessionId, { id: 'm2', content: 'sent without transport' });
    record(sessionId, { id: 'r2', isAgent: true, content: 'to the later one', metadata: { inReplyTo: 'm2' } });
    record(sessionId, { id: 'r1', isAgent: true, content: 'to mine', metadata: { inReplyTo: 'm1' } });
    expect(((await wait.reply)!.data as { content: string }).content).toBe('to mine');
  });

  it("takes a reply naming a message answered before it began (its thread's first) while another wait of the session stays open", async () => {
    const { feed, record } = handLog();
    const waiting = createAgentReplies(feed);
    const { answersNext } = waitsOn(waiting, record);
    const long = await waiting.wait(sessionId, 10_000);
    record(sessionId, { id: 'm0', content: 'still waiting' });
    long.expect('m0');
    const first = await waiting.wait(sessionId, 10_000);
    record(sessionId, { id: 'm1', content: 'first' });
    first.expect('m1');
    record(sessionId, { id: 'r1', isAgent: true, content: 'to the first', metadata: { inReplyTo: 'm1' } });
    expect(((await first.reply)!.data as { content: string }).content).toBe('to the first');
    expect(await answersNext(sessionId, 'm1')).toBe(true);
    long.release();
    expect(await long.reply).toBeUndefined();
  });

  it("passes by a reply naming a message whose wait was answered after this one began, even when that answer was seen before its message was named", async () => {
    const { feed, record } = handLog();
    const waiting = createAgentReplies(feed);
    const first = await waiting.wait(sessionId, 10_000);
    // The agent answers before the first's write returned: both events wait until its message is named.
    record(sessionId, { id: 'm1', content: 'first' });
    record(sessionId, { id: 'r1', isAgent: true, content: 'to the first', metadata: { inReplyTo: 'm1' } });
    const second = await waiting.wait(sessionId, 10_000);
    first.expect('m1');
    expect(((await first.reply)!.data as { content: string }).content).toBe('to the first');
    record(sessionId, { id: 'm2', content: 'second' });
    second.expect('m2');
    record(sessionId, { id: 'r1b', isAgent: true, content: 'again to the first', metadata: { inReplyTo: 'm1' } });
    record(sessionId, { id: 'r2', isAgent: true, content: 'to the second', metadata: { inReplyTo: 'm2' } });
    expect(((await second.reply)!.data as { content: string }).content).toBe('to the second');
  });

  it('through the server: the 101st message waiting at once in a session is refused 429 with Retry-After, and not stored', async () => {
    const waiting = Array.from({ length: MAX_OPEN_PER_SESSION }, (_, i) => send({ transport: 'http', content: `waiting ${i}` }));
    await until('every one waits', async () => t.replies.size() === MAX_OPEN_PER_SESSION);
    const refused = await send({ transport: 'http', content: 'one too many' });
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe('RATE_LIMITED');
    expect(refused.headers['retry-after']).toBe('1');
    expect((await send({ content: 'without transport' })).status).toBe(201);
    await agentSays('to everyone');
    expect((await Promise.all(waiting)).map((answer) => answer.status)).toEqual(Array(MAX_OPEN_PER_SESSION).fill(201));
    expect((await stored()).map((message) => message.content)).not.toContain('one too many');
  });

  it('keeps what a session remembers bounded by its open waits, not by every message since its waits began to overlap (R46)', async () => {
    const { feed, record } = handLog();
    const waiting = createAgentReplies(feed);
    // Every Map written while the session's waits overlap: the largest one's size at the end.
    const maps = new Set<Map<unknown, unknown>>();
    const mapSet = Map.prototype.set;
    Map.prototype.set = function (this: Map<unknown, unknown>, ...args: [unknown, unknown]) { maps.add(this); return mapSet.apply(this, args); };
    let previous: Awaited<ReturnType<typeof waiting.wait>> | undefined;
    try {
      // A wait open at every moment (each new one before the last is released), 100 other messages while each is open.
      for (let round = 0; round < 200; round += 1) {
        const wait = await waiting.wait(sessionId, 60_000);
        record(sessionId, { id: `own${round}`, content: 'waiting' });
        wait.expect(`own${round}`);
        previous?.release();
        previous = wait;
        for (let i = 0; i < 100; i += 1) record(sessionId, { id: `m${round}-${i}`, content: 'not waited on' });
      }
    } finally {
      Map.prototype.set = mapSet;
    }
    const largest = Math.max(...[...maps].map((map) => map.size));
    previous?.release();
    // Two waits open at most, 101 messages each (the 199 unanswered kept besides); 20,200 before.
    expect(largest).toBeLessThan(1_000);
  });

  it('through the server: a late answer to a message whose http wait gave up (504) is not the sse reply to the next one (R45)', async () => {
    await t.close();
    await start(300);
    const timedOut = await send({ transport: 'http', content: 'first' });
    expect(timedOut.status).toBe(504);
    const [first] = await stored();
    const base = await t.listen();
    const stream = await openStream(`${base}${messagesUrl()}`, {}, { content: 'second', transport: 'sse' });
    await stream.waitFor(1);
    await agentSays('late, to the first', { inReplyTo: first!.id });
    await agentSays('to the second');
    await stream.ended;
    expect(stream.events.map((event) => event.data.content)).toEqual(['second', 'to the second']);
  });

  it('resolves own and reply with undefined when the wait ends before the log had the message', async () => {
    const waiting = createAgentReplies(createEventFeed(t.store));
    const wait = await waiting.wait(sessionId, 10_000);
    wait.release();
    expect(await wait.own).toBeUndefined();
    expect(await wait.reply).toBeUndefined();
    expect(waiting.size()).toBe(0);
  });

  it('gives up exactly at its timeout, not before', async () => {
    const waiting = createAgentReplies(createEventFeed(t.store));
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const wait = await waiting.wait(sessionId, 1000);
      let ended = false;
      void wait.reply.then(() => (ended = true));
      await vi.advanceTimersByTimeAsync(999);
      expect(ended).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      expect(ended).toBe(true);
      expect(await wait.reply).toBeUndefined();
      expect(waiting.size()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });
});
