import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { migrate } from '../src/storage/sqlite/migrations.js';
import { MESSAGE_VIEW_PAGE_SQL } from '../src/storage/sqlite/queries.js';
import { MINUTE, T0 } from './helpers/fake-clock.js';
import { USER_ID, createSession, registerAgent } from './helpers/fixtures.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';

const iso = (ms: number) => new Date(ms).toISOString();
const OTHER = '9d4c6e2a-1b3f-4a5d-8e7f-0a1b2c3d4e5f';
let t: TestApp;
let agentId: string;
let sessionId: string;

const messagesUrl = (id = sessionId) => `/api/messaging/sessions/${id}/messages`;
const send = (body: unknown, id = sessionId) => t.request({ method: 'POST', url: messagesUrl(id), body });
const page = (query = '', id = sessionId) => t.request({ method: 'GET', url: `${messagesUrl(id)}${query}` });

beforeEach(async () => {
  t = await startTestApp();
  agentId = await registerAgent(t);
  sessionId = (await createSession(t, { agentId })).sessionId;
});
afterEach(() => t.close());

describe('sendSessionMessage', () => {
  it('keeps text with surrogate pairs exactly, and refuses a lone surrogate with 400 naming the field', async () => {
    const text = 'emoji 😀 and 𝄞 clef';
    const sent = await send({ content: text, metadata: { note: text } });
    expect(sent.status).toBe(201);
    expect((await page()).body.messages[0]).toMatchObject({ content: text, metadata: { note: text } });

    const before = t.rowCounts();
    for (const [body, field] of [
      ['{"content":"broken \\ud83d here"}', 'body/content'],
      ['{"content":"ok","metadata":{"note":"\\udc00"}}', 'body/metadata/note'],
      ['{"content":"ok","metadata":{"\\ud800":"key"}}', 'body/metadata/\ud800'],
    ] as const) {
      const response = await t.request({ method: 'POST', url: messagesUrl(), body, headers: { 'content-type': 'application/json' } });
      expect(response.status, body).toBe(400);
      expect(response.body.error.details).toContain(`${field} contains a lone surrogate`);
    }
    expect(t.rowCounts()).toEqual(before);
  });

  it('refuses a body it could not store as sent, naming why: invalid UTF-8, another charset, a compressed body, a number too large or too exact, a key written twice', async () => {
    await send({ content: 'first' });
    const before = t.rowCounts();
    const stored = await page();
    const refusals: Array<[body: string | Buffer, headers: Record<string, string>, status: number, details: string]> = [
      [Buffer.from('{"content":"caf\xe9"}', 'latin1'), {}, 400, 'body is not valid UTF-8'],
      [Buffer.concat([Buffer.from('{"content":"a'), Buffer.from([0xff]), Buffer.from('b"}')]), {}, 400, 'body is not valid UTF-8'],
      ['{"content":"café"}', { 'content-type': 'application/json; charset=iso-8859-1' }, 415, 'content-type charset iso-8859-1 is not supported'],
      ['{"content":"café"}', { 'content-type': 'application/json; charset=utf-16' }, 415, 'content-type charset utf-16 is not supported'],
      ['{"content":"hi"}', { 'content-encoding': 'gzip' }, 415, 'content-encoding gzip is not supported'],
      ['{"content":"hi","metadata":{"score":1e309}}', {}, 400, 'body/metadata/score is a number too large to store'],
      [`{"content":"hi","metadata":{"n":[1,-${'9'.repeat(400)}]}}`, {}, 400, 'body/metadata/n/1 is a number too large to store'],
      // A number a double cannot hold as written would be stored changed: rounded, or 0.
      [
        '{"content":"hi","metadata":{"discord":{"snowflake":1234567890123456789}}}',
        {},
        400,
        'body/metadata/discord/snowflake is 1234567890123456789, more exact than a number here can be (it would be stored as 1234567890123456800): send it as a string',
      ],
      ['{"content":"hi","metadata":{"ids":[1,9007199254740993]}}', {}, 400, 'body/metadata/ids/1 is 9007199254740993, more exact than a number here can be (it would be stored as 9007199254740992)'],
      ['{"content":"hi","metadata":{"tiny":1e-400}}', {}, 400, 'body/metadata/tiny is 1e-400, more exact than a number here can be (it would be stored as 0)'],
      // A key written twice: JSON.parse keeps the last value; a proxy that reads the first would see another request.
      ['{"content":"hi","content":"bye"}', {}, 400, 'body/content is given twice: a key may appear once in an object'],
      ['{"content":"hi","metadata":{"a":1,"b":{"x":[{"k":1,"k":2}]},"a":3}}', {}, 400, 'body/metadata/b/x/0/k is given twice'],
      // A key holding a slash is named as a JSON Pointer names it: not read as two levels.
      ['{"content":"hi","metadata":{"a/b":1,"a/b":2}}', {}, 400, 'body/metadata/a~1b is given twice'],
      // Written so that a miscount would hide it: an escaped quote before it, an array beside it, a space before the colon.
      ['{"content":"hi","metadata":{"a":"\\"","a":1}}', {}, 400, 'body/metadata/a is given twice'],
      ['{"content":"hi","metadata":{"a":1,"a":2,"l":[0]}}', {}, 400, 'body/metadata/a is given twice'],
      ['{"content":"hi","metadata":{"a" :1,"a" :2}}', {}, 400, 'body/metadata/a is given twice'],
      ['{"content":"hi","metadata":{"ids/x~y":[1,9007199254740993]}}', {}, 400, 'body/metadata/ids~1x~0y/1 is 9007199254740993'],
      ['{"content":"hi","metadata":{"a":{"x":1},"b":{"x":1},"c":"\\":\\"","d\\u0065":1,"de":2}}', {}, 400, 'body/metadata/de is given twice'],
    ];
    for (const [body, headers, status, details] of refusals) {
      const response = await t.request({ method: 'POST', url: messagesUrl(), body, headers: { 'content-type': 'application/json', ...headers } });
      expect(response.status, details).toBe(status);
      expect(response.body.error.details).toContain(details);
    }
    expect(t.rowCounts()).toEqual(before);
    expect((await page()).body).toEqual(stored.body);

    // What is readable as sent is taken: UTF-8 named in any spelling, a number that fits, an exponent in a string.
    for (const [contentType, metadata] of [
      ['application/json; charset=UTF-8', '{"score":1.7976931348623157e308}'],
      ['application/json;charset="utf8"', '{"note":"1e309"}'],
      // The same values written otherwise, and digits in a string.
      ['application/json', '{"exact":9007199254740992,"point":0.1,"long":1.2345678901234567,"zero":0.000000000000000000001,"big":1.5e300,"id":"1234567890123456789","trail":1.5000000000000000,"whole":1500000000000000000000}'],
      // Brackets inside a string, after an escaped quote, are no nesting.
      ['application/json', `{"note":"\\"${'['.repeat(2100)}"}`],
      // The same key in different objects, and colons inside strings, are no repeated key.
      ['application/json', '{"a":{"x":1},"b":{"x":1,"y":"k\\":v"},"c":[{"x":1},{"x":2}]}'],
    ]) {
      const response = await t.request({ method: 'POST', url: messagesUrl(), body: `{"content":"é","metadata":${metadata}}`, headers: { 'content-type': contentType! } });
      expect(response.status, contentType).toBe(201);
      expect(response.body.metadata).toEqual(JSON.parse(metadata!));
    }
    // `identity` is no coding at all, in any case.
    const identity = await t.request({ method: 'POST', url: messagesUrl(), body: '{"content":"é"}', headers: { 'content-type': 'application/json', 'content-encoding': 'Identity' } });
    expect(identity.status).toBe(201);
  });

  it('stores the message as the user by default and renews the session in the same step', async () => {
    t.clock.set(T0 + 10 * MINUTE);
    const response = await send({ content: 'Hello' });
    expect(response.status).toBe(201);
    expect(response.body).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      content: 'Hello',
      authorId: USER_ID,
      isAgent: false,
      createdAt: iso(T0 + 10 * MINUTE),
      attachments: [],
      metadata: {},
      sessionStatus: { expiresAt: iso(T0 + 40 * MINUTE), renewalCount: 1, wasRenewed: true, isNearExpiration: false },
    });
    const session = (await t.request({ method: 'GET', url: `/api/messaging/sessions/${sessionId}` })).body;
    expect(session).toMatchObject({ lastActivity: iso(T0 + 10 * MINUTE), renewalCount: 1, expiresAt: iso(T0 + 40 * MINUTE) });
    expect(t.rowCounts().messages).toBe(1);
  });

  it('lets the agent post its replies (isAgent) and keeps attachments and metadata', async () => {
    const attachments = [{ type: 'image', url: 'https://cdn.example.com/a.png', name: 'a.png' }, { type: 'file', url: 'https://x.example/b' }];
    const response = await send({ content: 'Here you go', authorId: agentId, attachments, metadata: { tokens: 12, __proto__: 'kept' } });
    expect(response.body).toMatchObject({ authorId: agentId, isAgent: true, attachments, metadata: { tokens: 12 } });
    const listed = (await page()).body.messages[0];
    expect(listed).toEqual({ ...response.body, sessionStatus: undefined });
  });

  it("keeps attachments as the elizaOS client types them: size, mimeType, and a url relative to the client's server", async () => {
    const attachments = [
      { type: 'image', url: '/media/uploads/agents/x/cat.png', name: 'cat.png', size: 48_213, mimeType: 'image/png' },
      { type: 'document', url: 'https://cdn.example.com/report.pdf', size: 0, mimeType: 'application/pdf' },
    ];
    const response = await send({ content: 'Files', attachments });
    expect(response.status).toBe(201);
    expect(response.body.attachments).toEqual(attachments);
    expect((await page()).body.messages[0].attachments).toEqual(attachments);
  });

  it('only records activity when autoRenew is off, and flags a session near expiration', async () => {
    const quiet = (await createSession(t, { agentId, timeoutConfig: { autoRenew: false } })).sessionId;
    t.clock.set(T0 + 26 * MINUTE);
    expect((await send({ content: 'hi' }, quiet)).body.sessionStatus).toEqual({
      expiresAt: iso(T0 + 30 * MINUTE),
      renewalCount: 0,
      wasRenewed: false,
      isNearExpiration: true,
    });
    const capped = (await createSession(t, { agentId, timeoutConfig: { timeoutMinutes: 30, maxDurationMinutes: 30 } })).sessionId;
    expect((await send({ content: 'hi' }, capped)).body.sessionStatus).toEqual({
      expiresAt: iso(T0 + 56 * MINUTE),
      renewalCount: 1,
      wasRenewed: true,
      isNearExpiration: false,
    });
  });

  it('renews no further than the maximum duration, and records activity without renewing', async () => {
    const capped = (await createSession(t, { agentId, timeoutConfig: { timeoutMinutes: 30, maxDurationMinutes: 40 } })).sessionId;
    const quiet = (await createSession(t, { agentId, timeoutConfig: { autoRenew: false } })).sessionId;
    t.clock.set(T0 + 20 * MINUTE);
    // now + 30 minutes would be T0 + 50: the maximum, created + 40, holds it.
    expect((await send({ content: 'hi' }, capped)).body.sessionStatus).toEqual({
      expiresAt: iso(T0 + 40 * MINUTE),
      renewalCount: 1,
      wasRenewed: true,
      isNearExpiration: false,
    });
    expect((await t.request({ method: 'GET', url: `/api/messaging/sessions/${capped}` })).body).toMatchObject({
      lastActivity: iso(T0 + 20 * MINUTE),
      expiresAt: iso(T0 + 40 * MINUTE),
      timeRemaining: 20 * MINUTE,
    });
    await send({ content: 'hi' }, quiet);
    expect((await t.request({ method: 'GET', url: `/api/messaging/sessions/${quiet}` })).body).toMatchObject({
      lastActivity: iso(T0 + 20 * MINUTE),
      expiresAt: iso(T0 + 30 * MINUTE),
      renewalCount: 0,
    });
  });

  it('keeps __proto__ and constructor in metadata as plain keys', async () => {
    const body = '{"content":"x","metadata":{"__proto__":{"polluted":true},"constructor":{"prototype":{"bad":1}},"n":1}}';
    const response = await t.request({ method: 'POST', url: messagesUrl(), body, headers: { 'content-type': 'application/json' } });
    expect(response.status).toBe(201);
    const stored = (await page()).body.messages[0].metadata;
    expect(Object.keys(stored)).toEqual(['__proto__', 'constructor', 'n']);
    expect(JSON.stringify(stored)).toBe('{"__proto__":{"polluted":true},"constructor":{"prototype":{"bad":1}},"n":1}');
    expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
  });

  it('takes metadata of exactly 10,240 bytes serialized and refuses one byte more', async () => {
    const metadataOf = (bytes: number) => ({ blob: 'x'.repeat(bytes - '{"blob":""}'.length) });
    expect(Buffer.byteLength(JSON.stringify(metadataOf(10_240)))).toBe(10_240);
    expect((await send({ content: 'x', metadata: metadataOf(10_240) })).status).toBe(201);
    const refused = await send({ content: 'y', metadata: metadataOf(10_241) });
    expect(refused.status).toBe(400);
    expect(refused.body.error.details).toBe('body/metadata must be at most 10240 bytes serialized (got 10241)');
    expect(t.rowCounts().messages).toBe(1);
  });

  it('refuses an author who is neither the user nor the agent, storing nothing', async () => {
    const before = await t.store.getSession(sessionId);
    const response = await send({ content: 'x', authorId: OTHER });
    expect(response.status).toBe(400);
    expect(response.body.error).toMatchObject({ code: 'INVALID_REQUEST', details: "body/authorId must be the session's user or its agent" });
    expect(t.rowCounts().messages).toBe(0);
    expect(await t.store.getSession(sessionId)).toEqual(before);
  });

  it('accepts 4000 characters of content', async () => {
    expect((await send({ content: 'é'.repeat(4000) })).status).toBe(201);
  });

  it.each([
    [{}, 'body/content is required'],
    [{ content: '' }, 'body/content must NOT have fewer than 1 characters'],
    [{ content: 'x'.repeat(4001) }, 'body/content must NOT have more than 4000 characters'],
    [{ content: 5 }, 'body/content must be string'],
    [{ content: 'x', authorId: 'agent' }, 'body/authorId must match format "uuid"'],
    [{ content: 'x', attachments: [{ type: 'image' }] }, 'body/attachments/0/url is required'],
    [{ content: 'x', attachments: [{ type: 'image', url: 'not a url' }] }, 'body/attachments/0/url must match format "uri-reference"'],
    [{ content: 'x', attachments: [{ type: 'image', url: '' }] }, 'body/attachments/0/url must NOT have fewer than 1 characters'],
    [{ content: 'x', attachments: [{ type: 'image', url: 'https://a.example', size: -1 }] }, 'body/attachments/0/size must be >= 0'],
    [{ content: 'x', attachments: [{ type: 'image', url: 'https://a.example', size: 1.5 }] }, 'body/attachments/0/size must be integer'],
    [{ content: 'x', attachments: [{ type: 'image', url: 'https://a.example', mimeType: '' }] }, 'body/attachments/0/mimeType must NOT have fewer than 1 characters'],
    [{ content: 'x', attachments: [{ type: 'image', url: 'https://a.example', width: 1 }] }, 'body/attachments/0/width is not allowed'],
    [{ content: 'x', attachments: Array(21).fill({ type: 'image', url: 'https://a.example' }) }, 'body/attachments must NOT have more than 20 items'],
    [{ content: 'x', metadata: { blob: 'x'.repeat(11_000) } }, /^body\/metadata must be at most 10240 bytes serialized/],
    [{ content: 'x', role: 'user' }, 'body/role is not allowed'],
  ])('refuses %j with 400, storing nothing and leaving the session as it was', async (body, details) => {
    const before = await t.store.getSession(sessionId);
    t.clock.advance(MINUTE);
    const response = await send(body);
    expect(response.status).toBe(400);
    expect(response.body.error.details).toMatch(details instanceof RegExp ? details : new RegExp(`^${details.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`));
    expect(t.rowCounts().messages).toBe(0);
    expect(await t.store.getSession(sessionId)).toEqual(before);
  });

  it('answers 410 for an expired session and 404 for an unknown one, storing nothing', async () => {
    t.clock.set(T0 + 30 * MINUTE);
    const before = await t.store.getSession(sessionId);
    const expired = await send({ content: 'too late' });
    expect(await t.store.getSession(sessionId)).toEqual(before);
    expect(expired.status).toBe(410);
    expect(expired.body.error).toMatchObject({ code: 'SESSION_EXPIRED', details: `expiresAt ${iso(T0 + 30 * MINUTE)}` });
    expect((await send({ content: 'x' }, OTHER)).body.error.code).toBe('SESSION_NOT_FOUND');
    expect(t.rowCounts().messages).toBe(0);
  });
});

describe('getSessionMessages', () => {
  async function sendMany(count: number, stepMs = 1): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < count; i += 1) {
      ids.push((await send({ content: `m${i}` })).body.id);
      t.clock.advance(stepMs);
    }
    return ids;
  }

  it('pages 50 messages when no limit is given', async () => {
    const ids = await sendMany(51);
    const first = (await page()).body;
    expect(first.messages.map((m: { id: string }) => m.id)).toEqual(ids.slice(1).reverse());
    expect(first.hasMore).toBe(true);
    expect((await page(`?before=${first.cursors.before}`)).body.messages.map((m: { id: string }) => m.id)).toEqual([ids[0]]);
  });

  it('ends a page of messages at their documented maxima at 1 MiB of JSON, hasMore true; paging by cursors.before reads each once', async () => {
    // About 69 K characters each: content, 20 attachments at their longest, 10 KB of metadata.
    const widest = {
      content: '€'.repeat(4000),
      attachments: Array.from({ length: 20 }, () => ({ type: 't'.repeat(100), url: `https://e.example/${'u'.repeat(2030)}`, name: 'n'.repeat(256), mimeType: 'm'.repeat(255), size: 1 })),
      metadata: { note: 'x'.repeat(10_220) },
    };
    const ids: string[] = [];
    for (let i = 0; i < 20; i += 1) {
      const sent = await send(widest);
      expect(sent.status).toBe(201);
      ids.unshift(sent.body.id);
    }
    const first = await page('?limit=100');
    const width = JSON.stringify(first.body.messages[0]).length;
    expect(width).toBeGreaterThan(65_000);
    expect(first.body.messages).toHaveLength(Math.ceil((1024 * 1024) / width));
    expect(first.body.hasMore).toBe(true);
    const rest = await page(`?limit=100&before=${first.body.cursors.before}`);
    expect(rest.body.hasMore).toBe(false);
    expect([...first.body.messages, ...rest.body.messages].map((message: { id: string }) => message.id)).toEqual(ids);
  });

  it('answers an empty page with null cursors', async () => {
    expect((await page()).body).toEqual({ messages: [], hasMore: false, cursors: { before: null, after: null } });
  });

  it('lists newest first, with epoch-ms cursors of the oldest and newest returned', async () => {
    const ids = await sendMany(3, 1000);
    const body = (await page()).body;
    expect(body.messages.map((m: { id: string }) => m.id)).toEqual([...ids].reverse());
    expect(body.cursors).toEqual({ before: T0, after: T0 + 2000 });
    expect(body.hasMore).toBe(false);
  });

  it('says hasMore exactly: false on a last page that happens to be full', async () => {
    await sendMany(10);
    const first = (await page('?limit=5')).body;
    expect(first.hasMore).toBe(true);
    const second = (await page(`?limit=5&before=${first.cursors.before}`)).body;
    expect(second.messages).toHaveLength(5);
    expect(second.hasMore).toBe(false);
    expect((await page(`?limit=5&before=${second.cursors.before}`)).body).toEqual({ messages: [], hasMore: false, cursors: { before: null, after: null } });
  });

  it('takes ISO date-times and epoch milliseconds sent as strings; both bounds make a window', async () => {
    const ids = await sendMany(5, 1000); // at T0, T0+1s, … T0+4s
    const contents = async (query: string) => (await page(query)).body.messages.map((m: { content: string }) => m.content);
    expect(await contents(`?before=${iso(T0 + 2000)}`)).toEqual(['m1', 'm0']);
    expect(await contents(`?after=${T0 + 2000}`)).toEqual(['m4', 'm3']);
    expect(await contents(`?after=${T0}&before=${T0 + 4000}`)).toEqual(['m3', 'm2', 'm1']);
    expect(await contents(`?after=${T0}&before=${T0 + 4000}&limit=2`)).toEqual(['m3', 'm2']);
    expect(ids).toHaveLength(5);
    // Between date and time, any white space the spec's date-time format takes (a tab, a line feed, a no-break space, U+2028), as `T`.
    for (const separator of ['%09', '%0A', '%C2%A0', '%E2%80%A8', '%20', 't']) {
      expect(await contents(`?before=${iso(T0 + 2000).replace('T', separator)}`), separator).toEqual(['m1', 'm0']);
    }
  });

  it.each([
    ['?limit=0', 'querystring/limit must be >= 1'],
    ['?limit=101', 'querystring/limit must be <= 100'],
    ['?before=yesterday', 'querystring/before must match pattern "^[0-9]{1,15}(\\.[0-9]{1,3})?$" or must match format "date-time"'],
    ['?after=-5', /^querystring\/after must /],
    ['?before=2026-11-24', /^querystring\/before must /],
  ])('refuses %s with 400 naming the parameter', async (query, details) => {
    const response = await page(query);
    expect(response.status).toBe(400);
    expect(response.body.error.details).toMatch(details);
  });

  it('is not activity, and answers 410 / 404 like every session operation', async () => {
    await send({ content: 'x' });
    const before = await t.store.getSession(sessionId);
    t.clock.advance(MINUTE);
    await page();
    expect(await t.store.getSession(sessionId)).toEqual(before);
    t.clock.set(T0 + 30 * MINUTE);
    const expired = await page();
    expect(expired.status).toBe(410);
    expect(expired.body.error).toEqual({ code: 'SESSION_EXPIRED', message: 'Session has expired', details: `expiresAt ${iso(T0 + 30 * MINUTE)}` });
    const unknown = await page('', OTHER);
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('SESSION_NOT_FOUND');
  });
});

describe('messages go with their session', () => {
  it('when the session ends, when the agent is deleted with force, and when the session is purged', async () => {
    await send({ content: 'a' });
    await t.request({ method: 'DELETE', url: `/api/messaging/sessions/${sessionId}` });
    expect(t.rowCounts().messages).toBe(0);

    sessionId = (await createSession(t, { agentId })).sessionId;
    await send({ content: 'b' });
    expect((await t.request({ method: 'DELETE', url: `/api/agents/${agentId}?force=true` })).status).toBe(200);
    expect(t.rowCounts()).toMatchObject({ sessions: 0, messages: 0 });

    agentId = await registerAgent(t);
    sessionId = (await createSession(t, { agentId, timeoutConfig: { timeoutMinutes: 5 } })).sessionId;
    await send({ content: 'c' });
    t.clock.set(T0 + 5 * MINUTE + 1440 * MINUTE);
    await t.sweeper.sweep();
    expect(t.rowCounts()).toMatchObject({ sessions: 0, messages: 0 });
  });
});

describe('paging through 1,000 messages written in one millisecond', () => {
  // About 3,400 requests: 6-11 s here, 24 s on a machine loaded by other runs.
  it('returns each exactly once, in order, backwards and forwards, with page sizes 1, 7, 50 and 100', { timeout: 60_000 }, async () => {
    const written: string[] = [];
    for (let i = 0; i < 1000; i += 1) written.push((await send({ content: `m${i}` })).body.id); // the clock never moves
    for (const limit of [1, 7, 50, 100]) await pageThrough(written, limit);
  });

  async function pageThrough(written: string[], limit: number) {
    const backwards: string[] = [];
    let cursor: number | undefined;
    for (;;) {
      const body: { messages: Array<{ id: string }>; hasMore: boolean; cursors: { before: number } } = (await page(`?limit=${limit}${cursor === undefined ? '' : `&before=${cursor}`}`)).body;
      backwards.push(...body.messages.map((m: { id: string }) => m.id));
      const done = backwards.length === 1000;
      expect(body.hasMore, `page size ${limit}, after ${backwards.length}`).toBe(!done);
      if (!body.hasMore) break;
      cursor = body.cursors.before;
    }
    expect(backwards, `page size ${limit}`).toEqual([...written].reverse());

    const forwards: string[] = [];
    cursor = 0;
    for (;;) {
      const body: { messages: Array<{ id: string }>; hasMore: boolean; cursors: { after: number } } = (await page(`?limit=${limit}&after=${cursor}`)).body;
      forwards.push(...[...body.messages].reverse().map((m: { id: string }) => m.id));
      expect(body.hasMore, `page size ${limit}, after ${forwards.length}`).toBe(forwards.length < 1000);
      if (!body.hasMore) break;
      cursor = body.cursors.after;
    }
    expect(forwards, `page size ${limit}`).toEqual(written);
  }
});

describe('message page query plans', () => {
  it('reads one range of the (session, position) primary key in either direction, never the whole table', () => {
    const db = new Database(':memory:');
    migrate(db);
    for (const sql of Object.values(MESSAGE_VIEW_PAGE_SQL)) {
      const plan = db
        .prepare(`EXPLAIN QUERY PLAN ${sql}`)
        .all({ sessionId: 's', before: 10, after: 0, limit: 50 })
        .map((row) => (row as { detail: string }).detail)
        .join(' | ');
      expect(plan).toMatch(/SEARCH messages USING PRIMARY KEY \(session_id=\? AND position>\? AND position<\?\)/);
      expect(plan).not.toMatch(/TEMP B-TREE|SCAN/);
    }
    db.close();
  });
});
