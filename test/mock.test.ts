// Mock mode: every operation of our spec answers a documented status with a body the
// contract tests' validator accepts, `Prefer` chooses the status and the example, bad
// requests get a 400 in the document's error shape; an unrelated document mocks too.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import type { OpenAPIBackend } from 'openapi-backend';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parse, stringify } from 'yaml';
import { ResponseChecker } from '../src/conformance/check.js';
import { loadSpec } from '../src/conformance/spec-model.js';
import { createMockServer } from '../src/mock/mock-server.js';
import { parsePrefer } from '../src/mock/prefer.js';
import { specDocument, specOperations, specPath, specSchemaValidator } from '../src/spec.js';
import { builtFile } from './helpers/built.js';
import { responseViolations, specBackend } from './helpers/spec-validator.js';
import { startTestApp } from './helpers/test-app.js';

const PETSTORE = fileURLToPath(new URL('./fixtures/petstore.yaml', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const UUID = '3c90c3cc-0d44-4b50-8888-8dd25736052a';

type Operation = ReturnType<OpenAPIBackend['getOperations']>[number];

/** A request the operation accepts: path parameters filled in, the body its first example. */
function validRequest(operation: Operation) {
  const parameters = (operation.parameters ?? []) as Array<{ name: string; in: string; schema?: { format?: string } }>;
  const url = operation.path.replace(/\{(\w+)\}/g, (_, name: string) => {
    const parameter = parameters.find((p) => p.in === 'path' && p.name === name);
    return parameter?.schema?.format === 'uuid' ? UUID : 'a1';
  });
  const media = (operation.requestBody as { content?: Record<string, { examples?: Record<string, { value: unknown }> }> } | undefined)?.content?.[
    'application/json'
  ];
  const body = media?.examples ? Object.values(media.examples)[0]!.value : undefined;
  return { method: operation.method.toUpperCase() as 'GET', url, body };
}

/**
 * Frames of Server-Sent Events, each one's data an Event of the spec (its id's pattern
 * included: openapi-backend's generator wrote "string"), framed as the spec's streams are.
 */
function expectEventFrames(body: string): void {
  const frames = body.split('\n\n').filter(Boolean);
  expect(frames.length).toBeGreaterThan(0);
  const isEvent = specSchemaValidator('Event');
  for (const frame of frames) {
    const data = JSON.parse(/^data: (.*)$/m.exec(frame)![1]!);
    expect(isEvent(data), `${frame}: ${JSON.stringify(isEvent.errors)}`).toBe(true);
    expect(frame.split('\n').slice(0, 2), frame).toEqual([`id: ${data.id}`, `event: ${data.type}`]);
  }
}

/** A document whose one operation posts `schema` and answers it (201), or a 400 `{ message }`; `schemas` its components' schemas, as YAML. */
const posting = (version: string, title: string, path: string, operationId: string, schema: string, schemas: string) => `openapi: ${version}
info: { title: ${title}, version: "1" }
paths:
  ${path}:
    post:
      operationId: ${operationId}
      requestBody: { required: true, content: { application/json: { schema: { $ref: '#/components/schemas/${schema}' } } } }
      responses:
        '201': { description: made, content: { application/json: { schema: { $ref: '#/components/schemas/${schema}' } } } }
        '400': { description: refused, content: { application/json: { schema: { type: object, properties: { message: { type: string } } } } } }
components:
  schemas:${schemas}`;

async function call(app: FastifyInstance, request: { method: 'GET' | 'POST'; url: string; body?: unknown }, headers: Record<string, string> = {}) {
  const response = await app.inject({
    method: request.method,
    url: request.url,
    headers: { ...(request.body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    payload: request.body === undefined ? undefined : JSON.stringify(request.body),
  });
  const isJson = /json/.test(String(response.headers['content-type']));
  return { status: response.statusCode, body: isJson ? JSON.parse(response.body) : response.body || undefined, contentType: response.headers['content-type'], headers: response.headers };
}

describe('mock mode on our spec', () => {
  let app: FastifyInstance;
  let api: OpenAPIBackend;
  beforeAll(async () => {
    app = await createMockServer({ specPath });
    api = await specBackend();
  });
  afterAll(() => app.close());

  it('answers every operation with a documented status and a valid body, and Prefer: code= selects each documented status', async () => {
    const operations = api.getOperations();
    expect(operations.length).toBe(specOperations().length);
    for (const operation of operations) {
      const request = validRequest(operation);
      const answer = await call(app, request);
      expect(answer.status, `${operation.operationId} default`).toBeGreaterThanOrEqual(200);
      expect(answer.status, `${operation.operationId} default`).toBeLessThan(300);
      expect(responseViolations(api, operation.operationId, answer.status, answer.body), operation.operationId).toEqual([]);
      for (const status of Object.keys(operation.responses ?? {})) {
        const chosen = await call(app, request, { prefer: `code=${status}` });
        expect(chosen.status, `${operation.operationId} Prefer: code=${status}`).toBe(Number(status));
        expect(responseViolations(api, operation.operationId, chosen.status, chosen.body), `${operation.operationId} ${status}`).toEqual([]);
      }
    }
  });

  it("answers each operation's 404 and 409 with the code the server answers it with: a session operation's 404 names the session, createAgent's 409 the agent registered (each took the first example of a response shared by all)", async () => {
    const codes: Record<string, Record<string, string>> = { '404': {}, '409': {} };
    for (const [status, byOperation] of Object.entries(codes)) {
      for (const operation of api.getOperations().filter((candidate) => candidate.responses?.[status])) {
        const answer = await call(app, validRequest(operation), { prefer: `code=${status}` });
        byOperation[operation.operationId!] = answer.body.error.code;
      }
    }
    const each = (ids: string[], code: string) => Object.fromEntries(ids.map((id) => [id, code]));
    const session = ['endSession', 'getSession', 'getSessionMessages', 'renewSession', 'sendSessionMessage', 'sessionHeartbeat', 'streamSessionEvents', 'updateSessionTimeout'];
    expect(codes['404']).toEqual({
      ...each(['createSession', 'createWebhook', 'deleteAgent', 'getAgent'], 'AGENT_NOT_FOUND'),
      ...each(session, 'SESSION_NOT_FOUND'),
      ...each(['deleteWebhook', 'listWebhookDeliveries'], 'WEBHOOK_NOT_FOUND'),
      getMetrics: 'NOT_FOUND',
    });
    expect(codes['409']).toEqual({
      createAgent: 'AGENT_ALREADY_EXISTS',
      deleteAgent: 'AGENT_HAS_ACTIVE_SESSIONS',
      ...each(['createSession', 'createWebhook', 'sendSessionMessage'], 'IDEMPOTENCY_KEY_IN_USE'),
    });
  });

  it('accepts any credentials or none on operations that ask for an API key, without warnings', async () => {
    // A server of its own: openapi-backend warns once per instance.
    const fresh = await createMockServer({ specPath });
    const warn = vi.spyOn(console, 'warn');
    try {
      const listed = await call(fresh, { method: 'GET', url: '/api/agents' });
      const keyed = await call(fresh, { method: 'GET', url: '/api/agents' }, { 'x-api-key': 'anything' });
      expect([listed.status, keyed.status]).toEqual([200, 200]);
      const refused = await call(fresh, { method: 'GET', url: '/api/agents' }, { prefer: 'code=401' });
      expect(refused.status).toBe(401);
      expect(responseViolations(api, 'listAgents', 401, refused.body)).toEqual([]);
      expect(warn).not.toHaveBeenCalled();
    } finally {
      warn.mockRestore();
      await fresh.close();
    }
  });

  it('serves text media types as text', async () => {
    const answer = await call(app, { method: 'GET', url: '/metrics' });
    expect(answer.contentType).toMatch(/^text\/plain/);
    expect(answer.body).toContain('# TYPE sessions_api_http_request_duration_seconds histogram');
  });

  it('serves an event stream as Server-Sent Events: its mocked events as frames, then the end', async () => {
    const answer = await call(app, { method: 'GET', url: '/api/messaging/sessions/events' });
    expect(answer.status).toBe(200);
    expect(answer.contentType).toMatch(/^text\/event-stream/);
    expectEventFrames(String(answer.body));
  });

  it('chooses a named example with Prefer: example=', async () => {
    const answer = await call(app, { method: 'GET', url: `/api/messaging/sessions/${UUID}` }, { prefer: 'code=410, example=expired' });
    expect(answer.status).toBe(410);
    expect(answer.body.error).toEqual({ code: 'SESSION_EXPIRED', message: 'Session has expired', details: 'expiresAt 2026-11-24T10:30:00.000Z' });
    const unknown = await call(app, { method: 'GET', url: `/api/messaging/sessions/${UUID}` }, { prefer: 'code=410, example=nope' });
    expect(unknown.status).toBe(422);
    expect(unknown.body.error.details).toBe('Prefer: example=nope is not an example of getSession 410 (examples: expired)');
    // A response without named examples says so, not an empty list.
    const none = await call(app, { method: 'GET', url: '/metrics' }, { prefer: 'example=nope' });
    expect(none.status).toBe(422);
    expect(none.body.error.details).toBe('Prefer: example=nope is not an example of getMetrics 200 (examples: none)');
  });

  it("refuses a Prefer: code= the operation does not document, with 422 in the operation's error shape: its 422, else its 400", async () => {
    const answer = await call(app, { method: 'GET', url: '/api/agents' }, { prefer: 'code=418' });
    expect(answer.status).toBe(422);
    const documented = Object.keys((specDocument().paths['/api/agents']!.get as unknown as { responses: object }).responses).join(', ');
    expect(responseViolations(api, 'listAgents', 400, answer.body)).toEqual([]);
    expect(answer.body.error.details).toBe(`Prefer: code=418 is not documented for listAgents (documented: ${documented})`);
    const list = await call(app, { method: 'GET', url: '/api/agents' }, { prefer: 'code=2xx' });
    expect([list.status, list.body.error.details]).toEqual([422, 'Prefer: code=2xx is not a status code']);
    const create = await call(app, { method: 'POST', url: '/api/messaging/sessions', body: { agentId: UUID, userId: UUID } }, { prefer: 'code=2xx' });
    expect(create.status).toBe(422);
    expect(responseViolations(api, 'createSession', 422, create.body)).toEqual([]);
    expect(create.body.error.details).toBe('Prefer: code=2xx is not a status code');
    // createSession's 422 is the idempotency key's: the mock's own refusal does not say the key was reused.
    expect([create.body.error.code, create.body.error.message]).toEqual(['INVALID_REQUEST', 'Invalid request']);
    const example = await call(app, { method: 'POST', url: '/api/messaging/sessions', body: { agentId: UUID, userId: UUID } }, { prefer: 'code=201, example=nope' });
    expect([example.status, example.body.error.code, example.body.error.message]).toEqual([422, 'INVALID_REQUEST', 'Invalid request']);
  });

  it('lets a page on any origin call it: preflights answered 204 with what they ask for, every answer to a request with an Origin (errors and the router\'s refusals too) readable (it had no CORS at all)', async () => {
    const origin = 'http://localhost:5173';
    const preflight = await app.inject({
      method: 'OPTIONS',
      url: '/api/messaging/sessions',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, prefer, x-api-key' },
    });
    expect(preflight.statusCode).toBe(204);
    expect(preflight.body).toBe('');
    expect(preflight.headers).toMatchObject({
      'access-control-allow-origin': '*',
      'access-control-allow-methods': 'POST',
      'access-control-allow-headers': 'content-type, prefer, x-api-key',
      'access-control-max-age': '600',
    });
    const answers = [
      await call(app, { method: 'POST', url: '/api/messaging/sessions', body: { agentId: UUID, userId: UUID } }, { origin }),
      await call(app, { method: 'GET', url: `/api/messaging/sessions/${UUID}` }, { origin, prefer: 'code=410' }),
      await call(app, { method: 'GET', url: '/nowhere' }, { origin }),
      await call(app, { method: 'GET', url: '/api/agents/%E0%A4%A' }, { origin }),
    ];
    expect(answers.map((answer) => answer.status)).toEqual([201, 410, 404, 400]);
    expect([...responseViolations(api, 'createSession', 201, answers[0]!.body), ...responseViolations(api, 'getSession', 410, answers[1]!.body)]).toEqual([]);
    const isErrorEnvelope = specSchemaValidator('ErrorEnvelope');
    expect([isErrorEnvelope(answers[2]!.body), isErrorEnvelope(answers[3]!.body)]).toEqual([true, true]);
    for (const answer of answers) expect([answer.headers['access-control-allow-origin'], answer.headers['access-control-expose-headers']]).toEqual(['*', '*']);
    // Without an Origin (not a browser's cross-origin request), no CORS header; an OPTIONS that is no preflight is no operation.
    expect((await call(app, { method: 'GET', url: '/api/agents' })).headers['access-control-allow-origin']).toBeUndefined();
    expect((await app.inject({ method: 'OPTIONS', url: '/api/agents', headers: { origin } })).statusCode).toBe(404);
    // The preflight of a URL the router refuses too (R44: 400, and the page saw no answer at all).
    const refusedUrl = await app.inject({ method: 'OPTIONS', url: '/api/agents/%E0%A4%A', headers: { origin, 'access-control-request-method': 'GET' } });
    expect([refusedUrl.statusCode, refusedUrl.headers['access-control-allow-origin'], refusedUrl.headers['access-control-allow-methods']]).toEqual([204, '*', 'GET']);
  });

  it('answers with the X-Request-Id a request sent, as the server does (a header the operation takes and its answer documents), else with the example, on event streams too', async () => {
    const sent = await call(app, { method: 'GET', url: `/api/messaging/sessions/${UUID}` }, { 'x-request-id': 'page-42' });
    const refused = await call(app, { method: 'GET', url: `/api/messaging/sessions/${UUID}` }, { 'x-request-id': 'page-43', prefer: 'code=404' });
    const none = await call(app, { method: 'GET', url: `/api/messaging/sessions/${UUID}` });
    expect([sent.status, refused.status, none.status]).toEqual([200, 404, 200]);
    expect([...responseViolations(api, 'getSession', 200, sent.body), ...responseViolations(api, 'getSession', 404, refused.body)]).toEqual([]);
    expect([sent.headers['x-request-id'], refused.headers['x-request-id'], none.headers['x-request-id']]).toEqual(['page-42', 'page-43', '5f0c6f2e-3b1d-4a8e-9c27-6d4b1e0a9f13']);
    // An event stream's answer too (it had none).
    const stream = await call(app, { method: 'GET', url: `/api/messaging/sessions/${UUID}/events` }, { 'x-request-id': 'page-44' });
    expect([stream.status, stream.contentType, stream.headers['x-request-id']]).toEqual([200, 'text/event-stream', 'page-44']);
  });

  it('refuses a body of a media type the operation does not take with 415 in the documented error shape (it answered 201 to text/plain)', async () => {
    const text = await app.inject({ method: 'POST', url: '/api/messaging/sessions', headers: { 'content-type': 'text/plain' }, payload: 'hello' });
    expect(text.statusCode).toBe(415);
    const body = JSON.parse(text.body);
    expect(responseViolations(api, 'createSession', 415, body)).toEqual([]);
    expect(body.error).toMatchObject({ code: 'UNSUPPORTED_MEDIA_TYPE', details: 'content-type text/plain is not accepted by createSession (accepted: application/json)' });
    const json = await call(app, { method: 'POST' as 'GET', url: '/api/messaging/sessions', body: { agentId: UUID, userId: UUID } }, { 'content-type': 'application/json; charset=utf-8' });
    expect(json.status).toBe(201);
  });

  it('refuses a JSON body that is a string, as the server does, even one spelling an object (a double-encoded body was parsed twice and answered 201)', async () => {
    const post = (payload: string) => app.inject({ method: 'POST', url: '/api/messaging/sessions', headers: { 'content-type': 'application/json' }, payload });
    for (const payload of [JSON.stringify(JSON.stringify({ agentId: UUID, userId: UUID })), '"anything"']) {
      const refused = await post(payload);
      expect([refused.statusCode, refused.json().error.details], payload).toEqual([400, 'body must be object']);
    }
    expect((await post('5')).json().error.details).toBe('body must be object');
    expect((await post(JSON.stringify({ agentId: UUID, userId: UUID }))).statusCode).toBe(201);
  });

  it('refuses a body over the limit with 413 in the documented error shape (it was Fastify\'s own)', async () => {
    const large = await app.inject({ method: 'POST', url: '/api/messaging/sessions', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ metadata: { x: 'a'.repeat(1_100_000) } }) });
    expect(large.statusCode).toBe(413);
    const body = JSON.parse(large.body);
    expect(responseViolations(api, 'createSession', 413, body)).toEqual([]);
    expect(body.error).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', details: `body must be at most ${1024 * 1024} bytes` });
  });

  it('answers as a server would: HEAD as GET without a body, undocumented query parameters ignored, the media type Accept asks for', async () => {
    const head = await app.inject({ method: 'HEAD', url: '/api/agents' });
    expect([head.statusCode, head.body]).toEqual([200, '']);
    const busted = await call(app, { method: 'GET', url: '/api/agents?_=1700000000' });
    expect(busted.status).toBe(200);
    expect(responseViolations(api, 'listAgents', 200, busted.body)).toEqual([]);
    expect((await call(app, { method: 'GET', url: '/api/messaging/sessions?_=1&limit=abc' })).status).toBe(400); // a documented one is still checked

    const url = `/api/messaging/sessions/${UUID}/messages`;
    const body = JSON.stringify({ content: 'hi', transport: 'sse' });
    const streamed = await app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json', accept: 'text/event-stream' }, payload: body });
    expect([streamed.statusCode, streamed.headers['content-type']]).toEqual([201, 'text/event-stream']);
    expectEventFrames(streamed.body);
    const plain = await app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json' }, payload: body });
    expect(plain.headers['content-type']).toMatch(/^application\/json/);
  });

  it('validates requests: a bad one gets 400 in the spec error envelope, naming the field', async () => {
    const body = { agentId: UUID, userId: UUID, timeoutConfig: { timeoutMinutes: 4 } };
    const answer = await call(app, { method: 'POST' as 'GET', url: '/api/messaging/sessions', body });
    expect(answer.status).toBe(400);
    expect(responseViolations(api, 'createSession', 400, answer.body)).toEqual([]);
    expect(answer.body.error.code).toBe('INVALID_REQUEST');
    expect(answer.body.error.details).toBe('body/timeoutConfig/timeoutMinutes must be >= 5');

    const missing = await call(app, { method: 'POST' as 'GET', url: '/api/agents', body: {} });
    expect(missing.status).toBe(400);
    expect(missing.body.error.details).toBe('body/characterJson is required');
    const badQuery = await call(app, { method: 'GET', url: '/api/messaging/sessions?limit=0' });
    expect(badQuery.status).toBe(400);
    expect(badQuery.body.error.details).toBe('querystring/limit must be >= 1');
    const unknown = await call(app, { method: 'POST' as 'GET', url: '/api/messaging/sessions', body: { agentId: UUID, userId: UUID, bogus: 1 } });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.details).toBe('body/bogus is not allowed'); // as the server says it
  });

  it('names a bad field as the server does: params/, querystring/, body/, a missing body', async () => {
    const server = await startTestApp();
    try {
      const requests: Array<{ method: 'GET' | 'POST'; url: string; body?: unknown }> = [
        { method: 'GET', url: '/api/messaging/sessions/not-a-uuid' },
        { method: 'GET', url: '/api/messaging/sessions?limit=abc' },
        { method: 'POST', url: '/api/agents', body: {} },
        { method: 'POST', url: '/api/messaging/sessions', body: { agentId: 'x', userId: UUID } },
      ];
      for (const request of requests) {
        const mocked = await call(app, request);
        const served = await server.request(request);
        expect([mocked.status, mocked.body.error.details], request.url).toEqual([400, served.body.error.details]);
      }
      const bodiless = await app.inject({ method: 'POST', url: '/api/messaging/sessions', headers: { 'content-type': 'application/json' } });
      const served = await server.request({ method: 'POST', url: '/api/messaging/sessions', headers: { 'content-type': 'application/json' } });
      expect(JSON.parse(bodiless.body).error.details).toBe(served.body.error.details);
    } finally {
      await server.close();
    }
  });

  it("answers a path the spec does not have, or a method a path does not take, 404 NOT_FOUND in the spec's route answer, as the server does (it was AGENT_NOT_FOUND, and a 405 the spec never documents)", async () => {
    const answer = await call(app, { method: 'GET', url: '/api/nothing' });
    expect(answer.status).toBe(404);
    expect(answer.body).toEqual({ success: false, error: { code: 'NOT_FOUND', message: 'Route not found', details: 'GET /api/nothing does not exist' } });
    expect(specSchemaValidator('ErrorEnvelope')(answer.body)).toBe(true);
    const method = await call(app, { method: 'PUT' as 'GET', url: '/api/agents', body: {} });
    expect(method.status).toBe(404);
    expect(method.body).toEqual({ success: false, error: { code: 'NOT_FOUND', message: 'Route not found', details: 'PUT /api/agents does not exist' } });
    expect(specSchemaValidator('ErrorEnvelope')(method.body)).toBe(true);
    // Whatever the body: JSON that does not parse, or one over the size limit (E13: a bare `{ message }` 400 or 413).
    for (const [method, url] of [['POST', '/nope'], ['PUT', '/api/agents']] as const) {
      for (const payload of ['{bad', `"${'x'.repeat(1_100_000)}"`]) {
        const refused = await app.inject({ method, url, headers: { 'content-type': 'application/json' }, payload });
        expect(refused.statusCode, `${method} ${url}`).toBe(404);
        expect(refused.json()).toEqual({ success: false, error: { code: 'NOT_FOUND', message: 'Route not found', details: `${method} ${url} does not exist` } });
      }
    }
  });
});

describe('mock mode on another document (the classic Petstore)', () => {
  let app: FastifyInstance;
  let api: OpenAPIBackend;
  beforeAll(async () => {
    app = await createMockServer({ specPath: PETSTORE });
    api = await specBackend(PETSTORE);
  });
  afterAll(() => app.close());

  it('answers every operation from its schemas, valid against the document', async () => {
    const list = await call(app, { method: 'GET', url: '/pets?limit=10' });
    expect(list.status).toBe(200);
    expect(Array.isArray(list.body)).toBe(true);
    expect(api.validateResponse(list.body, 'listPets', 200).errors ?? []).toEqual([]);
    const pet = await call(app, { method: 'GET', url: '/pets/7' });
    expect(pet.status).toBe(200);
    expect(api.validateResponse(pet.body, 'showPetById', 200).errors ?? []).toEqual([]);
    const created = await call(app, { method: 'POST' as 'GET', url: '/pets', body: { name: 'Rex' } });
    expect(created.status).toBe(201);
    expect(api.validateResponse(created.body, 'createPets', 201).errors ?? []).toEqual([]);
  });

  it('sends the headers an answer documents as required, or with an example; an optional one without an example is left out', async () => {
    const created = await call(app, { method: 'POST' as 'GET', url: '/pets', body: { name: 'Rex' } });
    expect(created.headers.location).toBe('/pets/1');
    const list = await call(app, { method: 'GET', url: '/pets' });
    expect(list.headers).not.toHaveProperty('x-total-count');

    // Required without an example: made from its schema, valid against it.
    const folder = mkdtempSync(join(tmpdir(), 'sessions-api-mock-headers-'));
    try {
      const document = parse(readFileSync(PETSTORE, 'utf8'));
      const headers = document.paths['/pets'].post.responses['201'].headers;
      delete headers.Location.example;
      headers['X-Rate-Limit'] = { required: true, schema: { type: 'integer', minimum: 10, maximum: 20 } };
      // Never sent: a framing header (it broke every answer) and a name HTTP does not allow (every answer a 500).
      headers['Transfer-Encoding'] = { schema: { type: 'string' }, example: 'gzip' };
      headers['X-Bad Name'] = { schema: { type: 'string' }, example: 'x' };
      // Required, its example not sendable in a header: made from the schema instead.
      headers['X-Note'] = { required: true, schema: { type: 'string', pattern: '^[a-z]{3,8}$' }, example: 'café' };
      const file = join(folder, 'petstore.yaml');
      writeFileSync(file, stringify(document));
      const mock = await createMockServer({ specPath: file });
      try {
        const answer = await call(mock, { method: 'POST' as 'GET', url: '/pets', body: { name: 'Rex' } });
        const operation = loadSpec(file).operations.find((o) => o.operationId === 'createPets')!;
        const checked = { status: answer.status, contentType: String(answer.contentType), text: '', json: answer.body, headers: answer.headers as Record<string, string> };
        expect(new ResponseChecker().violations(operation, checked)).toEqual([]);
        expect(answer.headers.location).toMatch(/^\S+$/);
        expect(Number(answer.headers['x-rate-limit'])).toBeGreaterThanOrEqual(10);
        expect(answer.headers['x-note']).toMatch(/^[a-z]{3,8}$/);
        expect(answer.headers).not.toHaveProperty('transfer-encoding');
        expect(Object.keys(answer.headers).some((name) => name.includes(' '))).toBe(false);
      } finally {
        await mock.close();
      }
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });

  it('answers Prefer: code= for a code its range (4XX) or default documents, with that response and the code asked for', async () => {
    const notFound = await call(app, { method: 'GET', url: '/pets?limit=10' }, { prefer: 'code=404' });
    expect(notFound.status).toBe(404);
    expect(api.validateResponse(notFound.body, 'listPets', 404).errors ?? []).toEqual([]);
    expect(typeof notFound.body.message).toBe('string');
    expect((await call(app, { method: 'GET', url: '/pets?limit=10' }, { prefer: 'code=abc' })).status).toBe(422);
  });

  it('answers a bad request with 400 in the document error shape (its default response)', async () => {
    const answer = await call(app, { method: 'GET', url: '/pets?limit=500' });
    expect(answer.status).toBe(400);
    expect(api.validateResponse(answer.body, 'listPets', 400).errors ?? []).toEqual([]);
    expect(answer.body.message).toBe('querystring/limit must be <= 100');
    const noName = await call(app, { method: 'POST' as 'GET', url: '/pets', body: { tag: 'dog' } });
    expect(noName.status).toBe(400);
    expect(noName.body.message).toBe('body/name is required');
    const nowhere = await call(app, { method: 'GET', url: '/nowhere' });
    expect(nowhere.status).toBe(404);
    expect(api.validateResponse(nowhere.body, 'listPets', 'default' as unknown as number).errors ?? []).toEqual([]);
    expect(nowhere.body.message).toBe('GET /nowhere does not exist');
  });
});

describe('mock mode on a document whose errors are RFC 9457 problem details', () => {
  const folder = mkdtempSync(join(tmpdir(), 'sessions-api-mock-problems-'));
  let app: FastifyInstance;
  beforeAll(async () => {
    const problem = { 'application/problem+json': { schema: { type: 'object', required: ['title', 'status'], properties: { title: { type: 'string' }, status: { type: 'integer' }, detail: { type: 'string' } } } } };
    // A title the document pins stays as the document says.
    const pinnedTitle = structuredClone(problem);
    pinnedTitle['application/problem+json'].schema.properties.title = { type: 'string', enum: ['Resource not found'] } as never;
    const document = {
      openapi: '3.0.3',
      info: { title: 'todos', version: '1' },
      paths: {
        '/todos': {
          post: {
            operationId: 'createTodo',
            requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', required: ['title'], properties: { title: { type: 'string' } } } } } },
            responses: {
              '201': { description: 'created' },
              '400': { description: 'refused', content: problem },
              '404': { description: 'none', content: pinnedTitle },
              // An example's title is the document's word, and a body without a status gets none.
              '409': { description: 'taken', content: { 'application/problem+json': { schema: { type: 'object' }, example: { title: 'Already there', detail: 'a todo has that title' } } } },
              '410': { description: 'gone', content: { 'application/problem+json': { schema: { type: 'object' }, examples: { gone: { value: { title: 'Gone for good', status: 410 } } } } } },
            },
          },
        },
      },
    };
    const file = join(folder, 'todos.yaml');
    writeFileSync(file, stringify(document));
    app = await createMockServer({ specPath: file });
  });
  afterAll(async () => {
    await app.close();
    rmSync(folder, { recursive: true, force: true });
  });
  const post = (payload: string, headers: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url: '/todos', headers: { 'content-type': 'application/json', ...headers }, payload });

  it('says the HTTP status in the body\'s status and its phrase in a made-up title (it said 0 and "string"), unless the schema pins them', async () => {
    const refused = await post('{}');
    expect(refused.statusCode).toBe(400);
    expect(refused.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(refused.json()).toEqual({ title: 'Bad Request', status: 400, detail: 'body/title is required' });
    const asked = await post('{"title":"x"}', { prefer: 'code=404' });
    expect(asked.statusCode).toBe(404);
    expect(asked.json()).toMatchObject({ title: 'Resource not found', status: 404 });
  });

  it("keeps an example's own title (example or examples), and adds no status to a problem that has none", async () => {
    const taken = await post('{"title":"x"}', { prefer: 'code=409' });
    expect(taken.statusCode).toBe(409);
    expect(taken.json()).toEqual({ title: 'Already there', detail: 'a todo has that title' });
    // A named example (examples:) is the document's word as much as an example: is.
    const gone = await post('{"title":"x"}', { prefer: 'code=410' });
    expect(gone.statusCode).toBe(410);
    expect(gone.json()).toEqual({ title: 'Gone for good', status: 410 });
  });

  it('refuses JSON that does not parse in one message saying so (it was "request Expected …; body must be object")', async () => {
    const refused = await post('{bad');
    expect(refused.statusCode).toBe(400);
    expect(refused.json().detail).toMatch(/^body is not valid JSON: Expected property name or '}' in JSON at position 1/);
    expect(refused.json().detail).not.toMatch(/must be object/);
  });

  it('takes a body of any type a media range (text/*) the operation documents covers, and refuses another with 415', async () => {
    const file = join(folder, 'notes.yaml');
    const document = {
      openapi: '3.0.3',
      info: { title: 'notes', version: '1' },
      paths: { '/notes': { post: { operationId: 'createNote', requestBody: { required: true, content: { 'text/*': { schema: { type: 'string' } } } }, responses: { '204': { description: 'kept' } } } } },
    };
    writeFileSync(file, stringify(document));
    const notes = await createMockServer({ specPath: file });
    try {
      const text = await notes.inject({ method: 'POST', url: '/notes', headers: { 'content-type': 'text/plain' }, payload: 'remember' });
      expect(text.statusCode).toBe(204);
      const image = await notes.inject({ method: 'POST', url: '/notes', headers: { 'content-type': 'image/png' }, payload: 'png' });
      expect(image.statusCode).toBe(415);
    } finally {
      await notes.close();
    }
  });

  it('answers a 413 or 415 the operation does not document as its 400 (a status it documents), saying what is wrong', async () => {
    const large = await post(JSON.stringify({ title: 'x'.repeat(1_100_000) }));
    expect(large.statusCode).toBe(400);
    expect(large.json()).toEqual({ title: 'Bad Request', status: 400, detail: 'body must be at most 1048576 bytes' });
    const text = await post('title', { 'content-type': 'text/plain' });
    expect(text.statusCode).toBe(400);
    expect(text.json()).toMatchObject({ title: 'Bad Request', status: 400, detail: 'content-type text/plain is not accepted by createTodo (accepted: application/json)' });
  });

  it('answers a route no operation has in the shape of the first operation documenting that status, else its range (4XX), else a default, else a 400', async () => {
    const json = (schema: object) => ({ 'application/json': { schema } });
    const shapes = {
      envelope: json({ type: 'object', required: ['error'], properties: { error: { type: 'object', required: ['details'], properties: { details: { type: 'string' } } } } }),
      message: json({ type: 'object', required: ['message'], properties: { message: { type: 'string' } } }),
      problem: { 'application/problem+json': { schema: { type: 'object', required: ['title', 'status', 'detail'], properties: { title: { type: 'string' }, status: { type: 'integer' }, detail: { type: 'string' } } } } },
    };
    const serve = async (name: string, responses: Array<[string, object]>) => {
      const paths = Object.fromEntries(
        responses.map(([status, content], i) => [`/${name}${i}`, { get: { operationId: `${name}${i}`, responses: { '200': { description: 'ok' }, [status]: { description: 'refused', content } } } }]),
      );
      const file = join(folder, `${name}.yaml`);
      writeFileSync(file, stringify({ openapi: '3.0.3', info: { title: name, version: '1' }, paths }));
      const mock = await createMockServer({ specPath: file });
      try {
        const notFound = await mock.inject({ method: 'GET', url: '/nowhere' });
        const notAllowed = await mock.inject({ method: 'DELETE', url: `/${name}0` });
        // A 405 names what the path takes (RFC 9110 requires Allow); a 404 has none.
        expect(notAllowed.headers.allow).toBe(notAllowed.statusCode === 405 ? 'GET, HEAD' : undefined);
        return { notFound: [notFound.statusCode, notFound.json()], notAllowed: [notAllowed.statusCode, notAllowed.json()] };
      } finally {
        await mock.close();
      }
    };
    // The 400 is listed first: a 404 or 405 takes the range's shape, not the 400's or the default's.
    expect(await serve('ranged', [['400', shapes.envelope], ['default', shapes.message], ['4XX', shapes.problem]])).toEqual({
      notFound: [404, { title: 'Not Found', status: 404, detail: 'GET /nowhere does not exist' }],
      notAllowed: [405, { title: 'Method Not Allowed', status: 405, detail: 'DELETE is not allowed on /ranged0' }],
    });
    expect(await serve('defaulted', [['400', shapes.envelope], ['default', shapes.message]])).toEqual({
      notFound: [404, { message: 'GET /nowhere does not exist' }],
      notAllowed: [405, { message: 'DELETE is not allowed on /defaulted0' }],
    });
    // No answer for a 405 anywhere (no 405, 4XX or default): a method a path does not take is a 404, as an unknown path.
    expect(await serve('refusing', [['400', shapes.envelope]])).toEqual({
      notFound: [404, { error: { details: 'GET /nowhere does not exist' } }],
      notAllowed: [404, { error: { details: 'DELETE /refusing0 does not exist' } }],
    });
    // The document's response named for the status (components.responses.NotFound) shapes a 404, before the first operation's.
    const named = join(folder, 'named.yaml');
    const envelope = (code: string) => ({ description: code, content: { 'application/json': { schema: { type: 'object' }, example: { error: { code, details: 'x' } } } } });
    writeFileSync(
      named,
      stringify({
        openapi: '3.0.3',
        info: { title: 'named', version: '1' },
        paths: {
          '/first': { get: { operationId: 'first', responses: { '200': { description: 'ok' }, '404': { $ref: '#/components/responses/ThingNotFound' } } } },
          '/second': { get: { operationId: 'second', responses: { '200': { description: 'ok' }, '404': { $ref: '#/components/responses/NotFound' } } } },
        },
        components: { responses: { ThingNotFound: envelope('THING_NOT_FOUND'), NotFound: envelope('NOT_FOUND') } },
      }),
    );
    const mock = await createMockServer({ specPath: named });
    try {
      expect((await mock.inject({ method: 'GET', url: '/nowhere' })).json()).toEqual({ error: { code: 'NOT_FOUND', details: 'GET /nowhere does not exist' } });
    } finally {
      await mock.close();
    }
  });

  it("refuses a body that breaks a oneOf with a discriminator naming the fault of its tag's branch, each oneOf decided alone", async () => {
    const branch = (kind: string, size: string, tagged: boolean) => ({
      type: 'object',
      additionalProperties: false,
      required: ['kind', size],
      properties: { kind: tagged ? { type: 'string', enum: [kind] } : { type: 'string' }, [size]: { type: 'number', exclusiveMinimum: 0 } },
    });
    const shapes = (tagged: boolean) => ({
      oneOf: [branch('circle', 'radius', tagged), branch('square', 'side', tagged)],
      discriminator: { propertyName: 'kind', mapping: { circle: '#/components/schemas/Circle', square: '#/components/schemas/Square' } },
    });
    const message = { 'application/json': { schema: { type: 'object', required: ['message'], properties: { message: { type: 'string' } } } } };
    const taking = (operationId: string, schema: object) => ({
      post: { operationId, requestBody: { required: true, content: { 'application/json': { schema } } }, responses: { '204': { description: 'kept' }, '400': { description: 'refused', content: message } } },
    });
    const document = {
      openapi: '3.1.0',
      info: { title: 'shapes', version: '1' },
      paths: {
        '/shapes': taking('createShape', shapes(true)),
        // Branches that do not tag themselves (a const or enum): this oneOf alone is judged plainly.
        '/sketches': taking('createSketch', shapes(false)),
        // A pattern Ajv cannot compile: that operation alone fails, the document still loads.
        '/names': { get: { operationId: 'listNames', parameters: [{ name: 'q', in: 'query', schema: { type: 'string', pattern: '^[a-z\\_]+$' } }], responses: { '200': { description: 'ok' } } } },
      },
    };
    const file = join(folder, 'shapes.yaml');
    writeFileSync(file, stringify(document));
    const mock = await createMockServer({ specPath: file });
    try {
      const answers = async (url: string) => {
        const got: Array<[number, string]> = [];
        for (const body of [{ kind: 'square', side: 2 }, { kind: 'circle', radius: 0 }, { kind: 'triangle' }, { kind: 5 }]) {
          const answer = await mock.inject({ method: 'POST', url, payload: body });
          got.push([answer.statusCode, answer.statusCode === 204 ? '' : answer.json().message]);
        }
        return got;
      };
      expect(await answers('/shapes')).toEqual([
        [204, ''],
        [400, 'body/radius must be > 0'],
        [400, 'body/kind "triangle" names no branch of its oneOf'],
        [400, 'body/kind must be a string naming a branch of its oneOf'],
      ]);
      const sketches = await answers('/sketches');
      expect(sketches[0]).toEqual([204, '']);
      expect(sketches[1]![1]).toMatch(/body\/radius must be > 0; .*body must match exactly one schema in oneOf/);
    } finally {
      await mock.close();
    }
  });
});

describe('npm run mock, the command', () => {
  const folder = mkdtempSync(join(tmpdir(), 'sessions-api-mock-cli-'));
  afterAll(() => rmSync(folder, { recursive: true, force: true }));
  // Without the INIT_CWD of the `npm test` running this: relative paths would be taken from there.
  const { INIT_CWD: _npmTest, ...env } = process.env;
  const mockCli = (...args: string[]) => mockCliFrom(undefined, ...args);
  const mockCliFrom = (initCwd: string | undefined, ...args: string[]) =>
    new Promise<{ code: number | null; stderr: string }>((resolve) => {
      execFile(process.execPath, [builtFile('mock/cli.js'), ...args], { timeout: 15_000, cwd: ROOT, env: initCwd === undefined ? env : { ...env, INIT_CWD: initCwd } }, (error, _stdout, stderr) =>
        resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stderr }),
      );
    });

  it('under npm run mock, reads a relative --spec from where npm was run (INIT_CWD), not the package folder it starts in', async () => {
    const run = await mockCliFrom(folder, '--spec', 'none.yaml');
    expect(run.code).toBe(2);
    expect(run.stderr.split('\n')[0]).toMatch(/^sessions-api mock: cannot read \S+: ENOENT/);
    expect(run.stderr).toContain(`cannot read ${join(folder, 'none.yaml')}: ENOENT`);
  });

  it('exits 2 with one line for a usage error or a document it cannot serve, 1 when it cannot listen', { timeout: 60_000 }, async () => {
    const badRef = join(folder, 'bad-ref.yaml');
    writeFileSync(badRef, stringify({ openapi: '3.0.3', info: { title: 't', version: '1' }, paths: {}, components: { schemas: { X: { $ref: 'missing.yaml#/X' } } } }));
    for (const args of [['--nonsense'], ['--port', 'abc'], ['--port', '0x10'], ['--port', '1e3'], ['--port='], ['--port', '65536'], ['--spec', join(folder, 'none.yaml')], ['--spec', badRef]]) {
      const run = await mockCli(...args);
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.stderr.split('\n')[0], args.join(' ')).toMatch(/^sessions-api mock: /);
      expect(run.stderr, args.join(' ')).not.toMatch(/\n\s+at /);
    }
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const run = await mockCli('--port', String((taken.address() as AddressInfo).port));
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(/^sessions-api mock: .*EADDRINUSE/);
    } finally {
      taken.close();
    }
  });
});

describe('the Prefer header', () => {
  it('reads code and example in any order, quoted or not', () => {
    expect(parsePrefer('code=404')).toEqual({ code: '404' });
    expect(parsePrefer('example="expired", code=410')).toEqual({ code: '410', example: 'expired' });
    expect(parsePrefer('respond-async; code=202')).toEqual({ code: '202' });
    expect(parsePrefer(undefined)).toEqual({});
  });
});

describe('mock mode on documents it cannot serve as they are', () => {
  const folder = mkdtempSync(join(tmpdir(), 'sessions-api-mock-docs-'));
  afterAll(() => rmSync(folder, { recursive: true, force: true }));
  const write = (name: string, text: string) => {
    const path = join(folder, name);
    writeFileSync(path, text);
    return path;
  };

  it.each([
    ['a missing file', join(folder, 'nowhere.yaml'), /^cannot read .*nowhere\.yaml: ENOENT$/],
    ['a file that is not YAML', 'broken.yaml', /broken\.yaml is not YAML or JSON: /],
    // The parser's first line ended with a colon that led to its excerpt of the file.
    ['a Markdown file', 'notes.md', /notes\.md is not YAML or JSON: [^\n]* at line \d+, column \d+$/],
    ['a Swagger 2.0 document', 'swagger.yaml', /swagger\.yaml is not an OpenAPI 3\.0 or 3\.1 document/],
    ['a YAML list', 'list.yaml', /list\.yaml is not an OpenAPI 3\.0 or 3\.1 document/],
    // 3.2 changes what a document may say (query operations, itemSchema); the mock does not read it.
    ['an OpenAPI 3.2 document', 'v32.yaml', /v32\.yaml is not an OpenAPI 3\.0 or 3\.1 document/],
    ['a $ref to a file that is not there', 'badref.yaml', /^cannot resolve its \$refs: Error opening file .*missing\.yaml: ENOENT[^\n]*$/],
    // These three were served (the ref as {}: any body passed), a TypeError, a download.
    ['a $ref naming nothing', 'dangling.yaml', /^\$ref #\/components\/schemas\/Nope in .*dangling\.yaml names nothing$/],
    ['a $ref naming nothing, without components', 'bare.yaml', /^\$ref #\/components\/schemas\/Nope in .*bare\.yaml names nothing$/],
    ['a remote $ref', 'remote.yaml', /^\$ref https:\/\/example\.com\/x\.yaml#\/X: remote references are not followed; bundle the document first/],
    ['a $ref naming nothing, in an allOf', 'allof.yaml', /^\$ref #\/components\/schemas\/Gone in .*allof\.yaml names nothing$/],
    ['a remote $ref of another scheme, in a parameter list', 'ftp.yaml', /^\$ref ftp:\/\/example\.com\/p\.yaml: remote references are not followed/],
  ])('refuses %s in one line, before serving', async (_what, file, reason) => {
    const texts: Record<string, string> = {
      'badref.yaml': "openapi: 3.1.0\ninfo: { title: x, version: '1' }\npaths:\n  /x:\n    get:\n      responses:\n        '200':\n          description: ok\n          content:\n            application/json:\n              schema: { $ref: 'missing.yaml#/X' }\n",
      'dangling.yaml': "openapi: 3.1.0\ninfo: { title: x, version: '1' }\npaths:\n  /a:\n    post:\n      requestBody: { content: { application/json: { schema: { $ref: '#/components/schemas/Nope' } } } }\n      responses: { '201': { description: ok } }\ncomponents: { schemas: { Yes: { type: string } } }\n",
      'allof.yaml': "openapi: 3.1.0\ninfo: { title: x, version: '1' }\npaths:\n  /a:\n    get:\n      responses: { '200': { description: ok, content: { application/json: { schema: { allOf: [{ type: object }, { $ref: '#/components/schemas/Gone' }] } } } } }\ncomponents: { schemas: { Here: { type: object } } }\n",
      'ftp.yaml': "openapi: 3.1.0\ninfo: { title: x, version: '1' }\npaths:\n  /a:\n    get:\n      parameters: [{ $ref: 'ftp://example.com/p.yaml' }]\n      responses: { '200': { description: ok } }\n",
      'bare.yaml': "openapi: 3.1.0\ninfo: { title: x, version: '1' }\npaths:\n  /a:\n    get:\n      responses: { '200': { description: ok, content: { application/json: { schema: { $ref: '#/components/schemas/Nope' } } } } }\n",
      'remote.yaml': "openapi: 3.1.0\ninfo: { title: x, version: '1' }\npaths:\n  /a:\n    get:\n      responses: { '200': { description: ok, content: { application/json: { schema: { $ref: 'https://example.com/x.yaml#/X' } } } } }\n",
      'broken.yaml': 'openapi: 3.1.0\ninfo: [unclosed\n',
      'notes.md': '# Notes\n\nSome text\nmore text\n- a list: here\n',
      'swagger.yaml': 'swagger: "2.0"\ninfo: { title: x, version: "1" }\npaths: {}\n',
      'list.yaml': '- a\n- b\n',
      'v32.yaml': "openapi: 3.2.0\ninfo: { title: x, version: '1' }\npaths: {}\n",
    };
    const path = texts[file] === undefined ? file : write(file, texts[file]!);
    await expect(createMockServer({ specPath: path })).rejects.toThrow(reason);
  });

  /** The document's GET /things/{id} answers its merged-in 404 example. */
  async function expectMergedNotFound(path: string) {
    const app = await createMockServer({ specPath: path });
    try {
      const missing = await call(app, { method: 'GET', url: '/things/a' }, { prefer: 'code=404' });
      expect(missing.status).toBe(404);
      expect(missing.body).toEqual({ message: 'gone' });
    } finally {
      await app.close();
    }
  }

  it('merges YAML merge keys (<<: *anchor): the responses they bring are documented, not a response named "<<"', async () => {
    await expectMergedNotFound(fileURLToPath(new URL('./fixtures/merge-keys.yaml', import.meta.url)));
  });

  it('merges YAML merge keys in a document that also has $refs', async () => {
    const path = write(
      'merged-refs.yaml',
      `openapi: 3.1.0
info: { title: merged, version: "1" }
x-errors: &errors
  '404': { description: none, content: { application/json: { schema: { $ref: '#/components/schemas/Problem' }, example: { message: gone } } } }
paths:
  /things/{id}:
    get:
      operationId: getThing
      parameters: [{ name: id, in: path, required: true, schema: { type: string } }]
      responses:
        '200': { description: a thing, content: { application/json: { schema: { type: object }, example: { id: a } } } }
        <<: *errors
components:
  schemas:
    Problem: { type: object, required: [message], properties: { message: { type: string } } }
`,
    );
    await expectMergedNotFound(path);
  });

  it('loads a document whose schema holds itself (a tree of owners), and says why it cannot generate a body from it', async () => {
    const path = write(
      'owners.yaml',
      `openapi: 3.0.3
info: { title: owners, version: "1" }
paths:
  /owners/{id}:
    get:
      operationId: getOwner
      parameters: [{ name: id, in: path, required: true, schema: { type: integer } }]
      responses:
        '200':
          description: an owner
          content: { application/json: { schema: { $ref: '#/components/schemas/Owner' } } }
components:
  schemas:
    Owner:
      type: object
      required: [name]
      properties:
        name: { type: string }
        parent: { $ref: '#/components/schemas/Owner' }
`,
    );
    const app = await createMockServer({ specPath: path });
    try {
      const owner = await call(app, { method: 'GET', url: '/owners/7' });
      expect(owner.status).toBe(500);
      expect(owner.body.message).toBe('getOwner: no example for this answer, and its schema holds itself (a body cannot be generated from it): add an example to the document');
      // Asked for by code, the same: a 500 saying why, not that code with the message.
      const asked = await call(app, { method: 'GET', url: '/owners/7' }, { prefer: 'code=200' });
      expect(asked.status).toBe(500);
      expect((await call(app, { method: 'GET', url: '/owners/x' })).status).toBe(400);
    } finally {
      await app.close();
    }
  });

  it('answers from schemas with bodies valid against them: 3.1 type lists, exclusive bounds, patterns; writeOnly properties left out', async () => {
    const path = write(
      'accounts.yaml',
      `openapi: 3.1.0
info: { title: accounts, version: "1" }
paths:
  /accounts/{id}:
    get:
      operationId: getAccount
      parameters: [{ name: id, in: path, required: true, schema: { type: string } }]
      responses:
        '200':
          description: an account
          content:
            application/json:
              schema:
                type: object
                additionalProperties: false
                required: [nickname, balance, ratio, code, password, owner]
                properties:
                  nickname: { type: [string, 'null'] }
                  balance: { type: integer, exclusiveMinimum: 0, exclusiveMaximum: 10 }
                  ratio: { type: number, exclusiveMinimum: 0, maximum: 1 }
                  code: { type: string, pattern: '^[A-Z]{3}-[0-9]{2}$' }
                  password: { type: string, writeOnly: true }
                  owner:
                    type: object
                    required: [name, secret]
                    properties:
                      name: { type: string }
                      secret: { type: string, writeOnly: true }
`,
    );
    const app = await createMockServer({ specPath: path });
    try {
      const answers = [await call(app, { method: 'GET', url: '/accounts/1' }), await call(app, { method: 'GET', url: '/accounts/2' })];
      for (const answer of answers) {
        expect(answer.status).toBe(200);
        const { nickname, balance, ratio, code } = answer.body;
        expect(Object.keys(answer.body).sort()).toEqual(['balance', 'code', 'nickname', 'owner', 'ratio']);
        expect(Object.keys(answer.body.owner)).toEqual(['name']);
        expect(nickname === null || typeof nickname === 'string').toBe(true);
        expect(Number.isInteger(balance) && balance > 0 && balance < 10).toBe(true);
        expect(ratio > 0 && ratio <= 1).toBe(true);
        expect(code).toMatch(/^[A-Z]{3}-[0-9]{2}$/);
      }
      expect(answers[1]!.body).toEqual(answers[0]!.body); // the same answer each time
    } finally {
      await app.close();
    }
  });

  it.each(['3.0.3', '3.1.0'])('requires a readOnly property in answers only, a writeOnly one in requests only (OpenAPI %s)', async (version) => {
    const path = write(
      `users-${version}.yaml`,
      posting(version, 'users', '/users', 'makeUser', 'User', `
    Named:
      type: object
      properties:
        id: { type: string, readOnly: true }
    User:
      allOf:
        - $ref: '#/components/schemas/Named'
        - type: object
          required: [id, password, name]
          properties:
            password: { type: string, writeOnly: true, minLength: 8 }
            name: { type: string }
`),
    );
    const app = await createMockServer({ specPath: path });
    try {
      const made = await call(app, { method: 'POST', url: '/users', body: { password: '12345678', name: 'Ada' } });
      expect(made.status).toBe(201);
      expect(made.body).toHaveProperty('id'); // required in the answer
      expect(made.body).not.toHaveProperty('password');
      const refused = await call(app, { method: 'POST', url: '/users', body: { name: 'Ada' } });
      expect(refused.status).toBe(400);
      expect(refused.body.message).toBe('body/password is required');
    } finally {
      await app.close();
    }
  });

  it('takes a request without the readOnly properties its nested schemas require: in a property, in array items, in a oneOf branch', async () => {
    const path = write(
      'teams.yaml',
      posting('3.1.0', 'teams', '/teams', 'makeTeam', 'Team', `
    User:
      type: object
      additionalProperties: false
      required: [id, password, name]
      properties:
        id: { type: string, readOnly: true }
        password: { type: string, writeOnly: true, minLength: 8 }
        name: { type: string }
    Team:
      type: object
      required: [lead, members, deputy]
      properties:
        lead: { $ref: '#/components/schemas/User' }
        members: { type: array, minItems: 1, items: { $ref: '#/components/schemas/User' } }
        deputy: { oneOf: [{ $ref: '#/components/schemas/User' }, { type: string }] }
`),
    );
    const app = await createMockServer({ specPath: path });
    try {
      const user = { name: 'Ada', password: '12345678' };
      const made = await call(app, { method: 'POST', url: '/teams', body: { lead: user, members: [user], deputy: user } });
      expect([made.status, made.body.message]).toEqual([201, undefined]);
      expect(made.body.lead).toHaveProperty('id'); // required in the answer
      expect(made.body.lead).not.toHaveProperty('password');
      const refused = await call(app, { method: 'POST', url: '/teams', body: { lead: user, members: [{ name: 'Bob' }], deputy: user } });
      expect([refused.status, refused.body.message]).toEqual([400, 'body/members/0/password is required']);
    } finally {
      await app.close();
    }
  });

  it('leaves writeOnly properties out of generated stream frames, kept or made anew, and frames a stream documented without a schema', async () => {
    const frameOf = (name: string, properties: string) => `
  /${name}:
    get:
      operationId: ${name}
      responses:
        '200':
          description: frames
          content:
            text/event-stream:
              schema: { type: array, items: { type: object, required: [value, secret], properties: { ${properties}, secret: { type: string, writeOnly: true } } } }`;
    const path = write(
      'streams.yaml',
      `openapi: 3.1.0
info: { title: streams, version: "1" }
paths:${frameOf('kept', 'value: { type: integer }')}${frameOf('remade', "value: { type: string, pattern: '^[A-Z]{3}$' }")}
  /bare:
    get:
      operationId: bare
      responses:
        '200': { description: no schema, content: { text/event-stream: {} } }
`,
    );
    const app = await createMockServer({ specPath: path });
    try {
      const frames = async (url: string) => {
        const answer = await app.inject({ method: 'GET', url });
        expect([answer.statusCode, answer.headers['content-type']], url).toEqual([200, 'text/event-stream']);
        return answer.body.split('\n\n').filter(Boolean).map((frame) => frame.split('\n'));
      };
      expect(await frames('/kept')).toEqual([['id: 1', 'data: {"value":0}']]);
      const remade = await frames('/remade');
      expect(remade).toHaveLength(1);
      expect(JSON.parse(remade[0]![1]!.slice('data: '.length))).toEqual({ value: expect.stringMatching(/^[A-Z]{3}$/) });
      expect(await frames('/bare')).toEqual([['id: 1', 'data: {}']]);
    } finally {
      await app.close();
    }
  });

  it('serves an operation without an operationId (optional in OpenAPI; it answered every request 500)', async () => {
    const path = write(
      'anonymous.yaml',
      `openapi: 3.1.0
info: { title: anonymous, version: "1" }
paths:
  /hello:
    get:
      responses:
        '200': { description: hi, content: { application/json: { schema: { type: object }, example: { hello: world } } } }
        '404': { description: none, content: { application/json: { schema: { type: object }, example: { message: nobody } } } }
`,
    );
    const app = await createMockServer({ specPath: path });
    try {
      expect(await call(app, { method: 'GET', url: '/hello' })).toMatchObject({ status: 200, body: { hello: 'world' } });
      expect(await call(app, { method: 'GET', url: '/hello' }, { prefer: 'code=404' })).toMatchObject({ status: 404, body: { message: 'nobody' } });
      const refused = await call(app, { method: 'GET', url: '/hello' }, { prefer: 'code=500' });
      expect(refused.body.message).toBe('Prefer: code=500 is not documented for GET /hello (documented: 200, 404)');
    } finally {
      await app.close();
    }
  });
});

describe('mock mode on an OpenAPI 3.0 document with boolean exclusive bounds', () => {
  const folder = mkdtempSync(join(tmpdir(), 'sessions-api-mock-30-'));
  afterAll(() => rmSync(folder, { recursive: true, force: true }));
  /**
   * The answers to n = 0 and n = 1 of the mock of a 3.0 document with one POST operation at
   * /n: `top` its lines above `paths` (an anchor, say), `request` its body's schema and
   * `responses` its answers, each as YAML.
   */
  const answersOf = async (name: string, { top = '', request, responses }: { top?: string; request: string; responses: string[] }) => {
    const path = join(folder, `${name}.yaml`);
    const operation = ['post:', '  operationId: postN', '  requestBody:', '    required: true', `    content: { application/json: { schema: ${request} } }`, '  responses:', ...responses.map((line) => `    ${line}`)];
    writeFileSync(path, [`openapi: 3.0.3`, `info: { title: ${name}, version: "1" }`, top, 'paths:', '  /n:', ...operation.map((line) => `    ${line}`), ''].join('\n'));
    const app = await createMockServer({ specPath: path });
    try {
      return await Promise.all([0, 1].map((n) => call(app, { method: 'POST' as 'GET', url: '/n', body: { n } })));
    } finally {
      await app.close();
    }
  };

  it('validates exclusiveMinimum: true as 3.0 means it (it answered every request 500)', async () => {
    const [zero, one] = await answersOf('inline', {
      request: '{ type: object, required: [n], properties: { n: { type: number, minimum: 0, exclusiveMinimum: true } } }',
      responses: [
        "'201': { description: added, content: { application/json: { schema: { type: object, properties: { n: { type: number } } }, example: { n: 2 } } } }",
        "'400': { description: bad, content: { application/json: { schema: { type: object, properties: { message: { type: string } } }, example: { message: x } } } }",
      ],
    });
    expect([zero!.status, zero!.body.message]).toEqual([400, 'body/n must be > 0']);
    expect(one!.status).toBe(201);
  });

  it('validates a boolean exclusiveMinimum shared through a YAML anchor and merge key in the request and the response (probe R saw a 500)', async () => {
    const [zero, one] = await answersOf('anchored', {
      top: ['x-base: &base', '  type: object', '  required: [n]', '  properties:', '    n: { type: integer, minimum: 0, exclusiveMinimum: true }'].join('\n'),
      request: '*base',
      responses: ["'201': { description: ok, content: { application/json: { schema: { <<: *base } } } }"],
    });
    expect([zero!.status, zero!.body.message]).toEqual([400, 'body/n must be > 0']);
    expect(one!.status).toBe(201);
    expect(one!.body.n).toBeGreaterThan(0);
  });
});
