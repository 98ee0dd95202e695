// Mock mode at its edges: an operation whose only answers are a range (2XX) or default
// answers with their body; a Prefer: code= outside 100-599 is a 422, not a crash; a URL the
// router refuses is answered in the document's error shape; Prefer's names are read
// case-insensitively (RFC 7240).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { createMockServer } from '../src/mock/mock-server.js';
import { specPath } from '../src/spec.js';

const PETSTORE = fileURLToPath(new URL('./fixtures/petstore.yaml', import.meta.url));

describe('mock mode on a document whose answers are a range (2XX) or default only', () => {
  const folder = mkdtempSync(join(tmpdir(), 'sessions-api-mock-edges-'));
  const file = join(folder, 'ranges.yaml');
  let app: FastifyInstance;
  const body = { 'application/json': { schema: { type: 'object', required: ['ok'], properties: { ok: { type: 'boolean' } } } } };
  beforeAll(async () => {
    const document = {
      openapi: '3.0.3',
      info: { title: 'ranges', version: '1' },
      paths: {
        '/range': { get: { operationId: 'onlyRange', responses: { '2XX': { description: 'any success', content: body } } } },
        '/default': { get: { operationId: 'onlyDefault', responses: { default: { description: 'any', content: body } } } },
      },
    };
    writeFileSync(file, stringify(document));
    app = await createMockServer({ specPath: file });
  });
  afterAll(async () => {
    await app.close();
    rmSync(folder, { recursive: true, force: true });
  });

  it('answers with the body the range or default response documents (it answered 200 with no body at all)', async () => {
    for (const [url, operationId] of [['/range', 'onlyRange'], ['/default', 'onlyDefault']] as const) {
      const response = await app.inject({ method: 'GET', url });
      expect(response.body, `${url}: an empty body`).not.toBe('');
      expect(response.headers['content-type'], url).toMatch(/^application\/json/);
      // The schema's (the tests' validator knows no status ranges): { ok: boolean }, required.
      expect(typeof JSON.parse(response.body).ok, `${operationId}: ${response.body}`).toBe('boolean');
    }
  });

  it('refuses Prefer: code= outside 100-599 with 422, as any code it cannot answer (it crashed into a 500 "Called reply with an invalid status code")', async () => {
    for (const code of ['099', '000', '600', '999']) {
      const response = await app.inject({ method: 'GET', url: '/default', headers: { prefer: `code=${code}` } });
      expect(response.statusCode, `Prefer: code=${code}: ${response.body}`).toBe(422);
    }
  });
});

describe('mock mode, URLs the router refuses', () => {
  it("answers malformed percent-encoding in the document's error shape, as the server does (it was Fastify's own body)", async () => {
    const app = await createMockServer({ specPath });
    try {
      const response = await app.inject({ method: 'GET', url: '/api/messaging/sessions/%E0%A4%A' });
      expect(response.statusCode).toBeGreaterThanOrEqual(400);
      const answer = JSON.parse(response.body);
      expect(answer, response.body).not.toHaveProperty('code', 'FST_ERR_BAD_URL');
      expect(answer.success, response.body).toBe(false);
    } finally {
      await app.close();
    }
    const pets = await createMockServer({ specPath: PETSTORE });
    try {
      const response = await pets.inject({ method: 'GET', url: '/pets/%ZZ' });
      const answer = JSON.parse(response.body);
      // Petstore's default error shape: { code: integer, message: string }.
      expect(typeof answer.code, response.body).toBe('number');
    } finally {
      await pets.close();
    }
  });
});

describe('the Prefer header', () => {
  it('reads the preference names case-insensitively, as RFC 7240 has them (Prefer: Code=404 was ignored and answered 200)', async () => {
    const app = await createMockServer({ specPath: PETSTORE });
    try {
      const response = await app.inject({ method: 'GET', url: '/pets/1', headers: { prefer: 'Code=404' } });
      expect(response.statusCode).toBe(404);
    } finally {
      await app.close();
    }
  });
});

describe('mock mode, what it answers by default and how it words a refusal', () => {
  const folder = mkdtempSync(join(tmpdir(), 'sessions-api-mock-edges-'));
  const file = join(folder, 'answers.yaml');
  let app: FastifyInstance;
  beforeAll(async () => {
    const refusal = (schema: object) => ({ description: 'bad', content: { 'application/json': { schema } } });
    const document = {
      openapi: '3.0.3',
      info: { title: 'answers', version: '1' },
      paths: {
        // JSON documented second: without an Accept that asks otherwise, JSON is the answer.
        '/multi': {
          get: {
            operationId: 'multi',
            responses: {
              '200': {
                description: 'ok',
                // Required, no example: its schema's default is what it carries.
                // An object example is sent in OpenAPI's simple style: name,value pairs.
                headers: {
                  'X-Version': { required: true, schema: { type: 'string', default: 'v7' } },
                  'X-Limits': { schema: { type: 'object' }, example: { burst: 10, rate: 2 } },
                },
                content: { 'text/plain': { schema: { type: 'string' }, example: 'hi' }, 'application/json': { schema: { type: 'object' }, example: { ok: true } } },
              },
            },
          },
        },
        '/things': {
          post: {
            operationId: 'makeThing',
            requestBody: {
              required: true,
              content: {
                'application/json': {
                  schema: {
                    type: 'object',
                    required: ['requestBody'],
                    // A property named as openapi-backend names the body itself; x's branches both refuse a number.
                    properties: { requestBody: { type: 'string' }, x: { anyOf: [{ type: 'string', minLength: 3 }, { type: 'string', maxLength: 1 }] } },
                  },
                },
              },
            },
            responses: { '201': { description: 'made' }, '400': refusal({ type: 'object', properties: { message: { type: 'string' } } }) },
          },
        },
        // A stream's example: an item's numeric id is its frame's id; a line break in a type does not end the field.
        '/events': {
          get: {
            operationId: 'streamEvents',
            responses: { '200': { description: 'events', content: { 'text/event-stream': { example: [{ id: 7, type: 'made' }, { type: 'one\rtwo' }, { type: 'three\r\nfour' }] } } } },
          },
        },
        // A JSON answer that is a string: sent as JSON text, quoted.
        '/word': { get: { operationId: 'word', responses: { '200': { description: 'a word', content: { 'application/json': { schema: { type: 'string' }, example: 'hello' } } } } } },
        // A body that may be left out.
        '/optional': {
          post: {
            operationId: 'maybeBody',
            requestBody: { required: false, content: { 'application/json': { schema: { type: 'object' } } } },
            responses: { '204': { description: 'done' }, '400': refusal({ type: 'object', properties: { message: { type: 'string' } } }) },
          },
        },
        // Bodies of any type, and of any text type.
        '/anything': { post: { operationId: 'takeAnything', requestBody: { required: true, content: { '*/*': { schema: {} } } }, responses: { '204': { description: 'taken' } } } },
        '/notes': {
          post: {
            operationId: 'takeNote',
            requestBody: { required: true, content: { 'text/*': { schema: { type: 'string' } } } },
            responses: { '204': { description: 'taken' }, '400': refusal({ type: 'object', properties: { message: { type: 'string' } } }) },
          },
        },
        // An error shape with a code and no message: the refusal says why in a message all the same.
        '/coded': {
          post: {
            operationId: 'makeCoded',
            requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } } } } },
            responses: {
              '201': { description: 'made' },
              '400': {
                description: 'bad',
                headers: { 'X-Error-Id': { required: true, schema: { type: 'string' }, example: 'e-1' } },
                content: { 'application/json': { schema: { type: 'object', properties: { code: { type: 'string' } } }, example: { code: 'BAD_REQUEST' } } },
              },
            },
          },
        },
      },
    };
    writeFileSync(file, stringify(document));
    app = await createMockServer({ specPath: file });
  });
  afterAll(async () => {
    await app.close();
    rmSync(folder, { recursive: true, force: true });
  });

  it('answers JSON where a response documents it after another media type, unless Accept asks for the other', async () => {
    for (const headers of [{}, { accept: '*/*' }]) {
      const response = await app.inject({ method: 'GET', url: '/multi', headers });
      expect(response.headers['content-type'], JSON.stringify(headers)).toMatch(/^application\/json/);
      expect(JSON.parse(response.body)).toEqual({ ok: true });
      expect(response.headers['x-version']).toBe('v7');
      expect(response.headers['x-limits']).toBe('burst,10,rate,2');
    }
    const text = await app.inject({ method: 'GET', url: '/multi', headers: { accept: 'text/plain' } });
    expect(text.headers['content-type']).toMatch(/^text\/plain/);
    expect(text.body).toBe('hi');
  });

  it('names a missing body property called requestBody as the property it is, not as a missing body; says each fault once', async () => {
    const missing = await app.inject({ method: 'POST', url: '/things', payload: {} });
    expect(missing.statusCode).toBe(400);
    expect(JSON.parse(missing.body).message).toBe('body/requestBody is required');
    const twice = await app.inject({ method: 'POST', url: '/things', payload: { requestBody: 'a', x: 5 } });
    expect(twice.statusCode).toBe(400);
    // Both branches of the anyOf say "must be string": once in the message.
    expect(JSON.parse(twice.body).message).toBe('body/x must be string; body/x must match a schema in anyOf');
  });

  it('puts the reason in a message of an error shape that has a code and no message, and sends the headers the refusal documents', async () => {
    const response = await app.inject({ method: 'POST', url: '/coded', payload: {} });
    expect(response.statusCode).toBe(400);
    expect(JSON.parse(response.body)).toEqual({ code: 'BAD_REQUEST', message: 'body/name is required' });
    // With the headers its response documents, as any answer of the operation.
    expect(response.headers['x-error-id']).toBe('e-1');
    // Those of its own status only: the 201 after it documents none.
    const made = await app.inject({ method: 'POST', url: '/coded', payload: { name: 'x' } });
    expect(made.statusCode, made.body).toBe(201);
    expect(made.headers['x-error-id']).toBeUndefined();
  });

  it("frames a stream's items with their numeric ids, and a type's line breaks (CR or LF) as spaces", async () => {
    const response = await app.inject({ method: 'GET', url: '/events' });
    expect(response.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(response.body).toBe(
      'id: 7\nevent: made\ndata: {"id":7,"type":"made"}\n\n' +
        'id: 2\nevent: one two\ndata: {"type":"one\\rtwo"}\n\n' +
        'id: 3\nevent: three four\ndata: {"type":"three\\r\\nfour"}\n\n',
    );
  });

  it('sends a JSON answer that is a string as JSON (quoted), not as its bare text', async () => {
    const response = await app.inject({ method: 'GET', url: '/word' });
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    expect(JSON.parse(response.body)).toBe('hello');
  });

  it('takes a request without the body an operation makes optional, and a media type in any case (it is case-insensitive)', async () => {
    const none = await app.inject({ method: 'POST', url: '/optional' });
    expect(none.statusCode, none.body).toBe(204);
    const upper = await app.inject({ method: 'POST', url: '/optional', headers: { 'content-type': 'Application/JSON' }, payload: '{}' });
    expect(upper.statusCode, upper.body).toBe(204);
  });

  it('takes a body of any media type where the operation documents */*, and of text/… only where it documents text/*', async () => {
    const png = await app.inject({ method: 'POST', url: '/anything', headers: { 'content-type': 'image/png' }, payload: 'png' });
    expect(png.statusCode, png.body).toBe(204);
    const note = await app.inject({ method: 'POST', url: '/notes', headers: { 'content-type': 'text/markdown' }, payload: '# note' });
    expect(note.statusCode, note.body).toBe(204);
    const textual = await app.inject({ method: 'POST', url: '/notes', headers: { 'content-type': 'textual/plain' }, payload: 'note' });
    expect(textual.statusCode, textual.body).toBe(400);
    expect(JSON.parse(textual.body).message).toBe('content-type textual/plain is not accepted by takeNote (accepted: text/*)');
  });

  it("words a Prefer it cannot honour (422) with the 400's code in a flat { code, message } shape too, unless the 422's schema pins its own code", async () => {
    const file = join(folder, 'flat-errors.yaml');
    const error = (code: Record<string, unknown>, example: Record<string, unknown>) => ({
      description: 'refused',
      content: { 'application/json': { schema: { type: 'object', required: ['code', 'message'], properties: { code, message: { type: 'string' } } }, example } },
    });
    const operation = (operationId: string, code422: Record<string, unknown>) => ({
      post: {
        operationId,
        responses: { '201': { description: 'made' }, '400': error({ type: 'string' }, { code: 'BAD_INPUT', message: 'Bad input' }), '422': error(code422, { code: 'KEY_REUSED', message: 'Key reused' }) },
      },
    });
    const document = { openapi: '3.0.3', info: { title: 'flat', version: '1' }, paths: { '/flat': operation('makeFlat', { type: 'string' }), '/pinned': operation('makePinned', { type: 'string', enum: ['KEY_REUSED'] }) } };
    writeFileSync(file, stringify(document));
    const flat = await createMockServer({ specPath: file });
    try {
      const refused = async (url: string) => {
        const response = await flat.inject({ method: 'POST', url, headers: { prefer: 'code=2xx' } });
        expect(response.statusCode, response.body).toBe(422);
        return JSON.parse(response.body);
      };
      expect(await refused('/flat')).toEqual({ code: 'BAD_INPUT', message: 'Prefer: code=2xx is not a status code' });
      expect(await refused('/pinned')).toEqual({ code: 'KEY_REUSED', message: 'Prefer: code=2xx is not a status code' });
    } finally {
      await flat.close();
    }
  });

  it("answers a method a path does not take with 405 and Allow where an operation documents a 4XX range (and none a 405 or default), and Prefer: code= a code of that range", async () => {
    const file = join(folder, 'ranges-4xx.yaml');
    const document = {
      openapi: '3.0.3',
      info: { title: 'ranges', version: '1' },
      paths: { '/things': { get: { operationId: 'listThings', responses: { '200': { description: 'ok' }, '4XX': { description: 'refused', content: { 'application/json': { schema: { type: 'object', properties: { message: { type: 'string' } } } } } } } } } },
    };
    writeFileSync(file, stringify(document));
    const ranges = await createMockServer({ specPath: file });
    try {
      const response = await ranges.inject({ method: 'DELETE', url: '/things' });
      expect(response.statusCode, response.body).toBe(405);
      expect(response.headers.allow).toBe('GET, HEAD');
      expect(JSON.parse(response.body).message).toBe('DELETE is not allowed on /things');
      // And Prefer: code= a status of that range is answered with the range's response.
      const asked = await ranges.inject({ method: 'GET', url: '/things', headers: { prefer: 'code=404' } });
      expect(asked.statusCode, asked.body).toBe(404);
      expect(typeof JSON.parse(asked.body).message).toBe('string');
    } finally {
      await ranges.close();
    }
  });
});
