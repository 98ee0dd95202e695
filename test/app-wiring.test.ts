// The spec and the handlers match one to one, and startup refuses a spec operation
// that has no handler (or, for an x-operational one, no operational route). The server
// reads the spec from its JSON copy only when that copy is up to date.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import openapiGlue from 'fastify-openapi-glue';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { parse } from 'yaml';
import { buildApp } from '../src/app.js';
import { opsPlugin } from '../src/ops/ops-plugin.js';
import { resolveOperation } from '../src/http/api-plugin.js';
import { compileEverySerializer } from '../src/http/serializers.js';
import { compileEveryValidator } from '../src/http/validation.js';
import { compileRouteSchemasInTurns, routeSchemasWaiting } from '../src/http/route-schemas.js';
import { createEventFeed } from '../src/events/event-feed.js';
import { createEventStreams } from '../src/events/event-stream.js';
import { DEFAULTS } from '../src/defaults.js';
import { createAgentReplies } from '../src/events/agent-replies.js';
import { createHandlers } from '../src/http/handlers/index.js';
import type { ServiceHandlers } from '../src/http/operation-types.js';
import { apiSpecification, metaSchemaErrors, operationsOf, readSpecDocument, sha256Hex, specDocument, specJsonCopyPath, specOperations, specPath } from '../src/spec.js';
import { openSqliteStore } from '../src/storage/sqlite/sqlite-store.js';
import { createSweeper } from '../src/sweeper.js';
import { fakeClock } from './helpers/fake-clock.js';
import { startTestApp } from './helpers/test-app.js';

const store = openSqliteStore(':memory:');
const clock = fakeClock();
const sweeper = createSweeper({ store, clock, retentionMs: 0, intervalMs: 1000, batchSize: 1 });
const handlers = createHandlers({ agentReplyTimeoutMs: DEFAULTS.agentReplyTimeoutMs, webhookPrivateAddresses: DEFAULTS.webhookPrivateAddresses, webhooksPerKeyMax: DEFAULTS.webhooksPerKeyMax, store, clock, sessionDefaults: {}, retentionMs: 0, sweeper, streams: createEventStreams({ feed: createEventFeed(store) }), replies: createAgentReplies(createEventFeed(store)) });

describe('operations and handlers', () => {
  it('has exactly one handler per operationId of the spec, the operational ones aside', () => {
    const operationIds = specOperations().map((operation) => operation.operationId);
    expect(new Set(operationIds).size).toBe(operationIds.length);
    const api = specOperations().filter((operation) => !operation.operational);
    expect(Object.keys(handlers).sort()).toEqual(api.map((operation) => operation.operationId).sort());
  });

  it('serves every x-operational operation from the operational routes, and only those', async () => {
    const operational = specOperations().filter((operation) => operation.operational);
    const app = buildApp({ store: openSqliteStore(':memory:'), clock, sessionDefaults: {}, retentionMs: 0, sweeper });
    await app.ready();
    for (const { method, path } of operational) expect(app.hasRoute({ method, url: path }), `${method} ${path}`).toBe(true);
    await app.close();
  });

  it('fails startup when an operational operation has no route', async () => {
    const app = Fastify();
    const spec = await import('../src/spec.js');
    const operations = spec.specOperations();
    vi.spyOn(spec, 'specOperations').mockReturnValue([...operations, { operationId: 'getStatusPage', method: 'GET', path: '/status', bodyRequired: false, operational: true, statuses: ['200'], streams: false, parameters: [], adminOnly: false }]);
    try {
      app.register(opsPlugin, { store, clock, retentionMs: 0 });
      await expect(app.ready()).rejects.toThrow("No operational route for operationId 'getStatusPage' (GET /status)");
    } finally {
      // Restored whatever happened: the other test files of this worker share the module.
      vi.restoreAllMocks();
    }
  });

  it('fails startup when an operation has no handler', async () => {
    const { getAgent: _removed, ...incomplete } = handlers;
    const app = Fastify();
    app.register(openapiGlue, { specification: apiSpecification(), operationResolver: resolveOperation(incomplete as ServiceHandlers) });
    await expect(app.ready()).rejects.toThrow("No handler for operationId 'getAgent' (GET /api/agents/{agentId}): npm run generate writes a stub for it (then npm run build, for npm start)");
  });
});

describe('validators and serializers (compiled on first use, or one a turn once the server listens; not at start)', () => {
  it('are all compiled by compileRouteSchemasInTurns, requests answered meanwhile', async () => {
    const app = buildApp({ store: openSqliteStore(':memory:'), clock, sessionDefaults: {}, retentionMs: 0, sweeper });
    await app.ready();
    const compiling = compileRouteSchemasInTurns();
    expect((await app.inject({ method: 'GET', url: '/api/messaging/sessions/health' })).statusCode).toBe(200);
    await compiling;
    // (The test files of a worker share these caches: other apps may have compiled some.)
    expect(routeSchemasWaiting()).toBe(0);
    await app.close();
  });

  it('compile for every schema the spec gives a route', async () => {
    const app = buildApp({ store: openSqliteStore(':memory:'), clock, sessionDefaults: {}, retentionMs: 0, sweeper });
    await app.ready();
    // Throws on a schema its compiler refuses; counts schemas by text (routes share some).
    expect(compileEveryValidator()).toBeGreaterThan(0);
    expect(compileEverySerializer()).toBeGreaterThan(0);
    await app.close();
  });
});

describe('the check against the OpenAPI meta-schema (npm run generate and --check; not at every start)', () => {
  it('passes the spec and refuses a document that breaks the meta-schema, or has a $ref to nothing', async () => {
    expect(await metaSchemaErrors(specDocument())).toEqual([]);
    const broken = structuredClone(specDocument()) as { paths: Record<string, any> };
    broken.paths['/api/agents']!.get.responses = 'none';
    expect((await metaSchemaErrors(broken)).join()).toMatch(/responses/);
    const dangling = structuredClone(specDocument()) as { paths: Record<string, any> };
    dangling.paths['/api/agents']!.get.responses['200'] = { $ref: '#/components/responses/Nothing' };
    expect((await metaSchemaErrors(dangling)).join()).toMatch(/Nothing/);
  });

  it('is passed when the server starts (it checked the spec when its JSON copy was generated), and put back after', async () => {
    const { Validator } = await import('@seriousme/openapi-schema-validator');
    const prototype = Validator.prototype as unknown as { getAjvValidator: (...args: unknown[]) => unknown };
    const own = prototype.getAjvValidator;
    let compiled = 0;
    const counting = function (this: unknown, ...args: unknown[]) {
      compiled += 1;
      return own.apply(this, args);
    };
    prototype.getAjvValidator = counting;
    try {
      const t = await startTestApp();
      await t.close();
      expect(compiled).toBe(0);
      expect(prototype.getAjvValidator).toBe(counting);
    } finally {
      prototype.getAjvValidator = own;
    }
  });
});

describe('operationsOf', () => {
  it('gives each operation its path-level and own parameters (its own win, by name and place), $refs resolved (through $refs), with its security and x-admin-only', () => {
    const document = {
      components: {
        schemas: { Limit: { $ref: '#/components/schemas/PageSize' }, PageSize: { type: 'integer', default: 50 } },
        parameters: { Key: { name: 'Idempotency-Key', in: 'header', schema: { type: 'string' } }, Limit: { name: 'limit', in: 'query', schema: { $ref: '#/components/schemas/Limit' } } },
        responses: { Events: { $ref: '#/components/responses/Stream' }, Stream: { description: 'a stream', content: { 'text/event-stream': {} } } },
      },
      paths: {
        '/things': {
          summary: 'not an operation',
          parameters: [{ $ref: '#/components/parameters/Key' }, { name: 'page', in: 'query', schema: { type: 'integer', default: 1 } }, { name: 'page', in: 'header', schema: { type: 'string' } }],
          post: { operationId: 'createThing', security: [], 'x-admin-only': true, responses: { '200': { $ref: '#/components/responses/Events' } } },
          get: { operationId: 'listThings', parameters: [{ $ref: '#/components/parameters/Limit' }, { name: 'page', in: 'query', schema: { type: 'integer' } }] },
        },
      },
    };
    const [create, list] = operationsOf(document);
    expect(create).toMatchObject({ operationId: 'createThing', security: [], adminOnly: true, streams: true });
    expect(create!.parameters).toEqual([
      { name: 'Idempotency-Key', in: 'header', schema: { type: 'string' } },
      { name: 'page', in: 'query', schema: { type: 'integer', default: 1 } },
      { name: 'page', in: 'header', schema: { type: 'string' } },
    ]);
    expect(list).toMatchObject({ operationId: 'listThings', adminOnly: false, streams: false });
    expect(list).not.toHaveProperty('security');
    expect(list!.parameters).toEqual([
      { name: 'Idempotency-Key', in: 'header', schema: { type: 'string' } },
      { name: 'page', in: 'query', schema: { type: 'integer' } },
      { name: 'page', in: 'header', schema: { type: 'string' } },
      { name: 'limit', in: 'query', schema: { type: 'integer', default: 50 } },
    ]);
  });
});

describe('the spec as the server reads it', () => {
  const folder = mkdtempSync(join(tmpdir(), 'sessions-api-spec-copy-'));
  afterAll(() => rmSync(folder, { recursive: true, force: true }));
  const yamlPath = join(folder, 'spec.yaml');
  const copyPath = join(folder, 'spec.json');
  const yaml = 'openapi: 3.1.0\ninfo: { title: from the YAML, version: "1" }\npaths: {}\n';
  writeFileSync(yamlPath, yaml);
  const copy = (sourceSha256: string) => JSON.stringify({ sourceSha256, document: { openapi: '3.1.0', info: { title: 'from the copy', version: '1' }, paths: {} } });
  const titleRead = () => (readSpecDocument(yamlPath, copyPath) as { info: { title: string } }).info.title;

  it('is the JSON copy when it was made from these exact YAML bytes, else the YAML', () => {
    writeFileSync(copyPath, copy(sha256Hex(yaml)));
    expect(titleRead()).toBe('from the copy');
    writeFileSync(copyPath, copy(sha256Hex(`${yaml}# edited since\n`)));
    expect(titleRead()).toBe('from the YAML');
    writeFileSync(copyPath, '{ not json');
    expect(titleRead()).toBe('from the YAML');
    rmSync(copyPath);
    expect(titleRead()).toBe('from the YAML');
  });

  it('is the same document either way for the committed spec', () => {
    expect(specDocument()).toEqual(parse(readFileSync(specPath, 'utf8')));
    expect(JSON.parse(readFileSync(specJsonCopyPath, 'utf8')).sourceSha256).toBe(sha256Hex(readFileSync(specPath, 'utf8')));
  });
});
