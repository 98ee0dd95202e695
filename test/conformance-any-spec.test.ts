// The conformance suite against an API that is not ours: a small Petstore (OpenAPI 3.0,
// a plain-text route) served by a test server. The generic checks run, the Sessions
// flows do not; what it creates is deleted; faults in the Petstore are caught.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyInstance } from 'fastify';
import { parse, stringify } from 'yaml';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Ajv2020 } from 'ajv/dist/2020.js';
import ajvFormats from 'ajv-formats';
import { ResponseChecker } from '../src/conformance/check.js';
import { samples } from '../src/conformance/generate.js';
import { hostileCases } from '../src/conformance/hostile.js';
import { mutateValue } from '../src/conformance/mutate.js';
import { fitsParameter, substitute } from '../src/conformance/fixtures.js';
import { headersOf, readStream, send } from '../src/conformance/http.js';
import { planOperation } from '../src/conformance/plan.js';
import { buildExchange } from '../src/conformance/requests.js';
import { framesRead } from '../src/conformance/stream-step.js';
import { operationSummaries } from '../src/conformance/report.js';
import { type OperationSummary, runConformance, UsageError } from '../src/conformance/run.js';
import { atPointer, loadSpec, type Operation, type Parameter, RECURSION, type Schema } from '../src/conformance/spec-model.js';
import { type PetstoreFault, startPetstore } from './helpers/petstore-server.js';

const petstoreSpec = fileURLToPath(new URL('./fixtures/petstore.yaml', import.meta.url));
const servers: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});

async function against(fault?: PetstoreFault) {
  const petstore = await startPetstore(fault);
  servers.push(petstore);
  const report = await runConformance({ baseUrl: petstore.url, specPath: petstoreSpec, seed: 7, validCases: 6, workers: 2 });
  return { petstore, report };
}

/** The Petstore with an API key required everywhere but /health, 401 documented. */
function securedPetstoreSpec(): string {
  const document = parse(readFileSync(petstoreSpec, 'utf8'));
  document.components.securitySchemes = { apiKey: { type: 'apiKey', in: 'header', name: 'X-API-KEY' } };
  document.security = [{ apiKey: [] }];
  for (const [path, item] of Object.entries<any>(document.paths)) {
    for (const operation of Object.values<any>(item).filter((o) => o?.operationId)) {
      if (path === '/health') operation.security = [];
      else operation.responses['401'] = { $ref: '#/components/responses/Error' };
    }
  }
  const file = join(folder, 'petstore-secured.yaml');
  writeFileSync(file, stringify(document));
  return file;
}
const folder = mkdtempSync(join(tmpdir(), 'sessions-api-petstore-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

const failedChecks = (report: Awaited<ReturnType<typeof runConformance>>) => new Set(report.cases.flatMap((c) => c.violations.map((v) => v.check)));

/**
 * The Petstore split in two files as teams keep big specs: its schemas in `schemas/pets.yaml`
 * beside it, referred to as `schemas/pets.yaml#/Pet`; `Pet` made to say its id is a string.
 */
function splitPetstoreSpec(idType: 'integer' | 'string'): string {
  const document = parse(readFileSync(petstoreSpec, 'utf8'));
  const schemas = document.components.schemas;
  delete document.components.schemas;
  schemas.Pet.properties.id.type = idType;
  const moved = (text: string, to: string) => text.replaceAll('#/components/schemas/', to);
  mkdirSync(join(folder, 'schemas'), { recursive: true });
  writeFileSync(join(folder, 'schemas', 'pets.yaml'), moved(stringify(schemas), '#/'));
  const file = join(folder, `petstore-split-${idType}.yaml`);
  writeFileSync(file, moved(stringify(document), 'schemas/pets.yaml#/'));
  return file;
}

describe('readOnly and writeOnly', () => {
  it('leaves readOnly properties out of requests and does not require writeOnly ones in answers', () => {
    const spec = join(folder, 'users.yaml');
    const user = {
      type: 'object',
      additionalProperties: false,
      required: ['id', 'name', 'password'],
      properties: { id: { type: 'integer', readOnly: true }, name: { type: 'string', minLength: 1 }, password: { type: 'string', minLength: 8, writeOnly: true } },
    };
    writeFileSync(
      spec,
      stringify({
        openapi: '3.1.0',
        info: { title: 'users', version: '1' },
        paths: {
          '/users': {
            post: {
              operationId: 'createUser',
              requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/User' } } } },
              responses: { '201': { description: 'made', content: { 'application/json': { schema: { $ref: '#/components/schemas/User' } } } } },
            },
          },
        },
        components: { schemas: { User: user } },
      }),
    );
    const [operation] = loadSpec(spec).operations;
    expect(operation!.body!.schema.required).toEqual(['name', 'password']);
    expect(Object.keys(operation!.body!.schema.properties)).toEqual(['name', 'password']);
    expect(operation!.responses['201']!.schema!.required).toEqual(['id', 'name']);
    for (const body of samples(operation!.body!.schema, 20, 3) as Array<Record<string, unknown>>) expect(body).not.toHaveProperty('id');
  });

  it('does not require writeOnly properties in the frames of an event stream either (a frame without the password honours it)', () => {
    const spec = join(folder, 'user-stream.yaml');
    const user = { type: 'object', required: ['id', 'password'], properties: { id: { type: 'integer' }, password: { type: 'string', writeOnly: true } } };
    writeFileSync(
      spec,
      stringify({
        openapi: '3.1.0',
        info: { title: 'users', version: '1' },
        paths: { '/users/stream': { get: { operationId: 'streamUsers', responses: { '200': { description: 'users', content: { 'text/event-stream': { schema: { type: 'array', items: user } } } } } } } },
      }),
    );
    const [stream] = loadSpec(spec).streams;
    const checker = new ResponseChecker();
    expect(checker.eventViolations(stream!, { id: 1 })).toEqual([]);
    expect(checker.honours(stream!.responses['200']!.events!, { id: 1 })).toBe(true);
    expect(checker.eventViolations(stream!, { password: 'x' })).toEqual(["event at $.id must have required property 'id'"]);
  });
});

describe('the response-headers check', () => {
  const operation = (name: string, schema: Schema, json = false): Operation => ({
    operationId: 'x',
    method: 'GET',
    path: '/x',
    parameters: [],
    secured: false,
    responses: { '200': { contentTypes: [], schemas: {}, headers: { [name.toLowerCase()]: { name, required: true, schema, ...(json ? { json: true as const } : {}) } } } },
  });
  const retryAfter = { oneOf: [{ type: 'integer', minimum: 0 }, { type: 'string', pattern: '^[A-Z][a-z]{2}, ' }] };
  const cases: Array<[string, Schema, string, boolean, boolean?]> = [
    // A schema naming no type (Retry-After: seconds or an HTTP date) is tried in each form the text may stand for.
    ['Retry-After', retryAfter, '120', true],
    ['Retry-After', retryAfter, 'Wed, 21 Oct 2015 07:28:00 GMT', true],
    ['Retry-After', retryAfter, 'soon', false],
    ['X-Count', { anyOf: [{ type: 'integer' }] }, '5', true],
    // Described with content: the value is JSON.
    ['X-Json', { type: 'string', maxLength: 3 }, '"abc"', true, true],
    ['X-Json', { type: 'string', maxLength: 3 }, '"abcd"', false, true],
    // simple style: an array a,b; an object k,v.
    ['X-Tags', { type: 'array', items: { type: 'string' } }, '1,2', true],
    ['X-Ids', { type: 'array', items: { type: 'integer' } }, '1,2', true],
    ['X-Ids', { type: 'array', items: { type: 'integer' } }, '1,b', false],
    ['X-Obj', { type: 'object', required: ['a'], properties: { a: { type: 'integer' } } }, 'a,1', true],
    ['X-Obj', { type: 'object', required: ['a'], properties: { a: { type: 'integer' } } }, 'b,1', false],
    ['X-Request-Id', { type: 'string', minLength: 1 }, '123', true],
    ['X-Flag', { type: 'boolean' }, 'true', true],
    ['X-Flag', { type: 'boolean' }, 'yes', false],
    ['X-Tags', { type: 'array', items: { type: 'string', enum: ['a', 'b'] } }, 'a, b', true],
  ];
  it.each(cases)('%s %j: %j is valid: %s', (name, schema, text, valid, json) => {
    const violations = new ResponseChecker().violations(operation(name, schema, json), { status: 200, contentType: '', text: '', headers: { [name.toLowerCase()]: text } });
    expect(violations.length === 0, violations.map((v) => v.message).join('; ')).toBe(valid);
  });
});

describe('a oneOf with a discriminator', () => {
  /** A spec whose one operation answers a Shape: a circle or a square, told apart by `kind`. */
  function shapeOperation(tagged: boolean) {
    const branch = (kind: string, size: string) => ({
      type: 'object',
      additionalProperties: false,
      required: ['kind', size],
      properties: { kind: tagged ? { type: 'string', enum: [kind] } : { type: 'string' }, [size]: { type: 'number', exclusiveMinimum: 0 } },
    });
    const document = {
      openapi: '3.1.0',
      info: { title: 'shapes', version: '1' },
      paths: {
        '/shape': {
          get: {
            operationId: 'getShape',
            responses: { '200': { description: 'a shape', content: { 'application/json': { schema: { $ref: '#/components/schemas/Shape' } } } } },
          },
        },
      },
      components: {
        schemas: {
          Shape: {
            oneOf: [{ $ref: '#/components/schemas/Circle' }, { $ref: '#/components/schemas/Square' }],
            discriminator: { propertyName: 'kind', mapping: { circle: '#/components/schemas/Circle', square: '#/components/schemas/Square' } },
          },
          Circle: branch('circle', 'radius'),
          Square: branch('square', 'side'),
        },
      },
    };
    const file = join(folder, `shapes-${tagged}.yaml`);
    writeFileSync(file, stringify(document));
    return loadSpec(file).operations[0]!;
  }
  const answer = (json: unknown) => ({ status: 200, contentType: 'application/json', text: JSON.stringify(json), json });

  it("judges a body by the branch its tag names: one fault, not every branch's", () => {
    const violations = new ResponseChecker().violations(shapeOperation(true), answer({ kind: 'circle', radius: 0 }));
    expect(violations.map((v) => v.message)).toEqual(['200 body at $.radius must be > 0']);
    expect(new ResponseChecker().violations(shapeOperation(true), answer({ kind: 'square', side: 2 }))).toEqual([]);
  });

  it('judges answers whose schemas share a component with an $id (each compiled on its own: it threw "already exists")', () => {
    const thing = { $id: 'https://example.com/thing', type: 'object', required: ['id'], properties: { id: { type: 'integer' } } };
    const document = {
      openapi: '3.1.0',
      info: { title: 'things', version: '1' },
      paths: Object.fromEntries(
        ['a', 'b', 'c'].map((name) => [`/${name}`, { get: { operationId: `get${name}`, responses: { '200': { description: 'a thing', content: { 'application/json': { schema: { $ref: '#/components/schemas/Thing' } } } } } } }]),
      ),
      components: { schemas: { Thing: thing } },
    };
    const file = join(folder, 'things.yaml');
    writeFileSync(file, stringify(document));
    const checker = new ResponseChecker();
    for (const operation of loadSpec(file).operations) {
      expect(checker.violations(operation, answer({ id: 1 })), operation.operationId).toEqual([]);
      expect(checker.violations(operation, answer({ id: 'one' })).map((v) => v.message), operation.operationId).toEqual(['200 body at $.id must be integer']);
    }
  });

  it('still judges it as a plain oneOf where the branches do not tag themselves (const or enum)', () => {
    const violations = new ResponseChecker().violations(shapeOperation(false), answer({ kind: 'circle', radius: 0 }));
    expect(violations.map((v) => v.message)).toContain('200 body at $ must match exactly one schema in oneOf');
    expect(new ResponseChecker().violations(shapeOperation(false), answer({ kind: 'square', side: 2 }))).toEqual([]);
  });
});

describe('a status documenting two JSON media types (or one with parameters)', () => {
  const schemaOf = (key: string, type: string) => ({ type: 'object', required: [key], properties: { [key]: { type } }, additionalProperties: false });
  /** The operation of a spec whose one GET documents `content` for its 200. */
  const operationWith = (name: string, content: Record<string, unknown>) => {
    const file = join(folder, `${name}.yaml`);
    const document = { openapi: '3.1.0', info: { title: name, version: '1' }, paths: { '/thing': { get: { operationId: 'getThing', responses: { '200': { description: 'the thing, in either version', content } } } } } };
    writeFileSync(file, stringify(document));
    return loadSpec(file).operations[0]!;
  };
  const operation = operationWith('two-json', { 'application/json; charset=utf-8': { schema: schemaOf('a', 'string') }, 'application/vnd.thing.v2+json': { schema: schemaOf('b', 'integer') } });
  const answer = (contentType: string, json: unknown) => ({ status: 200, contentType, text: JSON.stringify(json), json });
  const messages = (contentType: string, json: unknown) => new ResponseChecker().violations(operation, answer(contentType, json)).map((v) => `${v.check}: ${v.message}`);

  it("checks a body against its own media type's schema", () => {
    expect(messages('application/vnd.thing.v2+json', { b: 1 })).toEqual([]);
    expect(messages('application/vnd.thing.v2+json', { a: 'x' })).not.toEqual([]);
    expect(messages('application/json', { a: 'x' })).toEqual([]);
    expect(messages('application/json; charset=utf-8', { b: 1 })).not.toEqual([]);
  });

  it("finds a body's own schema by its bare, lower-case media type, also when that type is not the first documented", () => {
    const second = operationWith('two-json-reversed', { 'application/vnd.thing.v2+json': { schema: schemaOf('b', 'integer') }, 'Application/JSON; charset=utf-8': { schema: schemaOf('a', 'string') } });
    const of = (contentType: string, json: unknown) => new ResponseChecker().violations(second, answer(contentType, json)).map((v) => `${v.check}: ${v.message}`);
    expect(of('application/json', { a: 'x' })).toEqual([]);
    expect(of('application/json; charset=utf-8', { b: 1 })).not.toEqual([]);
    expect(of('application/vnd.thing.v2+json', { b: 1 })).toEqual([]);
  });
});

describe('a status documenting a media range, and a property named with / or ~', () => {
  const operationWith = (name: string, content: Record<string, unknown>) => {
    const file = join(folder, `${name}.yaml`);
    const document = { openapi: '3.1.0', info: { title: name, version: '1' }, paths: { '/thing': { get: { operationId: 'getThing', responses: { '200': { description: 'the thing', content } } } } } };
    writeFileSync(file, stringify(document));
    return loadSpec(file).operations[0]!;
  };
  const checks = (operation: ReturnType<typeof operationWith>, contentType: string, json: unknown) =>
    new ResponseChecker().violations(operation, { status: 200, contentType, text: JSON.stringify(json), json }).map((v) => `${v.check}: ${v.message}`);

  it('takes any content type where the status documents */*, and only text/… where it documents text/*', () => {
    const any = operationWith('any-type', { '*/*': {} });
    expect(checks(any, 'image/png', undefined)).toEqual([]);
    const text = operationWith('text-types', { 'text/*': {} });
    expect(checks(text, 'text/markdown', undefined)).toEqual([]);
    expect(checks(text, 'textual/plain', undefined)).toEqual(['content-type: content type "textual/plain" is not documented for 200 (documented: text/*)']);
  });

  it('names the JSON path of a property whose name holds / or ~ as the name it is (RFC 6901 escapes undone)', () => {
    // `~1` is escaped `~01`: undone in the other order, it would read as `/`.
    const schema = { type: 'object', properties: { 'a/b': { type: 'integer' }, 'c~d': { type: 'integer' }, '~1': { type: 'integer' } } };
    const operation = operationWith('escaped-names', { 'application/json': { schema } });
    const faults = new ResponseChecker().violations(operation, { status: 200, contentType: 'application/json', text: '', json: { 'a/b': 'x', 'c~d': 'y', '~1': 'z' } });
    expect(faults.map((v) => [v.path, v.property])).toEqual([
      ['$["a/b"]', 'a/b'],
      ['$["c~d"]', 'c~d'],
      ['$["~1"]', '~1'],
    ]);
  });
});

describe('the requests the suite builds', () => {
  const noteOperation = (bodyRequired: boolean): Operation => ({
    operationId: 'updateNote',
    method: 'PUT',
    path: '/notes/{noteId}',
    parameters: [{ name: 'noteId', in: 'path', required: true, schema: { type: 'string', format: 'uuid' }, explode: false }],
    body: { required: bodyRequired, schema: { type: 'object', properties: { text: { type: 'string' } } } },
    responses: { '200': { contentTypes: [], schemas: {}, headers: {} } },
    secured: false,
  });

  it('sends a valid request for an unknown id from the second case on (--cases 2 checks the 404 too)', () => {
    const valid = planOperation(noteOperation(true), 0, 1, 2, new Set(['noteId'])).filter((c) => c.kind === 'valid');
    expect(valid.map((c) => c.title)).toEqual(['valid request', 'valid request, unknown id']);
  });

  it('takes an unknown integer id from the top of its range (within its maximum), and names a broken array item by its array', () => {
    const counted = (maximum?: number): Operation => ({
      ...noteOperation(true),
      parameters: [{ name: 'noteId', in: 'path', required: true, schema: { type: 'integer', minimum: 1, ...(maximum === undefined ? {} : { maximum }) }, explode: false }],
      body: { required: true, schema: { type: 'object', required: ['tags'], properties: { tags: { type: 'array', minItems: 1, items: { type: 'string', minLength: 2 } } } } },
    });
    const unknownIds = (maximum?: number) =>
      planOperation(counted(maximum), 0, 1, 8, new Set(['noteId'])).filter((c) => c.title === 'valid request, unknown id').map((c) => Number(c.values.path?.noteId));
    expect(unknownIds(1000)).toEqual([999, 995]);
    expect(unknownIds()).toEqual([2 ** 31 - 2, 2 ** 31 - 6]);
    const invalid = planOperation(counted(1000), 0, 1, 2, new Set(['noteId'])).filter((c) => c.title.startsWith('body/tags/0:'));
    expect(invalid.map((c) => c.expectation)).toContainEqual({ type: 'invalid', field: 'tags' });
    expect(invalid.every((c) => c.expectation.type === 'invalid' && c.expectation.field === 'tags')).toBe(true);
  });

  it('puts an existing id where a body field or query parameter is named as one, and values of its own schema in a path parameter no create makes (a date)', () => {
    const report: Operation = {
      ...noteOperation(true),
      path: '/notes/{noteId}/days/{day}',
      parameters: [
        { name: 'noteId', in: 'path', required: true, schema: { type: 'string', format: 'uuid' }, explode: false },
        { name: 'day', in: 'path', required: true, schema: { type: 'string', format: 'date' }, explode: false },
        { name: 'noteId', in: 'query', required: true, schema: { type: 'string' }, explode: true },
      ],
      body: { required: true, schema: { type: 'object', required: ['noteId', 'text'], properties: { noteId: { type: 'string' }, text: { type: 'string' } } } },
    };
    const valid = planOperation(report, 0, 1, 4, new Set(['noteId'])).filter((c) => c.expectation.type === 'valid' && c.expectation.realIds);
    expect(valid.length).toBeGreaterThan(0);
    for (const c of valid) {
      expect(c.values.path).toMatchObject({ noteId: '@@noteId@@', day: expect.stringMatching(/^\d{4}-\d{2}-\d{2}$/) });
      expect(c.values.query).toEqual({ noteId: '@@noteId@@' });
      expect(c.values.body).toMatchObject({ noteId: '@@noteId@@', text: expect.any(String) });
    }
  });

  it('leaves an optional body out of every third valid request, and never a required one', () => {
    const bodies = (required: boolean) => planOperation(noteOperation(required), 0, 1, 6, new Set(['noteId'])).filter((c) => c.kind === 'valid').map((c) => c.values.body !== undefined);
    expect(bodies(false)).toEqual([true, true, false, true, true, false]);
    expect(bodies(true)).toEqual([true, true, true, true, true, true]);
  });

  it('gives a boolean query parameter turns over the valid requests with real ids, true first (force=false is tried too)', () => {
    const operation = loadSpec(fileURLToPath(new URL('../openapi/sessions-api.yaml', import.meta.url))).operations.find((o) => o.operationId === 'deleteAgent')!;
    const valid = planOperation(operation, 0, 1, 8, new Set(['agentId'])).filter((c) => c.expectation.type === 'valid' && c.expectation.realIds);
    expect(valid.map((c) => c.values.query?.force)).toEqual(valid.map((_, i) => i % 2 === 0));
    expect(valid.length).toBeGreaterThanOrEqual(4);
  });

  const operation = (parameters: Array<Partial<Parameter> & Pick<Parameter, 'name' | 'in'>>): Operation =>
    ({ operationId: 'listTodos', method: 'GET', path: '/todos', parameters: parameters.map((p) => ({ required: false, schema: {}, explode: true, ...p })), responses: {} }) as unknown as Operation;

  it("send a query array as OpenAPI's default says (tag=a&tag=b), or joined where the parameter says explode: false; an empty one not at all", () => {
    const todos = operation([{ name: 'tag', in: 'query' }, { name: 'ids', in: 'query', explode: false }]);
    expect(buildExchange(todos, { query: { tag: ['a', 'b,c'], ids: [1, 2] } }).url).toBe('/todos?tag=a&tag=b%2Cc&ids=1%2C2');
    expect(buildExchange(todos, { query: { tag: [] } }).url).toBe('/todos');
  });

  it('send a query object and the delimited arrays as their style says (an object went as "[object Object]"), and the required cookies in a Cookie header (they went nowhere)', () => {
    const todos = operation([
      { name: 'filter', in: 'query' },
      { name: 'range', in: 'query', explode: false },
      { name: 'where', in: 'query', style: 'deepObject' },
      { name: 'words', in: 'query', style: 'spaceDelimited', explode: false },
      { name: 'ids', in: 'query', style: 'pipeDelimited', explode: false },
    ]);
    const sent = buildExchange(todos, { query: { filter: { status: 'open', owner: 'me' }, range: { from: 1, to: 9 }, where: { tag: 'a b' }, words: ['x', 'y'], ids: [1, 2] } });
    expect(decodeURIComponent(sent.url.replaceAll('+', ' '))).toBe('/todos?status=open&owner=me&range=from,1,to,9&where[tag]=a b&words=x y&ids=1|2');
    // An object of a delimited style, as OpenAPI's style table has it (color=R 100 G 200, R|100|G|200).
    const colors = operation([{ name: 'spaced', in: 'query', style: 'spaceDelimited', explode: false }, { name: 'piped', in: 'query', style: 'pipeDelimited', explode: false }]);
    const colored = buildExchange(colors, { query: { spaced: { R: 100, G: 200 }, piped: { R: 100, G: 200 } } });
    expect(decodeURIComponent(colored.url.replaceAll('+', ' '))).toBe('/todos?spaced=R 100 G 200&piped=R|100|G|200');
    expect(sent.headers.cookie).toBeUndefined();
    const withCookies = operation([
      { name: 'session', in: 'cookie', required: true, schema: { type: 'string', const: 'a b;c' } },
      { name: 'theme', in: 'cookie', required: true, schema: { type: 'integer', const: 7 } },
      { name: 'optional', in: 'cookie', schema: { type: 'string' } },
    ]);
    expect(buildExchange(withCookies, {}).headers.cookie).toBe('session=a%20b%3Bc; theme=7');
  });

  it('send the values nested in a query object as JSON (not "[object Object]"), none of its undefined members, a null as null, an array of no declared parameter form exploded, and the values\' own Cookie header in place of the required cookies', () => {
    const todos = operation([
      { name: 'filter', in: 'query' },
      { name: 'where', in: 'query', style: 'deepObject' },
      { name: 'q', in: 'query' },
      { name: 'session', in: 'cookie', required: true, schema: { type: 'string', const: 'made' } },
    ]);
    const sent = buildExchange(todos, { query: { filter: { owner: { id: 1 }, tags: ['a'], gone: undefined }, where: { range: { from: 1 } }, q: null, other: ['x', 'y'] }, headers: { cookie: 'session=given' } });
    expect(decodeURIComponent(sent.url)).toBe('/todos?owner={"id":1}&tags=["a"]&where[range]={"from":1}&q=null&other=x&other=y');
    expect(sent.headers).toEqual({ cookie: 'session=given' });
  });

  it('escape a path parameter as one segment (a / or ? in a value stays in it), and send no query parameter whose value is undefined', () => {
    const notes = { ...noteOperation(false), path: '/notes/{noteId}/versions/{version}' };
    expect(buildExchange(notes, { path: { noteId: 'a/b?c=d#e f', version: '../..' } }).url).toBe('/notes/a%2Fb%3Fc%3Dd%23e%20f/versions/..%2F..');
    expect(buildExchange(operation([{ name: 'tag', in: 'query' }, { name: 'page', in: 'query' }]), { query: { tag: undefined, page: 2 } }).url).toBe('/todos?page=2');
  });

  it('carry every required header parameter, from its schema, unless the values give one', () => {
    const todos = operation([{ name: 'X-Tenant', in: 'header', required: true, schema: { type: 'string', pattern: '^[a-z]{3,10}$' } }, { name: 'X-Trace', in: 'header' }]);
    const built = buildExchange(todos, {});
    expect(Object.keys(built.headers)).toEqual(['X-Tenant']);
    expect(built.headers['X-Tenant']).toMatch(/^[a-z]{3,10}$/);
    expect(buildExchange(todos, { headers: { 'X-Tenant': 'given' } }).headers).toEqual({ 'X-Tenant': 'given' });
  });

  it('take an answer whose body breaks off as no answer (not as a short body), and send a body with its length in bytes', async () => {
    const lengths: string[] = [];
    const server = createServer((request, response) => {
      lengths.push(String(request.headers['content-length']));
      request.resume();
      request.on('end', () => {
        response.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
        response.write('{"cut":');
        setTimeout(() => response.destroy(), 20);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push({ close: () => new Promise<void>((resolve) => server.close(() => resolve())) });
    const connection = { baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, headers: {}, timeoutMs: 5000 };
    const answer = await send(connection, { method: 'POST', url: '/notes', headers: { 'content-type': 'application/json' }, body: '{"text":"héllo ✓"}' });
    expect(answer).toMatchObject({ status: 0, error: 'no answer: ECONNRESET' });
    expect(lengths).toEqual([String(Buffer.byteLength('{"text":"héllo ✓"}'))]);
  });

  it('read a stream frame as EventSource does: data lines joined by a line feed, one leading space dropped, comments skipped', async () => {
    const server = createServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.end(': a comment\nid: 7\nevent: note\ndata: {"a":\ndata:  1}\n\nid:8\ndata:2\r\n\r\n');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push({ close: () => new Promise<void>((resolve) => server.close(() => resolve())) });
    const connection = { baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, headers: {}, timeoutMs: 5000 };
    const answer = await readStream(connection, { method: 'GET', url: '/events', headers: {} }, { frames: 2, deadlineMs: 3000, lingerMs: 10 });
    expect(answer).toMatchObject({ status: 200, malformed: [], frames: [{ id: '7', event: 'note', data: '{"a":\n 1}' }, { id: '8', data: '2' }] });
    expect(answer.error).toBeUndefined();
  });

  it("flag a stream frame whose id: or event: is not its event's id or type, one without an id:, and one that is not JSON", () => {
    const stream = { ...noteOperation(false), responses: { '200': { contentTypes: ['text/event-stream'], schemas: {}, headers: {} } } } as Operation;
    const frames: Array<Record<string, string>> = [{ id: '7', event: 'note', data: '{"id":7,"type":"note"}' }, { id: '8', data: '{"id":9}' }, { id: '10', event: 'a', data: '{"id":10,"type":"b"}' }, { data: '{}' }, { id: '11', data: 'nope' }];
    const { events, problems } = framesRead(new ResponseChecker(), stream, { status: 200, contentType: 'text/event-stream', frames, malformed: [] });
    expect(problems).toEqual([
      "a frame's id: 8 is not its event's id 9",
      "a frame's event: a is not its event's type b",
      'a frame has no id: line (a client could not resume after it)',
      "a frame's data is not JSON: nope",
    ]);
    expect(events.map((event) => event.id)).toEqual(['7', '8', '10', undefined]);
  });

  it('let --header replace a header of the request whatever its case, not send both; a --header Cookie joins the required cookies in one header', () => {
    const connection = { baseUrl: 'http://127.0.0.1:9', timeoutMs: 1000, headers: { 'x-tenant': 'acme' } };
    expect(headersOf(connection, { method: 'GET', url: '/todos', headers: { 'X-Tenant': 'dss', accept: 'x' } })).toEqual({ accept: 'x', 'x-tenant': 'acme' });
    const session = { ...connection, headers: { Cookie: 'sid=secret' } };
    expect(headersOf(session, { method: 'GET', url: '/todos', headers: { cookie: 'theme=7' } })).toEqual({ Cookie: 'sid=secret; theme=7' });
    expect(headersOf(session, { method: 'GET', url: '/todos', headers: {} })).toEqual({ Cookie: 'sid=secret' });
  });
});

describe('the hostile requests the suite makes', () => {
  const operation = {
    operationId: 'updateNote',
    method: 'PUT',
    path: '/notes/{noteId}',
    parameters: [
      { name: 'noteId', in: 'path', required: true, schema: { type: 'string' }, explode: false },
      { name: 'q', in: 'query', required: false, schema: { type: 'string' }, explode: true },
    ],
    body: { required: true, schema: { type: 'object' } },
    responses: {},
    secured: false,
  } as Operation;

  it('keep the valid values but one: a long string where the body has its first string, JSON __proto__ keys, a path of dots and a NUL', () => {
    const valid = { path: { noteId: 'n1' }, query: { q: 'a' }, body: { n: 1, inner: { text: 'hello' } } };
    const byTitle = new Map(hostileCases(operation, valid).map((c) => [c.title, c]));
    expect(byTitle.get('a 100,000-character string')!.values.body).toEqual({ n: 1, inner: { text: 'x'.repeat(100_000) } });
    // No string in the body: the long one goes beside its fields.
    const numbersOnly = new Map(hostileCases(operation, { ...valid, body: { n: 1 } }).map((c) => [c.title, c]));
    expect(numbersOnly.get('a 100,000-character string')!.values.body).toEqual({ n: 1, hostile: 'x'.repeat(100_000) });
    for (const body of [valid.body, {}]) {
      const raw = new Map(hostileCases(operation, { ...valid, body }).map((c) => [c.title, c])).get('__proto__ and constructor keys')!.values.rawBody as string;
      expect(Object.keys(JSON.parse(raw))).toEqual(['__proto__', 'constructor', ...Object.keys(body)]);
    }
    expect(byTitle.get('a noteId of dots and a NUL')!.values.path).toEqual({ noteId: '../..\u0000' });
    expect(byTitle.get('__proto__ in the query')!.values.query).toEqual({ q: 'a', '__proto__[polluted]': 'true', constructor: 'x' });
    expect(byTitle.get('a 5,000-character q')!.values).toMatchObject({ path: { noteId: 'n1' }, query: { q: 'x'.repeat(5000) } });
  });

  it('keep the invalid UTF-8 bytes of a raw body as they are when the ids go in', () => {
    const raw = Buffer.concat([Buffer.from('{"id":"@@noteId@@","x":"'), Buffer.from([0xff, 0xfe, 0xc3, 0x28]), Buffer.from('"}')]);
    const sent = substitute({ rawBody: raw }, { noteId: 'n1' }).rawBody as Uint8Array;
    expect(Buffer.from(sent).equals(Buffer.concat([Buffer.from('{"id":"n1","x":"'), Buffer.from([0xff, 0xfe, 0xc3, 0x28]), Buffer.from('"}')]))).toBe(true);
  });

  it('let a server refuse only a body over 1 MB by closing the connection', () => {
    const closing = hostileCases(operation, { path: { noteId: 'n1' }, body: {} }).filter((c) => c.mayCloseConnection);
    expect(closing.map((c) => c.title)).toEqual(['a body over 1 MB']);
    expect((closing[0]!.values.rawBody as string).length).toBeGreaterThan(1_048_576);
  });
});

describe('a recursive schema', () => {
  it('gives valid trees: the generator stops where the spec reader cut the recursion', () => {
    const directory = mkdtempSync(join(tmpdir(), 'conformance-tree-'));
    try {
      const node = { type: 'object', required: ['name'], properties: { name: { type: 'string', minLength: 1 }, children: { type: 'array', items: { $ref: '#/components/schemas/Node' } } } };
      const spec = { openapi: '3.1.0', info: { title: 'Tree', version: '1' }, paths: { '/nodes': { post: { operationId: 'createNode', requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/Node' } } } }, responses: { '201': { description: 'made' } } } } }, components: { schemas: { Node: node } } };
      writeFileSync(join(directory, 'tree.yaml'), stringify(spec));
      const body = loadSpec(join(directory, 'tree.yaml')).operations[0]!.body!.schema;
      const validate = new Ajv2020({ strict: false }).compile({ $defs: { Node: { ...node, properties: { ...node.properties, children: { type: 'array', items: { $ref: '#/$defs/Node' } } } } }, $ref: '#/$defs/Node' });
      for (const value of samples(body, 30, 5)) expect(validate(value), JSON.stringify(value)).toBe(true);
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });
});

describe('the faults the suite makes of a valid value', () => {
  it('repeats an item of an array whose items must be unique, within its maxItems', () => {
    const schema = { type: 'array', maxItems: 2, uniqueItems: true, items: { type: 'string' } };
    const duplicated = (value: unknown[]) => mutateValue(schema, value).filter((mutation) => mutation.fault === 'duplicate items').map((mutation) => mutation.value);
    expect(duplicated(['a'])).toEqual([['a', 'a']]);
    expect(duplicated(['a', 'b'])).toEqual([['a', 'a']]);
    expect(mutateValue({ ...schema, uniqueItems: false }, ['a']).map((mutation) => mutation.fault)).not.toContain('duplicate items');
  });

  it('leaves out each required field in turn, breaks the first item of an array, and sends null or another constant only where the schema refuses it', () => {
    const schema = {
      type: 'object',
      required: ['name', 'ids'],
      properties: { name: { type: 'string' }, note: { type: ['string', 'null'] }, ids: { type: 'array', items: { type: 'integer', minimum: 0 } }, on: { const: true } },
    };
    const faults = mutateValue(schema, { name: 'a', note: 'n', ids: [1, 2], on: true }).map((mutation) => [mutation.path.join('/'), mutation.fault, mutation.value]);
    expect(faults).toContainEqual(['name', 'missing required field', { note: 'n', ids: [1, 2], on: true }]);
    expect(faults).toContainEqual(['ids', 'missing required field', { name: 'a', note: 'n', on: true }]);
    expect(faults).toContainEqual(['ids/0', 'below minimum', { name: 'a', note: 'n', ids: [-1, 2], on: true }]);
    expect(faults).toContainEqual(['on', 'not the constant', { name: 'a', note: 'n', ids: [1, 2], on: false }]);
    expect(faults).toContainEqual(['name', 'null', { name: null, note: 'n', ids: [1, 2], on: true }]);
    expect(faults.filter(([path, fault]) => fault === 'null' && (path === 'note' || path === 'on'))).toEqual([]);
    expect(faults.filter(([path, fault]) => fault === 'missing required field' && path === 'note')).toEqual([]);
  });

  it('makes a fractional number of an integer, also of one too large to have halves (near 2^53)', () => {
    const fraction = (value: number) => mutateValue({ type: 'integer', minimum: 0, maximum: 2 ** 53 - 1 }, value).find((mutation) => mutation.fault === 'not an integer')?.value as number;
    expect(fraction(7)).toBe(7.5);
    expect(Number.isInteger(fraction(9007199254740938))).toBe(false);
  });
});

describe('the valid requests the suite generates', () => {
  it.each([
    // 2020-12 allows both bounds: the stricter decides, an exclusive one at the minimum excludes it.
    ['minimum 0, exclusiveMinimum 0', { type: 'integer', minimum: 0, exclusiveMinimum: 0, maximum: 3 }, (n: number) => n > 0 && n <= 3],
    ['minimum 0, exclusiveMinimum 5', { type: 'integer', minimum: 0, exclusiveMinimum: 5, maximum: 8 }, (n: number) => n > 5 && n <= 8],
    ['maximum 9, exclusiveMaximum 9', { type: 'integer', minimum: 6, maximum: 9, exclusiveMaximum: 9 }, (n: number) => n >= 6 && n < 9],
    ['maximum 9, exclusiveMaximum 4', { type: 'integer', minimum: 0, maximum: 9, exclusiveMaximum: 4 }, (n: number) => n >= 0 && n < 4],
    ['maxLength 3, no pattern', { type: 'string', maxLength: 3 }, (text: string) => text.length <= 3],
  ] as Array<[string, Schema, (value: never) => boolean]>)('keeps to %s', (_name, schema, holds) => {
    const values = samples(schema, 300, 11) as never[];
    expect(values.filter((value) => !holds(value))).toEqual([]);
  });

  it('gives values of a oneOf branch that has values of its own, though its other branch has none', () => {
    const schema = { type: 'object', required: ['a'], properties: { a: { oneOf: [{ type: 'string' }, { type: 'string', maxLength: 3 }] } } };
    const validate = new Ajv2020({ strict: false }).compile(schema);
    expect((samples(schema, 50, 42) as unknown[]).filter((value) => !validate(value))).toEqual([]);
  });

  it('gives valid values of a oneOf with a recursive branch (a nullable linked node): not the cut recursion, which holds anything', () => {
    const real = { $defs: { Node: { type: 'object', required: ['value', 'next'], properties: { value: { type: 'integer' }, next: { oneOf: [{ type: 'null' }, { $ref: '#/$defs/Node' }] } } } }, $ref: '#/$defs/Node' };
    // What the spec reader makes of it: the inner Node cut at the recursion.
    const walked = { type: 'object', required: ['value', 'next'], properties: { value: { type: 'integer' }, next: { oneOf: [{ type: 'null' }, { [RECURSION]: true }] } } };
    const validate = new Ajv2020({ strict: false }).compile(real);
    expect((samples(walked, 30, 7) as unknown[]).filter((value) => !validate(value))).toEqual([]);
  });

  it('leave out an optional deprecated property (its successor covers it), never a required one', () => {
    const schema = { type: 'object', required: ['kept'], properties: { kept: { type: 'string', deprecated: true }, old: { type: 'string', deprecated: true }, name: { type: 'string' } } };
    const values = samples(schema, 50, 9) as Array<Record<string, unknown>>;
    expect(values.filter((value) => 'old' in value || !('kept' in value))).toEqual([]);
    expect(values.some((value) => 'name' in value)).toBe(true);
  });

  it('still gives values, at once, for a oneOf whose branches leave no value to one alone (each of their values matches both)', () => {
    const schema = { oneOf: [{ type: 'object', properties: { a: { type: 'string' } } }, { type: 'object', properties: { b: { type: 'integer' } } }] };
    const values = samples(schema, 20, 3) as Array<Record<string, unknown>>;
    expect(values).toHaveLength(20);
    expect(values.every((value) => typeof value === 'object' && value !== null)).toBe(true);
  });

  it.each([
    ['a date', { type: 'string', format: 'date' }],
    ['an email', { type: 'string', format: 'email' }],
    ['a pattern within length bounds', { type: 'string', pattern: '^[a-z]+(-[a-z0-9]+)*$', minLength: 4, maxLength: 8 }],
    ['exclusive bounds (2020-12)', { type: 'object', required: ['n', 'k'], properties: { n: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 }, k: { type: 'integer', exclusiveMinimum: 0, maximum: 3 } } }],
    ['allOf, as discriminated polymorphism uses it', {
      allOf: [
        { type: 'object', required: ['kind'], properties: { kind: { const: 'dog' } } },
        { type: 'object', required: ['name', 'born'], properties: { name: { type: 'string', minLength: 1 }, born: { type: 'string', format: 'date' } } },
      ],
    }],
    ['unique items, from a small enum', { type: 'array', minItems: 1, maxItems: 10, uniqueItems: true, items: { enum: ['a', 'b', 'c'] } }],
    ['additional properties of a schema', { type: 'object', additionalProperties: { type: 'integer', minimum: 0 } }],
    ['at most one item (maxItems below the 3 it would add)', { type: 'array', maxItems: 1, items: { type: 'integer' } }],
    ['an object that takes no property at all', { type: 'object', additionalProperties: false }],
  ])('are valid against their schema: %s', (_what, schema) => {
    const ajv = new Ajv2020({ strict: false });
    ajvFormats.default(ajv as never);
    const validate = ajv.compile(schema);
    for (const value of samples(schema, 50, 7)) expect(validate(value), `${JSON.stringify(value)}: ${JSON.stringify(validate.errors)}`).toBe(true);
  });
});

/** Writes `document` as a spec and serves `routes` on a Fastify of its own; the spec's path and the server's URL. */
async function served(name: string, document: Record<string, unknown>, routes: (app: FastifyInstance) => void): Promise<{ spec: string; url: string }> {
  const spec = join(folder, `${name}.yaml`);
  writeFileSync(spec, stringify({ openapi: '3.1.0', info: { title: name, version: '1' }, ...document }));
  const app = Fastify();
  routes(app);
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  servers.push({ close: () => app.close() });
  return { spec, url };
}

describe('the conformance suite against another spec (Petstore)', { timeout: 60_000 }, () => {
  it('checks a documented redirect as the answer it is, without following it', async () => {
    const { spec, url } = await served(
      'moved',
      {
        paths: {
          '/old': { get: { operationId: 'old', responses: { '302': { description: 'moved', headers: { Location: { schema: { type: 'string' } } } } } } },
          '/new': { get: { operationId: 'new', responses: { '200': { description: 'here', content: { 'application/json': { schema: { type: 'object' } } } } } } },
        },
      },
      (app) => {
        app.get('/old', async (_request, reply) => reply.redirect('/new', 302));
        app.get('/new', async () => ({}));
      },
    );
    const report = await runConformance({ baseUrl: url, specPath: spec, seed: 1, validCases: 2, workers: 1 });
    expect(report.cases.filter((c) => !c.passed).map((c) => `${c.title}: ${c.violations.map((v) => v.message).join('; ')}`)).toEqual([]);
    expect(report.cases.find((c) => c.operationId === 'old' && c.kind === 'valid')?.status).toBe(302);
  });

  it("keeps its own rows apart from an operation named like one (an operationId 'still-healthy' shared the last health check's row)", async () => {
    const { spec, url } = await served(
      'named-like-a-row',
      { paths: { '/health': { get: { operationId: 'still-healthy', responses: { '200': { description: 'ok', content: { 'application/json': { schema: { type: 'object' } } } } } } } } },
      (app) => app.get('/health', async () => ({})),
    );
    const rows: string[] = [];
    const report = await runConformance({ baseUrl: url, specPath: spec, seed: 1, validCases: 2, workers: 1, onOperation: (summary) => rows.push(summary.operationId) });
    expect(report.cases.filter((c) => c.kind === 'health').map((c) => c.operationId)).toEqual(['still-healthy (suite)']);
    expect(new Set(report.cases.filter((c) => c.kind === 'valid').map((c) => c.operationId))).toEqual(new Set(['still-healthy']));
    expect(rows).toEqual(['still-healthy', 'still-healthy (suite)']);
  });

  it('reads a spec split across files: its external $refs resolved as the local ones, a broken one refused naming it', async () => {
    const split = splitPetstoreSpec('integer');
    expect(JSON.stringify(loadSpec(split).operations)).toBe(JSON.stringify(loadSpec(petstoreSpec).operations));
    // The server sends integer ids: a spec saying string must fail it (a dropped ref would pass anything).
    const petstore = await startPetstore();
    servers.push(petstore);
    const report = await runConformance({ baseUrl: petstore.url, specPath: splitPetstoreSpec('string'), seed: 7, validCases: 2, workers: 2 });
    expect(report.failed).toBeGreaterThan(0);
    expect(report.cases.flatMap((c) => c.violations.map((v) => v.message)).join('\n')).toMatch(/id.*must be string/);
    const broken = join(folder, 'petstore-broken-ref.yaml');
    writeFileSync(broken, readFileSync(split, 'utf8').replace('schemas/pets.yaml#/NewPet', 'schemas/pets.yaml#/NoSuchPet'));
    expect(() => loadSpec(broken)).toThrow(/\$ref schemas\/pets\.yaml#\/NoSuchPet in .*petstore-broken-ref\.yaml names nothing/);
  });

  it('passes against a correct Petstore, with the generic checks only, and deletes the pets it made', async () => {
    const petstore = await startPetstore();
    servers.push(petstore);
    const progress: OperationSummary[] = [];
    const report = await runConformance({ baseUrl: petstore.url, specPath: petstoreSpec, seed: 7, validCases: 6, workers: 2, onOperation: (summary) => progress.push(summary) });
    expect(report.cases.filter((c) => !c.passed).map((c) => `${c.key}: ${c.violations.map((v) => v.message).join('; ')}`)).toEqual([]);
    expect(new Set(report.cases.map((c) => c.operationId))).toEqual(new Set(['listPets', 'createPets', 'showPetById', 'deletePet', 'health', 'stateful', 'still-healthy']));
    // The progress lines say what the table says (the last health request had been counted in its operation's row only).
    expect(new Set(progress)).toEqual(new Set(operationSummaries(report)));
    expect(report.cases.filter((c) => c.kind === 'stateful').map((c) => c.key)).toEqual(['flow/deleted/deletePet']);
    expect(report.cases.some((c) => c.kind === 'invalid' && c.operationId === 'createPets' && /body\/name/.test(c.title))).toBe(true);
    // Real ids were used: some showPetById succeeded (else "some valid request succeeds" fails).
    expect(report.cleanup.deleted).toBeGreaterThan(0);
    expect(petstore.pets.size).toBe(0);
  });

  it('runs only the operations --include-operation names, less those --exclude-operation names', async () => {
    const petstore = await startPetstore();
    servers.push(petstore);
    const report = await runConformance({ baseUrl: petstore.url, specPath: petstoreSpec, seed: 7, validCases: 1, includeOperations: ['listPets', 'health'], excludeOperations: ['health'] });
    // And the last health check, made with listPets (a GET needing no parameter).
    expect(new Set(report.cases.map((c) => c.operationId))).toEqual(new Set(['listPets', 'still-healthy']));
  });

  it('says so once per case when it cannot make an id, instead of sending its placeholder and blaming the operation', async () => {
    const { report } = await against('refuses-creates');
    const notRun = report.cases.filter((c) => c.violations.some((v) => v.message.startsWith('not run: no petId to use, as createPets answered 400: ')));
    expect(notRun.length).toBeGreaterThan(0);
    expect(new Set(notRun.map((c) => c.operationId))).toEqual(new Set(['showPetById', 'deletePet']));
    expect(notRun.every((c) => c.requests.length === 0)).toBe(true);
    expect(report.cases.flatMap((c) => c.requests).filter((request) => request.includes('%40%40'))).toEqual([]);
    // Not judged on what did not run: no "some valid request succeeds" for them.
    expect(report.cases.filter((c) => c.key.endsWith('/valid/coverage')).map((c) => c.operationId)).toEqual(['createPets']);
  });

  it("does not use an id the create answered that its path parameter's schema refuses: those cases are not run, saying why, and the create is blamed", async () => {
    const { report } = await against('string-ids');
    const notRun = report.cases.filter((c) => c.violations.some((v) => /^not run: no petId to use, as createPets answered an id, "pet-\d+", that petId's schema refuses$/.test(v.message)));
    expect(new Set(notRun.map((c) => c.operationId))).toEqual(new Set(['showPetById', 'deletePet']));
    expect(notRun.every((c) => c.requests.length === 0)).toBe(true);
    const blamed = report.cases.filter((c) => !c.passed && !notRun.includes(c));
    expect(new Set(blamed.map((c) => c.operationId))).toEqual(new Set(['createPets', 'stateful']));
    // The flow through the create stops there, blaming it; it sends no DELETE with that id.
    const flow = report.cases.find((c) => c.key === 'flow/deleted/deletePet')!;
    expect(flow.violations.map((v) => v.message)).toEqual(['createPets: 201 body at $.id must be integer', expect.stringMatching(/^the answer to createPets names petId "pet-\d+", which its schema refuses$/)]);
  });

  it('reads a path id as a number where its parameter takes numbers, whole or not, signed or not; as a string elsewhere', () => {
    expect(fitsParameter({ type: 'integer' }, '42')).toBe(true);
    expect(fitsParameter({ type: 'integer' }, '-3')).toBe(true);
    expect(fitsParameter({ type: 'integer', minimum: 1 }, '-3')).toBe(false);
    expect(fitsParameter({ type: 'integer' }, '1.5')).toBe(false);
    expect(fitsParameter({ type: 'number' }, '1.5')).toBe(true);
    expect(fitsParameter({ type: 'number' }, '-0.25')).toBe(true);
    expect(fitsParameter({ type: ['number', 'null'] }, '7')).toBe(true);
    expect(fitsParameter({ type: 'integer' }, 'pet-1')).toBe(false);
    expect(fitsParameter({ type: 'string', pattern: '^\\d+$' }, '42')).toBe(true);
  });

  it('catches a 500 on a bad input', async () => {
    const { report } = await against('long-name-crashes');
    const failure = report.cases.find((c) => !c.passed && c.title === 'body/name: too long');
    expect(failure?.violations.map((v) => v.check)).toEqual(expect.arrayContaining(['invalid-input-refused', 'no-server-error']));
    expect(failure?.status).toBe(500);
    expect(failure?.body).toContain('internal error');
  });

  it('catches an undocumented content type on a plain-text route', async () => {
    const { report } = await against('health-as-html');
    expect([...failedChecks(report)]).toEqual(['content-type']);
  });

  it('catches an unexpected property, naming it and its JSON path', async () => {
    const { report } = await against('extra-field');
    const violation = report.cases.flatMap((c) => c.violations).find((v) => v.check === 'response-schema');
    expect(violation).toMatchObject({ property: 'owner', path: '$.owner' });
    expect(violation?.message).toContain('"owner"');
  });

  it('catches a required response header left out, and a documented one whose value breaks its schema, naming each', async () => {
    const missing = await against('no-location');
    expect([...failedChecks(missing.report)]).toEqual(['response-headers']);
    const lacking = missing.report.cases.flatMap((c) => c.violations).filter((v) => v.check === 'response-headers');
    expect(lacking.length).toBeGreaterThan(0);
    expect(lacking.every((v) => v.message.endsWith('201 answer lacks the required header Location') && v.property === 'Location')).toBe(true);

    const wrong = await against('count-in-words');
    expect([...failedChecks(wrong.report)]).toEqual(['response-headers']);
    expect(wrong.report.cases.flatMap((c) => c.violations).find((v) => v.check === 'response-headers')).toMatchObject({
      property: 'X-Total-Count',
      message: '200 header X-Total-Count: "many" must be integer',
    });
  });

  it('takes a 404 for a malformed id where the operation documents 404 and no 400, and wants the 400 where it documents one', async () => {
    const strict = await against('malformed-id-as-unknown');
    expect(strict.report.cases.filter((c) => !c.passed && c.title.startsWith('path petId')).map((c) => c.violations[0]?.message)).toContain('expected 400, got 404');

    const document = parse(readFileSync(petstoreSpec, 'utf8'));
    for (const operation of Object.values<any>(document.paths['/pets/{petId}'])) if (operation?.responses) delete operation.responses['400'];
    delete document.paths['/pets/{petId}'].get.responses.default;
    delete document.paths['/pets/{petId}'].delete.responses.default;
    const specPath = join(folder, 'petstore-no-400.yaml');
    writeFileSync(specPath, stringify(document));
    const petstore = await startPetstore('malformed-id-as-unknown');
    servers.push(petstore);
    const report = await runConformance({ baseUrl: petstore.url, specPath, seed: 7, validCases: 6, workers: 2 });
    const malformed = report.cases.filter((c) => c.kind === 'invalid' && c.title.startsWith('path petId'));
    expect(malformed.length).toBeGreaterThan(0);
    expect(malformed.filter((c) => !c.passed).map((c) => `${c.title}: ${c.violations.map((v) => v.message).join('; ')}`)).toEqual([]);
  });

  it('with an API key, checks that secured operations answer 401 without it, and not the open ones', async () => {
    const specPath = securedPetstoreSpec();
    for (const fault of [undefined, 'lets-anyone-list'] as const) {
      const petstore = await startPetstore(fault, 'let-me-in');
      servers.push(petstore);
      const report = await runConformance({ baseUrl: petstore.url, specPath, seed: 7, validCases: 4, workers: 2, apiKey: 'let-me-in' });
      const auth = report.cases.filter((c) => c.kind === 'auth');
      expect(auth.map((c) => c.operationId).sort()).toEqual(['createPets', 'deletePet', 'listPets', 'showPetById']);
      expect(auth.every((c) => !c.requests[0]!.includes('X_API_KEY'))).toBe(true);
      if (fault) {
        expect(report.cases.filter((c) => !c.passed).map((c) => c.key)).toEqual(['listPets/auth/0']);
      } else {
        expect(report.failed).toBe(0);
        expect(petstore.pets.size).toBe(0);
      }
    }
    // A --header of the same name, in any case, replaces the --api-key value (the key was sent instead).
    const petstore = await startPetstore(undefined, 'let-me-in');
    servers.push(petstore);
    const replaced = await runConformance({ baseUrl: petstore.url, specPath, seed: 7, validCases: 2, workers: 2, apiKey: 'not-the-key', headers: { 'X-Api-Key': 'let-me-in' } });
    expect(replaced.cases.filter((c) => !c.passed).map((c) => c.key)).toEqual([]);
  });

  it('stops with one error when the target stops answering mid-run, not a failure per case', async () => {
    const { report } = await against('dies-after-30-requests');
    expect(report.lostTarget).toMatch(/^http:\/\/127\.0\.0\.1:\d+ stopped answering \(no answer: (ECONNREFUSED|ECONNRESET|UND_ERR_SOCKET|other side closed)/);
    expect(report.interrupted).toBe(true);
    expect(report.cases.filter((c) => c.violations.some((v) => v.check === 'responds')).length).toBeLessThanOrEqual(12);
  });

  it('gives up after exactly 10 requests in a row without an answer, and then deletes nothing (it says what it left)', async () => {
    const petstore = await startPetstore('dies-after-30-requests');
    servers.push(petstore);
    const report = await runConformance({ baseUrl: petstore.url, specPath: petstoreSpec, seed: 7, validCases: 6, workers: 1 });
    expect(petstore.unanswered()).toBe(10);
    expect(report.cleanup).toEqual({ deleted: 0, left: [expect.stringMatching(/^everything created \(\d+\): the target stopped answering$/)], kept: 0 });
  });

  it('fails the last health check on a documented error status (the first plain GET stands for health in a spec without getSessionsHealth)', async () => {
    const { report } = await against('list-unavailable');
    const health = report.cases.find((c) => c.kind === 'health');
    expect(health).toMatchObject({ title: 'listPets still answers after the hostile requests', status: 503, passed: false, violations: [{ check: 'still-healthy', message: 'answered 503' }] });
  });
});


describe('reading a spec', () => {
  it('follows JSON pointers as RFC 6901 has them, in a $ref fragment percent-decoded', () => {
    const document = { '': 'empty key', paths: { '/pets/{id}': 'the path', 'a~b': 'tilde', '~1': 'escaped' } };
    expect(atPointer(document, '')).toBe(document);
    expect(atPointer(document, '/')).toBe('empty key');
    expect(atPointer(document, '/paths/~1pets~1%7Bid%7D')).toBe('the path');
    expect(atPointer(document, '/paths/a~0b')).toBe('tilde');
    expect(atPointer(document, '/paths/~01')).toBe('escaped'); // ~0 then 1, not ~ then 01
    expect(atPointer(document, '/paths/missing/deeper')).toBeUndefined();
  });

  it('keeps the keywords beside a $ref (OpenAPI 3.1), over those of its target', () => {
    const spec = join(folder, 'ref-siblings.yaml');
    const name = { $ref: '#/components/schemas/Name', maxLength: 5, description: 'short' };
    writeFileSync(spec, stringify({
      openapi: '3.1.0',
      info: { title: 'siblings', version: '1' },
      paths: { '/notes': { post: { operationId: 'createNote', requestBody: { content: { 'application/json': { schema: { type: 'object', properties: { name } } } } }, responses: { '201': { description: 'made' } } } } },
      components: { schemas: { Name: { type: 'string', maxLength: 50, description: 'a name' } } },
    }));
    expect(loadSpec(spec).operations[0]!.body!.schema.properties.name).toEqual({ type: 'string', maxLength: 5, description: 'short' });
  });

  it('judges an answer by its exact status, else its range (4xx written in any case), else default', () => {
    const spec = join(folder, 'ranges.yaml');
    const body = (required: string) => ({ content: { 'application/json': { schema: { type: 'object', required: [required] } } } });
    writeFileSync(spec, stringify({
      openapi: '3.1.0',
      info: { title: 'ranges', version: '1' },
      paths: { '/notes': { get: { operationId: 'listNotes', responses: { '200': { description: 'ok', ...body('items') }, '404': { description: 'none', ...body('missing') }, '4xx': { description: 'refused', ...body('error') }, default: { description: 'else', ...body('other') } } } } },
    }));
    const [operation] = loadSpec(spec).operations;
    const checker = new ResponseChecker();
    const failing = (status: number, json: object) => checker.violations(operation!, { status, contentType: 'application/json', text: JSON.stringify(json), json }).length > 0;
    expect([failing(404, { missing: 1 }), failing(404, { error: 1 })]).toEqual([false, true]);
    expect([failing(409, { error: 1 }), failing(409, { other: 1 })]).toEqual([false, true]);
    expect([failing(503, { other: 1 }), failing(503, { error: 1 })]).toEqual([false, true]);
  });

  it('reads OpenAPI 3.0 nullable and boolean exclusive bounds as 2020-12 says them', () => {
    const spec = join(folder, 'nullable-30.yaml');
    const properties = { note: { type: 'string', nullable: true }, n: { type: 'integer', minimum: 0, exclusiveMinimum: true }, m: { type: 'integer', maximum: 9, exclusiveMaximum: false } };
    writeFileSync(spec, stringify({
      openapi: '3.0.3',
      info: { title: 'nullable', version: '1' },
      paths: { '/notes': { get: { operationId: 'getNote', responses: { '200': { description: 'ok', content: { 'application/json': { schema: { type: 'object', properties } } } } } } } },
    }));
    const [operation] = loadSpec(spec).operations;
    expect(operation!.responses['200']!.schema!.properties).toEqual({ note: { type: ['string', 'null'], nullable: true }, n: { type: 'integer', exclusiveMinimum: 0 }, m: { type: 'integer', maximum: 9 } });
    const json = { note: null, n: 1, m: 9 };
    expect(new ResponseChecker().violations(operation!, { status: 200, contentType: 'application/json', text: JSON.stringify(json), json })).toEqual([]);
  });

  it("reads a query parameter's style and an array's explode as OpenAPI's default says, path-level parameters, and which operations need credentials", () => {
    const spec = join(folder, 'parameters-security.yaml');
    const array = { type: 'array', items: { type: 'string' } };
    const ok = { '200': { description: 'ok' } };
    writeFileSync(spec, stringify({
      openapi: '3.1.0',
      info: { title: 'parameters', version: '1' },
      components: { securitySchemes: { key: { type: 'apiKey', in: 'header', name: 'X-API-KEY' } } },
      security: [{ key: [] }],
      paths: {
        '/notes/{noteId}': {
          parameters: [{ name: 'noteId', in: 'path', required: true, schema: { type: 'string' } }],
          get: {
            operationId: 'getNote',
            parameters: [
              { name: 'a', in: 'query', schema: array },
              { name: 'b', in: 'query', style: 'form', schema: array },
              { name: 'c', in: 'query', style: 'spaceDelimited', schema: array },
              { name: 'd', in: 'query', explode: false, schema: array },
              { name: 'e', in: 'query', style: 'pipeDelimited', schema: array },
              { name: 'f', in: 'query', style: 'deepObject', schema: { type: 'object' } },
            ],
            responses: ok,
          },
          put: { operationId: 'putNote', security: [{}, { key: [] }], responses: ok },
          delete: { operationId: 'deleteNote', security: [], responses: ok },
        },
      },
    }));
    const operations = new Map(loadSpec(spec).operations.map((o) => [o.operationId, o]));
    expect(operations.get('getNote')!.parameters.map((p) => `${p.in} ${p.name} ${p.explode}`)).toEqual(['path noteId true', 'query a true', 'query b true', 'query c false', 'query d false', 'query e false', 'query f false']);
    expect(operations.get('getNote')!.parameters.map((p) => p.style)).toEqual(['form', 'form', 'form', 'spaceDelimited', 'form', 'pipeDelimited', 'deepObject']);
    expect(operations.get('putNote')!.parameters.map((p) => p.name)).toEqual(['noteId']);
    expect([...operations.values()].map((o) => `${o.operationId} ${o.secured}`)).toEqual(['getNote true', 'putNote false', 'deleteNote false']);
  });

  it("keeps a response's JSON schemas only, leaves a documented Content-Type header to the media types, and refuses a document that is not 3.x", () => {
    const spec = join(folder, 'response-model.yaml');
    const document = {
      openapi: '3.1.0',
      info: { title: 'responses', version: '1' },
      paths: {
        '/notes': {
          get: {
            operationId: 'listNotes',
            responses: {
              '200': {
                description: 'ok',
                headers: { 'Content-Type': { required: true, schema: { type: 'string' } }, 'X-Count': { required: true, schema: { type: 'integer' } } },
                content: { 'text/plain': { schema: { type: 'string' } }, 'application/problem+json; charset=utf-8': { schema: { type: 'object' } } },
              },
            },
          },
        },
      },
    };
    writeFileSync(spec, stringify(document));
    const response = loadSpec(spec).operations[0]!.responses['200']!;
    expect(Object.keys(response.schemas)).toEqual(['application/problem+json']);
    expect(Object.keys(response.headers)).toEqual(['x-count']);
    const older = join(folder, 'swagger-2.yaml');
    writeFileSync(older, stringify({ ...document, openapi: '2.0' }));
    expect(() => loadSpec(older)).toThrow(`${older} is not an OpenAPI 3.x document (no "openapi: 3.x" field)`);
  });

  it('merges YAML merge keys (<<: *anchor) instead of reading "<<" as a response code', () => {
    const [operation] = loadSpec(fileURLToPath(new URL('./fixtures/merge-keys.yaml', import.meta.url))).operations;
    expect(Object.keys(operation!.responses).sort()).toEqual(['200', '404', '500']);
  });

  it('refuses a document that is not YAML in one line, saying where (the parser adds an excerpt on more lines)', async () => {
    const broken = join(folder, 'broken.yaml');
    writeFileSync(broken, 'openapi: 3.0.0\ninfo: [\n  bad: x\n');
    const refusal = await runConformance({ baseUrl: 'http://127.0.0.1:1', specPath: broken, seed: 1 }).then(
      () => undefined,
      (error: Error) => error,
    );
    expect(refusal).toBeInstanceOf(UsageError);
    expect(refusal?.message).toMatch(/^cannot read the spec: .* at line 4, column 1$/);
  });
});

describe('valid requests to parameters a random id does not fit', { timeout: 60_000 }, () => {
  it('send path values of the parameter\'s own schema, the required headers and cookies, and a query object as its style says: a correct server passes them', async () => {
    const spec = join(folder, 'greet.yaml');
    writeFileSync(
      spec,
      `openapi: 3.1.0
info: { title: greet, version: "1" }
paths:
  /greet/{name}:
    get:
      operationId: greet
      parameters: [{ name: name, in: path, required: true, schema: { type: string, pattern: '^[a-z]{1,10}$' } }]
      responses:
        '200': { description: hello, content: { application/json: { schema: { type: object, required: [greeting], properties: { greeting: { type: string } } } } } }
        '400': { description: bad, content: { application/json: { schema: { type: object } } } }
        '404': { description: none, content: { application/json: { schema: { type: object } } } }
  /items:
    get:
      operationId: listItems
      parameters: [{ name: X-Tenant, in: header, required: true, schema: { type: string, pattern: '^[a-z]{3,8}$' } }]
      responses:
        '200': { description: items, content: { application/json: { schema: { type: array } } } }
        '400': { description: bad, content: { application/json: { schema: { type: object } } } }
        '404': { description: none, content: { application/json: { schema: { type: object } } } }
  /tasks:
    get:
      operationId: listTasks
      parameters:
        - { name: filter, in: query, required: true, schema: { type: object, additionalProperties: false, required: [status], properties: { status: { type: string, enum: [open, closed] } } } }
        - { name: session, in: cookie, required: true, schema: { type: string, pattern: '^[a-z]{4}$' } }
      responses:
        '200': { description: tasks, content: { application/json: { schema: { type: array } } } }
        '400': { description: bad, content: { application/json: { schema: { type: object } } } }
`,
    );
    const server = Fastify();
    // An object in the query, form style, exploded: ?status=open; the cookie a Cookie header's pair.
    server.get<{ Querystring: Record<string, string> }>('/tasks', async (request, reply) => {
      const cookie = /(?:^|; )session=([a-z]{4})(?:;|$)/.test(String(request.headers.cookie ?? ''));
      const query = Object.keys(request.query).join() === 'status' && ['open', 'closed'].includes(request.query.status!);
      return cookie && query ? [] : reply.code(400).send({ message: cookie ? 'querystring/status' : 'cookie/session' });
    });
    server.get<{ Params: { name: string } }>('/greet/:name', async (request, reply) =>
      /^[a-z]{1,10}$/.test(request.params.name) ? { greeting: `hello ${request.params.name}` } : reply.code(400).send({ message: 'params/name' }),
    );
    server.get('/items', async (request, reply) => (/^[a-z]{3,8}$/.test(String(request.headers['x-tenant'] ?? '')) ? [] : reply.code(400).send({ message: 'headers/x-tenant' })));
    server.setNotFoundHandler((_request, reply) => reply.code(404).send({ message: 'none' }));
    const url = await server.listen({ host: '127.0.0.1', port: 0 });
    servers.push({ close: () => server.close() });
    const report = await runConformance({ baseUrl: url, specPath: spec, seed: 3, validCases: 6, workers: 2 });
    const valid = report.cases.filter((c) => c.kind === 'valid');
    expect(valid.filter((c) => !c.passed).map((c) => `${c.key}: ${c.violations.map((v) => v.message).join('; ')}`)).toEqual([]);
    expect(valid.filter((c) => c.operationId === 'listItems')).toHaveLength(6);
    expect(valid.filter((c) => c.operationId === 'listTasks')).toHaveLength(6);
  });
});

describe('one exchange (node:http, sending what fetch sent)', () => {
  /** A bare server answering each request with `answer`; the requests it saw. */
  async function bare(answer: (request: IncomingMessage, body: string, response: ServerResponse) => void) {
    const seen: Array<{ headers: IncomingMessage['headers']; body: string }> = [];
    const server = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk) => (body += chunk));
      request.on('end', () => {
        seen.push({ headers: request.headers, body });
        answer(request, body, response);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const close = () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
    return { baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, close };
  }

  it('sends accept, the length, a string body without a type as text/plain, and the connection headers in place of the case\'s', async () => {
    const target = await bare((_request, _body, response) => {
      response.setHeader('set-cookie', ['a=1', 'b=2']);
      response.writeHead(200, { 'content-type': 'application/json' }).end('\uFEFF{"ok":true}');
    });
    try {
      const answer = await send({ baseUrl: target.baseUrl, headers: { 'X-Api-Key': 'k' }, timeoutMs: 2000 }, { method: 'POST', url: '/x', headers: { 'x-api-key': 'other' }, body: 'é' });
      expect(target.seen[0]).toMatchObject({ headers: { accept: '*/*', 'content-type': 'text/plain;charset=UTF-8', 'content-length': '2', 'x-api-key': 'k' }, body: 'é' });
      // Read as fetch reads it: the BOM dropped, repeated headers joined.
      expect(answer).toMatchObject({ status: 200, contentType: 'application/json', json: { ok: true }, headers: { 'set-cookie': 'a=1, b=2' } });
    } finally {
      await target.close();
    }
  });

  it('gives up on an answer whose body stalls, or breaks off, with an error, not a hang', async () => {
    const target = await bare((request, _body, response) => {
      response.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
      response.write('{"partial":');
      if (request.url === '/broken') response.socket?.destroy();
    });
    try {
      const connection = { baseUrl: target.baseUrl, headers: {}, timeoutMs: 300 };
      expect(await send(connection, { method: 'GET', url: '/stalled', headers: {} })).toMatchObject({ status: 0, error: 'no answer within 300 ms' });
      expect(await send(connection, { method: 'GET', url: '/broken', headers: {} })).toMatchObject({ status: 0, error: 'no answer: ECONNRESET' });
      expect(await send({ ...connection, baseUrl: 'http://127.0.0.1:9' }, { method: 'GET', url: '/', headers: {} })).toMatchObject({ status: 0, error: 'no answer: ECONNREFUSED' });
    } finally {
      await target.close();
    }
  });
});
