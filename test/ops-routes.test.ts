// The operational routes: the spec served as the server reads it, and request ids.
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { specPath } from '../src/spec.js';
import { type TestApp, startTestApp } from './helpers/test-app.js';
import { logLines } from './helpers/log-lines.js';

let t: TestApp | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('the spec, served', () => {
  it('GET /openapi.yaml is byte for byte the file the server validates with', async () => {
    t = await startTestApp();
    const response = await t.requestText('/openapi.yaml');
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toMatch(/^application\/yaml/);
    expect(Buffer.from(response.text)).toEqual(readFileSync(specPath));
  });

  it('GET /openapi.json is the same document, parsed', async () => {
    t = await startTestApp();
    const response = await t.requestText('/openapi.json');
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    expect(JSON.parse(response.text)).toEqual(parse(readFileSync(specPath, 'utf8')));
  });
});

describe('the docs', () => {
  it('GET /docs sends the browser to /docs/ for good (301)', async () => {
    t = await startTestApp();
    // Not a route of the spec: asked over HTTP, not through the spec-checked helpers.
    const response = await fetch(`${await t.listen()}/docs`, { redirect: 'manual' });
    expect(response.status).toBe(301);
    expect(response.headers.get('location')).toBe('/docs/');
  });
});

describe('request ids', () => {
  it('echoes a given X-Request-Id and generates a UUID otherwise, on API and operational routes alike', async () => {
    t = await startTestApp();
    const given = await t.request({ method: 'GET', url: '/api/agents', headers: { 'x-request-id': 'trace-42' } });
    expect(given.headers['x-request-id']).toBe('trace-42');
    const generated = await t.request({ method: 'GET', url: '/api/agents' });
    expect(generated.headers['x-request-id']).toMatch(UUID);
    const notFound = await t.request({ method: 'GET', url: '/nowhere', headers: { 'x-request-id': 'r-404' } });
    expect(notFound.headers['x-request-id']).toBe('r-404');
    expect((await t.requestText('/openapi.json', { 'x-request-id': 'r-ops' })).headers['x-request-id']).toBe('r-ops');
    const badUrl = await t.request({ method: 'GET', url: '/api/agents/%E0%A4%A', headers: { 'x-request-id': 'r-url' }, answeredByRouter: true });
    expect(badUrl.status).toBe(400);
    expect(badUrl.headers['x-request-id']).toBe('r-url');
  });

  it('is in the spec: every operation accepts X-Request-Id and every response declares it', () => {
    const spec = parse(readFileSync(specPath, 'utf8'));
    const resolve = (node: any) => (node.$ref ? spec.components.responses[node.$ref.split('/').at(-1)] : node);
    const missing: string[] = [];
    for (const [path, item] of Object.entries<any>(spec.paths)) {
      for (const [method, operation] of Object.entries<any>(item)) {
        if (!operation.operationId) continue;
        const accepts = (operation.parameters ?? []).some((p: any) => p.$ref === '#/components/parameters/RequestId');
        if (!accepts) missing.push(`${operation.operationId} parameter`);
        for (const [status, response] of Object.entries<any>(operation.responses)) {
          if (resolve(response).headers?.['X-Request-Id']?.$ref !== '#/components/headers/RequestId') missing.push(`${method} ${path} ${status}`);
        }
      }
    }
    expect(missing).toEqual([]);
  });

  it('replaces an X-Request-Id that is too long or not visible ASCII', async () => {
    t = await startTestApp();
    for (const bad of ['x'.repeat(201), 'two words', 'caf\u00e9']) {
      const response = await t.request({ method: 'GET', url: '/api/agents', headers: { 'x-request-id': bad } });
      expect(response.headers['x-request-id']).toMatch(UUID);
    }
  });

  it('puts the request id on every log line of the request, as JSON', async () => {
    const { lines, stream } = logLines();
    t = await startTestApp({ app: { logger: { level: 'info', stream } } });
    await t.request({ method: 'POST', url: '/api/agents', body: { characterJson: { name: 'Logged' } }, headers: { 'x-request-id': 'log-1' } });
    await t.request({ method: 'GET', url: '/api/agents/not-a-uuid', headers: { 'x-request-id': 'log-2' } });
    // Fastify's "incoming request" and "request completed" for each: every line has the id.
    expect(lines.map((line) => line.reqId)).toEqual(['log-1', 'log-1', 'log-2', 'log-2']);
    expect(lines.every((line) => typeof line.time === 'number' && typeof line.msg === 'string')).toBe(true);
  });
});
