// The conformance suite on specs other than ours, against small servers that conform to
// them: number bounds far from zero, `multipleOf`, the common string formats and
// `minProperties` generate valid values (a bound beyond ±1,000,000 crashed the run; an
// ipv4 field got plain strings, which a validating server rightly refused), and the "still
// healthy" call picks a GET needing no parameter.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { stringify } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { addFormats } from '../src/json-formats.js';
import { runConformance } from '../src/conformance/run.js';

const folder = mkdtempSync(join(tmpdir(), 'sessions-api-conformance-generic-'));
const closers: Array<() => void> = [];
afterAll(() => {
  for (const close of closers) close();
  rmSync(folder, { recursive: true, force: true });
});

function specFile(name: string, paths: object): string {
  const file = join(folder, name);
  writeFileSync(file, stringify({ openapi: '3.1.0', info: { title: name, version: '1' }, paths }));
  return file;
}

async function serve(handler: (request: IncomingMessage, response: ServerResponse, body: string) => void): Promise<string> {
  const server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => handler(request, response, body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => server.close());
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const json = (response: ServerResponse, status: number, body: unknown) => response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
const errorSchema = { type: 'object', required: ['message'], properties: { message: { type: 'string' } } };
const failuresOf = (report: Awaited<ReturnType<typeof runConformance>>) =>
  report.cases.filter((c) => !c.passed).map((c) => `${c.operationId} ${c.title}: ${c.violations.map((v) => v.message).join('; ')} | ${c.body}`);

/** POST /things taking `{ v }` (required) and answering 201 with it; the server validates the body with Ajv, as a conforming one does. */
async function validatingServer(name: string, property: object) {
  const bodySchema = { type: 'object', required: ['v'], additionalProperties: false, properties: { v: property } };
  const spec = specFile(name, {
    '/things': {
      post: {
        operationId: 'createThing',
        requestBody: { required: true, content: { 'application/json': { schema: bodySchema } } },
        responses: {
          '201': { description: 'made', content: { 'application/json': { schema: bodySchema } } },
          '400': { description: 'bad', content: { 'application/json': { schema: errorSchema } } },
          '415': { description: 'not JSON', content: { 'application/json': { schema: errorSchema } } },
        },
      },
    },
  });
  const validate = addFormats(new Ajv2020({ strict: false })).compile(bodySchema);
  const url = await serve((request, response, body) => {
    if (new URL(request.url!, 'http://x').pathname !== '/things' || request.method !== 'POST') return json(response, 404, { message: 'no' });
    if (!/^application\/json/.test(request.headers['content-type'] ?? '')) return json(response, 415, { message: 'not JSON' });
    let value: unknown;
    try {
      value = JSON.parse(body);
    } catch {
      return json(response, 400, { message: 'malformed JSON' });
    }
    // Naming the field, as the suite wants a 400 to.
    const [error] = validate(value) ? [] : validate.errors!;
    if (error) return json(response, 400, { message: `body${error.instancePath} ${error.message} ${JSON.stringify(error.params)}` });
    return json(response, 201, value);
  });
  return { spec, url };
}

describe('valid values for a conforming server', () => {
  it.each([
    ['an integer at least 1,000,000,000 (a Unix time)', { type: 'integer', minimum: 1_000_000_000 }],
    ['a number at most -5,000,000', { type: 'number', maximum: -5_000_000 }],
    ['an integer, a multiple of 5', { type: 'integer', multipleOf: 5 }],
    ['a number, a multiple of 0.5 between 10 and 20', { type: 'number', multipleOf: 0.5, minimum: 10, maximum: 20 }],
    ['a number, a multiple of 0.1 (not a power of two)', { type: 'number', multipleOf: 0.1, minimum: 0, maximum: 1 }],
    ['a number above 0, a multiple of 0.5', { type: 'number', multipleOf: 0.5, exclusiveMinimum: 0, maximum: 3 }],
    ['an IPv4 address', { type: 'string', format: 'ipv4' }],
    ['an IPv6 address', { type: 'string', format: 'ipv6' }],
    ['a host name', { type: 'string', format: 'hostname' }],
    ['a time', { type: 'string', format: 'time' }],
    ['a free-form object of at least 2 properties', { type: 'object', minProperties: 2 }],
    // oneOf: valid when exactly one branch matches; every integer is a number too.
    ['a number or an integer, one of the two', { oneOf: [{ type: 'number' }, { type: 'integer' }] }],
    [
      'an object of one of two shapes, the second also of the first',
      { oneOf: [{ type: 'object', properties: { a: { type: 'string' } } }, { type: 'object', required: ['b'], properties: { b: { type: 'integer' } } }] },
    ],
  ])('%s', async (name, property) => {
    const { spec, url } = await validatingServer(`${name.replace(/\W+/g, '-')}.yaml`, property);
    for (const seed of [1, 2, 3]) expect(failuresOf(await runConformance({ baseUrl: url, specPath: spec, seed, validCases: 10 })), `seed ${seed}`).toEqual([]);
  });
});

describe('the still-healthy call', () => {
  it('is not made to a GET that needs a parameter (its 400 to an empty call is right)', async () => {
    const spec = specFile('search.yaml', {
      '/search': {
        get: {
          operationId: 'search',
          parameters: [{ name: 'q', in: 'query', required: true, schema: { type: 'string', minLength: 1, maxLength: 20 } }],
          responses: {
            '200': { description: 'found', content: { 'application/json': { schema: { type: 'object', required: ['q'], properties: { q: { type: 'string' } } } } } },
            '400': { description: 'bad', content: { 'application/json': { schema: errorSchema } } },
          },
        },
      },
    });
    const url = await serve((request, response) => {
      const query = new URL(request.url!, 'http://x').searchParams.getAll('q');
      if (query.length !== 1 || query[0]!.length < 1 || query[0]!.length > 20) return json(response, 400, { message: 'q must be 1 to 20 characters' });
      return json(response, 200, { q: query[0] });
    });
    const report = await runConformance({ baseUrl: url, specPath: spec, seed: 1, validCases: 3 });
    expect(failuresOf(report)).toEqual([]);
    expect(report.cases.some((c) => c.key === 'health')).toBe(false);
  });
});
