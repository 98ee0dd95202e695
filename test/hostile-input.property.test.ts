// Every query, path and body parameter of every operation in the spec, fed hostile values
// one at a time (the others valid): never a 5xx, and every answer as the spec documents
// it (test-app checks each one: a 4xx in the envelope).
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { USER_ID, createSession, registerAgent } from './helpers/fixtures.js';
import { specBackend } from './helpers/spec-validator.js';
import { startTestApp, type TestApp, type TestRequest } from './helpers/test-app.js';

type Schema = Record<string, any>;
interface Target {
  operationId: string;
  method: string;
  path: string;
  where: 'path' | 'query' | 'body';
  name: string;
}

const RUNS_PER_TARGET = 40;

/** Strings that numbers, dates, ids and text parsers stumble on. */
const hostileText = fc.oneof(
  fc.constantFrom(
    'Infinity', '-Infinity', 'NaN', '1e309', '-1e309', '1e2', '0x10', '-0', ' 5', '5 ', '00', '-1', '99999999999999999999',
    '9007199254740993', '1.5', '', 'null', 'true', '[]', '{}', '__proto__', 'constructor',
    '2016-12-31T23:59:60Z', '2020-01-01T00:00:00+01', '2020-01-01T00:00:00+0100', '2020-01-01T00:00:00.123456789Z',
    '0000-01-01T00:00:00Z', '9999-12-31T23:59:59.999-23:59', '2020-02-30T00:00:00Z', '2020-01-01T24:00:00Z', '999999999999999.999',
    '\u0000', '\ud800', '😀', '%', '../..', 'a'.repeat(5000),
  ),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.double().map(String),
  fc.integer().map(String),
  fc.date({ noInvalidDate: true }).map((date) => date.toISOString()),
);

/** JSON tokens for a body property: the hostile strings as strings, and raw numbers and structures. */
const hostileJson = fc.oneof(
  hostileText.map((text) => JSON.stringify(text)),
  fc.constantFrom('1e309', '-1e309', '1e-400', '-0', '9007199254740993', '1.0', 'null', 'true', '[]', '{}', '{"__proto__":{"x":1}}', '"\\ud800"'),
  fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.stringify(value)),
);

let t: TestApp;
const ids: Record<string, string> = {};
let targets: Target[] = [];

beforeAll(async () => {
  t = await startTestApp();
  ids.agentId = await registerAgent(t);
  ids.sessionId = (await createSession(t, { agentId: ids.agentId })).sessionId;
  ids.userId = USER_ID;
  const api = await specBackend();
  for (const [path, item] of Object.entries<Schema>(api.definition.paths as Schema)) {
    for (const [method, operation] of Object.entries<Schema>(item)) {
      if (!operation?.operationId) continue;
      // A stream that accepts a value never ends; test/event-stream.test.ts covers their input.
      if (operation.responses?.['200']?.content?.['text/event-stream']) continue;
      const parameters: Schema[] = [...(item.parameters ?? []), ...(operation.parameters ?? [])];
      const target = (where: Target['where'], name: string) => ({ operationId: operation.operationId, method: method.toUpperCase(), path, where, name });
      // Headers: test/ops-routes.test.ts (X-Request-Id) and test/idempotency.test.ts (Idempotency-Key).
      for (const parameter of parameters) if (parameter.in !== 'header') targets.push(target(parameter.in, parameter.name));
      const body: Schema | undefined = operation.requestBody?.content?.['application/json']?.schema;
      for (const name of Object.keys(body?.properties ?? {})) targets.push(target('body', name));
    }
  }
}, 60_000); // a cold start of the app and the spec validator: seconds on a loaded CPU
afterAll(() => t.close());

/** A valid request for the operation, with `value` put in place of the target parameter. */
function requestWith(target: Target, value: string): TestRequest {
  const inPath = (name: string) => (target.where === 'path' && target.name === name ? encodeURIComponent(value) : ids[name]!);
  const url = target.path.replace(/\{(\w+)\}/g, (_, name: string) => inPath(name));
  const query = target.where === 'query' ? `?${encodeURIComponent(target.name)}=${encodeURIComponent(value)}` : '';
  const validBody: Record<string, string> = {
    createSession: `{"agentId":"${ids.agentId}","userId":"${USER_ID}"}`,
    sendSessionMessage: '{"content":"hello"}',
    createAgent: '{"characterJson":{"name":"Eliza"}}',
  };
  let body = target.method === 'GET' || target.method === 'DELETE' ? undefined : (validBody[target.operationId] ?? '{}');
  if (target.where === 'body') {
    const rest = body && body !== '{}' ? JSON.parse(body) : {};
    delete rest[target.name];
    const others = Object.entries(rest).map(([key, item]) => `${JSON.stringify(key)}:${JSON.stringify(item)}`);
    body = `{${[...others, `${JSON.stringify(target.name)}:${value}`].join(',')}}`;
  }
  return {
    method: target.method as TestRequest['method'],
    url: `${url}${query}`,
    body,
    headers: body === undefined ? {} : { 'content-type': 'application/json' } as Record<string, string>,
    // A path value over the router's length limit is answered (404) before any route.
    answeredByRouter: target.where === 'path' && encodeURIComponent(value).length > 500,
  };
}

describe('hostile values in every parameter of every operation', () => {
  it('finds parameters to test in the spec', () => {
    expect(targets.length).toBeGreaterThan(20);
    expect(targets.map((target) => `${target.operationId}.${target.name}`)).toEqual(
      expect.arrayContaining(['listSessions.limit', 'listSessions.offset', 'getSessionMessages.before', 'getSessionMessages.after', 'createSession.timeoutConfig']),
    );
  });

  it('never answers 5xx; every answer is one the spec documents', { timeout: 180_000 }, async () => {
    for (const target of targets) {
      // An empty or dot segment in a path names another route (or none): not this parameter's value.
      const values = target.where === 'body' ? hostileJson : hostileText.filter((value) => target.where !== 'path' || !['', '.', '..'].includes(value));
      await fc.assert(
        fc.asyncProperty(values, async (value) => {
          const response = await t.request(requestWith(target, value));
          expect(response.status, `${target.operationId} ${target.where}/${target.name} = ${value.slice(0, 80)}`).toBeLessThan(500);
          if (response.status >= 400) expect(response.body.success).toBe(false);
        }),
        { numRuns: RUNS_PER_TARGET, seed: 42 },
      );
    }
  });
});
