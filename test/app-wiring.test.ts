// The spec and the handlers match one to one, and startup refuses a spec operation
// that has no handler.
import Fastify from 'fastify';
import openapiGlue from 'fastify-openapi-glue';
import { describe, expect, it } from 'vitest';
import { resolveOperation } from '../src/app.js';
import { createEventStreams } from '../src/events/event-stream.js';
import { createHandlers } from '../src/http/handlers/index.js';
import type { ServiceHandlers } from '../src/http/operation-types.js';
import { specOperations, specPath } from '../src/spec.js';
import { openSqliteStore } from '../src/storage/sqlite/sqlite-store.js';
import { createSweeper } from '../src/sweeper.js';
import { fakeClock } from './helpers/fake-clock.js';

const store = openSqliteStore(':memory:');
const clock = fakeClock();
const sweeper = createSweeper({ store, clock, retentionMs: 0, intervalMs: 1000, batchSize: 1 });
const handlers = createHandlers({ store, clock, sessionDefaults: {}, retentionMs: 0, sweeper, streams: createEventStreams() });

describe('operations and handlers', () => {
  it('has exactly one handler per operationId of the spec', () => {
    const operationIds = specOperations().map((operation) => operation.operationId);
    expect(new Set(operationIds).size).toBe(operationIds.length);
    expect(Object.keys(handlers).sort()).toEqual([...operationIds].sort());
  });

  it('fails startup when an operation has no handler', async () => {
    const { getAgent: _removed, ...incomplete } = handlers;
    const app = Fastify();
    app.register(openapiGlue, { specification: specPath, operationResolver: resolveOperation(incomplete as ServiceHandlers) });
    await expect(app.ready()).rejects.toThrow("No handler for operationId 'getAgent' (GET /api/agents/{agentId})");
  });
});
