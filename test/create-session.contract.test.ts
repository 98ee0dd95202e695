import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MINUTE, T0 } from './helpers/fake-clock.js';
import { USER_ID, createSession, registerAgent } from './helpers/fixtures.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const SEED_FIELDS = ['agentId', 'createdAt', 'expiresAt', 'metadata', 'sessionId', 'timeoutConfig', 'userId'];
const URL = '/api/messaging/sessions';

let t: TestApp;
let agentId: string;

beforeEach(async () => {
  t = await startTestApp();
  agentId = await registerAgent(t);
});
afterEach(() => t.close());


describe('createSession 201', () => {
  it('answers exactly the seed fields, a random (v4) sessionId as the contract says, defaults 30 / true / 720 / 5 and expiresAt = createdAt + 30 min', async () => {
    const response = await t.request({ method: 'POST', url: URL, body: { agentId, userId: USER_ID } });
    expect(response.status).toBe(201);
    expect(Object.keys(response.body).sort()).toEqual(SEED_FIELDS);
    expect(response.body.sessionId).toMatch(UUID_V4);
    expect(response.body).toMatchObject({
      agentId,
      userId: USER_ID,
      createdAt: new Date(T0).toISOString(),
      expiresAt: new Date(T0 + 30 * MINUTE).toISOString(),
      metadata: {},
      timeoutConfig: { timeoutMinutes: 30, autoRenew: true, maxDurationMinutes: 720, warningThresholdMinutes: 5 },
    });
    // toMatchObject takes `metadata: {}` for any object: without metadata, it is exactly {} (and so it is stored).
    expect(response.body.metadata).toEqual({});
    expect((await t.store.getSession(response.body.sessionId))?.metadata).toEqual({});
  });

  it('gives every session its own id, two in one millisecond too, none telling when it was made', async () => {
    const ids = [];
    for (let i = 0; i < 20; i += 1) ids.push((await createSession(t, { agentId })).sessionId);
    expect(new Set(ids).size).toBe(20);
    expect(ids.every((id) => UUID_V4.test(id))).toBe(true);
    // A v7 id starts with its creation millisecond: twenty in one millisecond would share their first 12 digits.
    expect(new Set(ids.map((id) => id.slice(0, 8))).size).toBeGreaterThan(1);
  });

  it("accepts the seed's own example config and raises maxDurationMinutes 123 to 722", async () => {
    const body = await createSession(t, {
      agentId,
      timeoutConfig: { timeoutMinutes: 722, autoRenew: true, maxDurationMinutes: 123, warningThresholdMinutes: 123 },
    });
    expect(body.timeoutConfig).toEqual({ timeoutMinutes: 722, autoRenew: true, maxDurationMinutes: 722, warningThresholdMinutes: 123 });
    expect(Date.parse(body.expiresAt) - Date.parse(body.createdAt)).toBe(722 * MINUTE);
  });

  it('caps expiresAt at createdAt + maxDurationMinutes', async () => {
    // timeout 30 ≤ max 30: both bounds coincide; with max 40 the timeout still wins.
    const body = await createSession(t, { agentId, timeoutConfig: { timeoutMinutes: 30, maxDurationMinutes: 40 } });
    expect(body.expiresAt).toBe(new Date(T0 + 30 * MINUTE).toISOString());
  });

  it('stores the session with every effective value', async () => {
    const body = await createSession(t, { agentId, metadata: { platform: 'discord', extra: { nested: [1, 2] } }, timeoutConfig: { autoRenew: false } });
    expect(body.metadata).toEqual({ platform: 'discord', extra: { nested: [1, 2] } });
    const stored = await t.store.getSession(body.sessionId);
    expect(stored).toEqual({
      id: body.sessionId,
      agentId,
      userId: USER_ID,
      createdAt: T0,
      lastActivity: T0,
      anchorAt: T0,
      expiresAt: T0 + 30 * MINUTE,
      warnsAt: T0 + 25 * MINUTE,
      renewalCount: 0,
      status: 'active',
      announced: 'nothing',
      metadata: { platform: 'discord', extra: { nested: [1, 2] } },
      config: { timeoutMinutes: 30, autoRenew: false, maxDurationMinutes: 720, warningThresholdMinutes: 5 },
    });
  });

  it('gives sessions the timeout of the agent (SESSION_TIMEOUT_MINUTES 60) unless the request says otherwise', async () => {
    const slowAgent = await registerAgent(t, { settings: { SESSION_TIMEOUT_MINUTES: 60, SESSION_AUTO_RENEW: false } });
    const fromAgent = await createSession(t, { agentId: slowAgent });
    expect(fromAgent.timeoutConfig).toEqual({ timeoutMinutes: 60, autoRenew: false, maxDurationMinutes: 720, warningThresholdMinutes: 5 });
    expect(fromAgent.expiresAt).toBe(new Date(T0 + 60 * MINUTE).toISOString());
    const fromRequest = await createSession(t, { agentId: slowAgent, timeoutConfig: { timeoutMinutes: 15 } });
    expect(fromRequest.timeoutConfig).toMatchObject({ timeoutMinutes: 15, autoRenew: false });
  });

  it("falls back to the server's configured defaults after the agent's settings", async () => {
    const server = await startTestApp({ sessionDefaults: { timeoutMinutes: 45, warningThresholdMinutes: 9 } });
    try {
      const plain = await registerAgent(server);
      const withSettings = await registerAgent(server, { settings: { SESSION_WARNING_THRESHOLD_MINUTES: 2 } });
      expect((await createSession(server, { agentId: plain })).timeoutConfig).toEqual({
        timeoutMinutes: 45,
        autoRenew: true,
        maxDurationMinutes: 720,
        warningThresholdMinutes: 9,
      });
      expect((await createSession(server, { agentId: withSettings })).timeoutConfig.warningThresholdMinutes).toBe(2);
    } finally {
      await server.close();
    }
  });

  it('keeps __proto__ and constructor keys in metadata as plain data', async () => {
    const raw = `{"agentId":"${agentId}","userId":"${USER_ID}","metadata":{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}}`;
    const response = await t.request({ method: 'POST', url: URL, body: raw, headers: { 'content-type': 'application/json' } });
    expect(response.status).toBe(201);
    expect(t.rowCounts().sessions).toBe(1);
    expect(response.rawBody).toContain('"__proto__":{"polluted":true}');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const stored = await t.store.getSession(response.body.sessionId);
    expect(Object.getPrototypeOf(stored!.metadata)).toBe(Object.prototype);
    expect(Object.keys(stored!.metadata)).toEqual(['__proto__', 'constructor']);
  });

  it('accepts the upper bounds: timeoutMinutes and warningThresholdMinutes 1440, maxDurationMinutes 20160', async () => {
    const body = await createSession(t, { agentId, timeoutConfig: { timeoutMinutes: 1440, maxDurationMinutes: 20160, warningThresholdMinutes: 1440 } });
    expect(body.timeoutConfig).toEqual({ timeoutMinutes: 1440, autoRenew: true, maxDurationMinutes: 20160, warningThresholdMinutes: 1440 });
    expect(body.expiresAt).toBe(new Date(T0 + 1440 * MINUTE).toISOString());
  });

  it('accepts metadata of exactly 10,240 bytes serialized (one byte more is refused below)', async () => {
    const metadata = { blob: 'x'.repeat(10_240 - '{"blob":""}'.length) };
    expect(Buffer.byteLength(JSON.stringify(metadata))).toBe(10_240);
    expect((await createSession(t, { agentId, metadata })).metadata).toEqual(metadata);
  });

  it('accepts metadata nested 1,000 deep within the size limit', async () => {
    const deep = JSON.parse('{"a":'.repeat(1000) + '1' + '}'.repeat(1000));
    const body = await createSession(t, { agentId, metadata: { deep } });
    expect(JSON.stringify(body.metadata.deep).length).toBe(JSON.stringify(deep).length);
  });
});

describe('createSession 400', () => {
  async function expectRejected(body: unknown, detail: RegExp) {
    const before = t.rowCounts();
    const response = await t.request({ method: 'POST', url: URL, body });
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe('INVALID_REQUEST');
    expect(response.body.error.details).toMatch(detail);
    expect(t.rowCounts()).toEqual(before);
    return response;
  }

  it.each([4, 1441, 30.5, '30', null, true])('timeoutMinutes %j is refused, naming timeoutConfig/timeoutMinutes', async (value) => {
    const response = await expectRejected({ agentId, userId: USER_ID, timeoutConfig: { timeoutMinutes: value } }, /^body\/timeoutConfig\/timeoutMinutes must be/);
    expect(response.body.error.details.split(';')).toHaveLength(1);
  });

  it.each([
    [{ maxDurationMinutes: 4 }, /body\/timeoutConfig\/maxDurationMinutes must be >= 5/],
    [{ maxDurationMinutes: 20161 }, /body\/timeoutConfig\/maxDurationMinutes must be <= 20160/],
    [{ warningThresholdMinutes: 0 }, /body\/timeoutConfig\/warningThresholdMinutes must be >= 1/],
    [{ warningThresholdMinutes: 1441 }, /body\/timeoutConfig\/warningThresholdMinutes must be <= 1440/],
    [{ autoRenew: 'true' }, /body\/timeoutConfig\/autoRenew must be boolean/],
    [{ autoRenew: 1 }, /body\/timeoutConfig\/autoRenew must be boolean/],
    [{ timeoutMinutes: 30, unknown: 1 }, /body\/timeoutConfig\/unknown is not allowed/],
  ])('timeoutConfig %j is refused', async (timeoutConfig, detail) => {
    await expectRejected({ agentId, userId: USER_ID, timeoutConfig }, detail);
  });

  it('names a bad agentId or userId uuid', async () => {
    await expectRejected({ agentId: 'not-a-uuid', userId: USER_ID }, /^body\/agentId must match format "uuid"$/);
    await expectRejected({ agentId, userId: '3c90c3cc0d444b5088888dd25736052a' }, /^body\/userId must match format "uuid"$/);
    // The URN form is a second spelling of the same id, which lookups would treat as another.
    await expectRejected({ agentId: `urn:uuid:${agentId}`, userId: USER_ID }, /^body\/agentId must match format "uuid"$/);
    await expectRejected({ agentId, userId: `urn:uuid:${USER_ID}` }, /^body\/userId must match format "uuid"$/);
    const listed = await t.request({ method: 'GET', url: `/api/messaging/sessions?userId=urn:uuid:${USER_ID}` });
    expect(listed.status).toBe(400);
    expect(listed.body.error.details).toBe('querystring/userId must match format "uuid"');
  });

  it('names only userId when only userId is missing', async () => {
    await expectRejected({ agentId }, /^body\/userId is required$/);
  });

  it('lists every problem at once', async () => {
    const response = await expectRejected({ timeoutConfig: { timeoutMinutes: 1 } }, /body\/agentId is required/);
    expect(response.body.error.details).toContain('body/userId is required');
    expect(response.body.error.details).toContain('body/timeoutConfig/timeoutMinutes must be >= 5');
  });

  it('refuses unknown top-level properties and typed metadata of the wrong type', async () => {
    await expectRejected({ agentId, userId: USER_ID, timeout: 30 }, /^body\/timeout is not allowed$/);
    await expectRejected({ agentId, userId: USER_ID, metadata: { platform: 5 } }, /^body\/metadata\/platform must be string$/);
    await expectRejected({ agentId, userId: USER_ID, metadata: [] }, /^body\/metadata must be object$/);
  });

  it('refuses metadata of 10,241 bytes serialized, naming its size', async () => {
    const metadata = { blob: 'x'.repeat(10_241 - '{"blob":""}'.length) };
    await expectRejected({ agentId, userId: USER_ID, metadata }, /^body\/metadata must be at most 10240 bytes serialized \(got 10241\)$/);
  });

  it('reads a body just under 1 MB (its metadata then refused as too large: 400, not 413)', async () => {
    const body = JSON.stringify({ agentId, userId: USER_ID, metadata: { blob: '' } });
    const padded = body.replace('"blob":""', `"blob":"${'x'.repeat(1024 * 1024 - body.length)}"`);
    expect(Buffer.byteLength(padded)).toBe(1024 * 1024);
    const before = t.rowCounts();
    const response = await t.request({ method: 'POST', url: URL, body: padded, headers: { 'content-type': 'application/json' } });
    expect(response.status).toBe(400);
    expect(response.body.error.details).toMatch(/^body\/metadata must be at most 10240 bytes serialized/);
    expect(t.rowCounts()).toEqual(before);
  });

  it('refuses 20 KB of metadata with a short answer that does not echo it', async () => {
    const response = await expectRejected({ agentId, userId: USER_ID, metadata: { blob: 'x'.repeat(20_000) } }, /^body\/metadata must be at most 10240 bytes serialized/);
    expect(response.rawBody.length).toBeLessThan(1024);
  });

  it('refuses metadata nested too deeply to serialize with 400, not 500, before parsing it', async () => {
    const depth = 300_000; // 600 KB of brackets: under the body limit, too deep for JSON.stringify
    const raw = `{"agentId":"${agentId}","userId":"${USER_ID}","metadata":{"deep":${'['.repeat(depth)}${']'.repeat(depth)}}}`;
    const before = t.rowCounts();
    const response = await t.request({ method: 'POST', url: URL, body: raw, headers: { 'content-type': 'application/json' } });
    expect(response.status).toBe(400);
    expect(response.body.error).toMatchObject({ code: 'INVALID_REQUEST', details: 'body is nested too deeply (arrays and objects more than 1024 levels deep)' });
    expect(t.rowCounts()).toEqual(before);
  });

  it('takes metadata nested 1,022 levels deep (the body at 1,024), refuses one more, and does not count brackets inside strings', async () => {
    const nested = (levels: number) => `${'['.repeat(levels)}${']'.repeat(levels)}`;
    const body = (deep: string) => `{"agentId":"${agentId}","userId":"${USER_ID}","metadata":{"deep":${deep}}}`;
    // The body object and metadata are two levels: 1,022 arrays make 1,024.
    expect((await t.request({ method: 'POST', url: URL, body: body(nested(1022)), headers: { 'content-type': 'application/json' } })).status).toBe(201);
    expect((await t.request({ method: 'POST', url: URL, body: body(nested(1023)), headers: { 'content-type': 'application/json' } })).status).toBe(400);
    expect((await t.request({ method: 'POST', url: URL, body: `{"agentId":"${agentId}","userId":"${USER_ID}","metadata":{"s":${JSON.stringify('[{'.repeat(1500) + '\\"')}}}`, headers: { 'content-type': 'application/json' } })).status).toBe(201);
  });

  it('answers 400 in the envelope, not 500, to a body whose size does not match its Content-Length', async () => {
    const before = t.rowCounts();
    const raw = JSON.stringify({ agentId, userId: USER_ID });
    const response = await t.request({ method: 'POST', url: URL, body: raw, headers: { 'content-type': 'application/json', 'content-length': '5' } });
    expect(response.status).toBe(400);
    expect(response.body.error).toMatchObject({ code: 'INVALID_REQUEST', details: 'Request body size did not match Content-Length' });
    expect(t.rowCounts()).toEqual(before);
  });

  it('keeps an unknown property name with 100,000 characters out of the answer', async () => {
    const response = await expectRejected({ agentId, userId: USER_ID, ['k'.repeat(100_000)]: 1 }, /is not allowed$/);
    expect(response.rawBody.length).toBeLessThan(1024);
  });

  it.each([
    ['malformed JSON', '{not json', /^body is not valid JSON$/],
    ['an empty JSON body', '', /^body is required/],
    ['JSON null', 'null', /^body must be object$/],
    ['a JSON array', '[]', /^body must be object$/],
  ])('refuses %s', async (_name, raw, detail) => {
    const response = await t.request({ method: 'POST', url: URL, body: raw, headers: { 'content-type': 'application/json' } });
    expect(response.status).toBe(400);
    expect(response.body.error).toMatchObject({ code: 'INVALID_REQUEST' });
    expect(response.body.error.details).toMatch(detail);
  });

  it('refuses a request with no body and no content type', async () => {
    const response = await t.request({ method: 'POST', url: URL });
    expect(response.status).toBe(400);
    expect(response.body.error.details).toBe('body is required (application/json)');
  });
});

describe('createSession 404, 413, 415, 500', () => {
  it('answers 404 AGENT_NOT_FOUND for an unknown agent and stores nothing', async () => {
    const unknown = '3c90c3cc-0d44-4b50-8888-8dd25736052a';
    const response = await t.request({ method: 'POST', url: URL, body: { agentId: unknown, userId: USER_ID } });
    expect(response.status).toBe(404);
    expect(response.body).toEqual({
      success: false,
      error: { code: 'AGENT_NOT_FOUND', message: 'Agent not found', details: `body/agentId ${unknown} does not exist` },
    });
    expect(t.rowCounts()).toMatchObject({ agents: 1, sessions: 0 });
  });

  it('answers 415 to text/plain', async () => {
    const response = await t.request({ method: 'POST', url: URL, body: JSON.stringify({ agentId, userId: USER_ID }), headers: { 'content-type': 'text/plain' } });
    expect(response.status).toBe(415);
    expect(response.body.error).toMatchObject({ code: 'UNSUPPORTED_MEDIA_TYPE', details: 'content-type text/plain is not supported; send application/json' });
    expect(t.rowCounts().sessions).toBe(0);
  });

  it('answers 413 to a 2 MB body', async () => {
    const body = { agentId, userId: USER_ID, metadata: { blob: 'x'.repeat(2 * 1024 * 1024) } };
    const response = await t.request({ method: 'POST', url: URL, body });
    expect(response.status).toBe(413);
    expect(response.body.error).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', details: 'body must be at most 1048576 bytes' });
    expect(response.rawBody.length).toBeLessThan(1024);
    expect(t.rowCounts().sessions).toBe(0);
  });

  it('answers 413 to a body one byte over 1 MB', async () => {
    const body = JSON.stringify({ agentId, userId: USER_ID, metadata: { blob: '' } });
    const over = body.replace('"blob":""', `"blob":"${'x'.repeat(1024 * 1024 + 1 - body.length)}"`);
    const response = await t.request({ method: 'POST', url: URL, body: over, headers: { 'content-type': 'application/json' } });
    expect(response.status).toBe(413);
    expect(t.rowCounts().sessions).toBe(0);
  });

  it('answers 500 in the envelope, without a stack trace, when the store fails', async () => {
    await t.store.close();
    const response = await t.request({ method: 'POST', url: URL, body: { agentId, userId: USER_ID } });
    expect(response.status).toBe(500);
    expect(response.body).toEqual({
      success: false,
      error: { code: 'INTERNAL_ERROR', message: 'Internal server error', details: 'The error was logged on the server.' },
    });
    expect(response.rawBody).not.toMatch(/at |\.ts|database/);
  });
});

describe('routes outside the spec', () => {
  it.each([
    ['GET', '/api/nope'],
    ['PUT', '/api/messaging/sessions'],
    ['GET', '/'],
  ] as const)('%s %s answers 404 NOT_FOUND in the envelope', async (method, url) => {
    const response = await t.request({ method, url });
    expect(response.status).toBe(404);
    expect(response.body.error).toEqual({ code: 'NOT_FOUND', message: 'Route not found', details: `${method} ${url} does not exist` });
  });
});
