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
    for (const code of ['099', '000', '999']) {
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
