// The conformance suite against our own server (it must pass) and against faulty
// variants of it (it must fail, naming the fault). The faults are injected on the wire,
// so the suite sees only HTTP, as it would with any other implementation.
import { readdirSync, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { ResponseChecker } from '../src/conformance/check.js';
import { expectationViolations, isServerError, namesField, succeeds } from '../src/conformance/judge.js';
import type { Operation } from '../src/conformance/spec-model.js';
import { framesRead } from '../src/conformance/stream-step.js';
import { runConformance, type Report } from '../src/conformance/run.js';
import { formatReport } from '../src/conformance/report.js';
import { openOperations } from '../src/http/auth.js';
import type { AccessOptions } from '../src/http/security.js';
import { systemClock } from '../src/domain/clock.js';
import { createMetrics } from '../src/ops/metrics.js';
import { specOperations, specPath } from '../src/spec.js';
import { openSqliteStore } from '../src/storage/sqlite/sqlite-store.js';
import { createSweeper } from '../src/sweeper.js';

type Fault = (request: FastifyRequest, reply: FastifyReply, body: any) => any;

const running: Array<{ app: FastifyInstance; directory: string }> = [];
afterEach(async () => {
  for (const { app, directory } of running.splice(0)) {
    await app.close();
    rmSync(directory, { recursive: true, force: true });
  }
});

async function serve(fault?: Fault, access?: AccessOptions, hook?: (app: FastifyInstance) => void): Promise<string> {
  const directory = mkdtempSync(join(tmpdir(), 'sessions-api-conformance-'));
  const store = openSqliteStore(join(directory, 'sessions.db'));
  const sweeper = createSweeper({ store, clock: systemClock, retentionMs: 60_000, intervalMs: 60_000, batchSize: 100 });
  // No agent answers here: a message sent with transport http or sse gives up on its reply after 2 s (room for a loaded machine: the agent-reply flow polls, then replies).
  const app = buildApp({ store, clock: systemClock, sessionDefaults: {}, retentionMs: 60_000, sweeper, agentReplyTimeoutMs: 2000 }, { access, metrics: createMetrics() });
  hook?.(app);
  if (fault) {
    app.addHook('onSend', async (request, reply, payload) => {
      if (typeof payload !== 'string') return payload;
      const changed = fault(request, reply, JSON.parse(payload));
      return changed === undefined ? payload : JSON.stringify(changed);
    });
  }
  await app.listen({ host: '127.0.0.1', port: 0 });
  running.push({ app, directory });
  const address = app.server.address();
  return `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
}

const run = (baseUrl: string, validCases = 4) => runConformance({ baseUrl, specPath, seed: 20261124, validCases, workers: 4 });
// A fault injected into one operation: the cases of that operation are enough to show the report.
const runOnly = (baseUrl: string, operationId: string) => runConformance({ baseUrl, specPath, seed: 20261124, validCases: 4, workers: 4, includeOperations: [operationId] });
const operationOf = (request: FastifyRequest) => (request.routeOptions.schema as { operationId?: string } | undefined)?.operationId;
const failuresOf = (report: Report, operationId: string) => report.cases.filter((c) => !c.passed && c.operationId === operationId);

describe('the conformance suite against this server', { timeout: 120_000 }, () => {
  it('passes, covering every operation of the spec with every kind of case', async () => {
    const report = await run(await serve(), 10);
    expect(formatReport(report)).toMatch(/\n\d+ passed, 0 failed$/);
    expect(report.failed).toBe(0);
    const covered = new Set(report.cases.map((c) => c.operationId));
    // Event streams never end: no request/answer case; the stream flow checks them.
    for (const { operationId, path } of specOperations()) if (!path.endsWith('/events')) expect(covered).toContain(operationId);
    const streamFlow = report.cases.find((c) => c.key === 'flow/events/replay')!;
    expect(streamFlow.passed).toBe(true);
    expect(streamFlow.requests.filter((request) => request.includes('/events'))).toHaveLength(3);
    expect(report.cases.find((c) => c.key === 'flow/sessions/agent-reply')?.passed).toBe(true);
    expect(new Set(report.cases.map((c) => c.kind))).toEqual(new Set(['valid', 'invalid', 'hostile', 'stateful', 'health']));
    expect(report.cases.filter((c) => c.kind === 'invalid').length).toBeGreaterThan(100);
  });
});

describe('the conformance suite with few cases', { timeout: 60_000 }, () => {
  it('passes deleteAgent with one or two cases whatever the seed: its first valid request tries force=true (the only way past the 409 its sessions cause)', async () => {
    const baseUrl = await serve();
    for (const [seed, validCases] of [[1, 2], [3, 1], [4, 1], [8, 1]] as const) {
      const report = await runConformance({ baseUrl, specPath, seed, validCases, workers: 2, includeOperations: ['deleteAgent'], checks: ['valid-input-accepted'] });
      expect(report.cases.filter((c) => !c.passed).map((c) => `${seed}/${validCases}: ${c.title} ${c.violations.map((v) => v.message).join('; ')}`)).toEqual([]);
      const valid = report.cases.filter((c) => c.kind === 'valid' && c.title === 'valid request');
      expect(valid[0]?.requests[0]).toContain('force=true');
    }
  });
});

describe('the conformance suite with --api-key', () => {
  const apiKey = 'conformance-admin-key-0123456789';

  it('passes authenticated against a server with keys on, and checks that every secured operation refuses a request without a key', async () => {
    const report = await runConformance({ baseUrl: await serve(undefined, { apiKeys: [apiKey] }), specPath, seed: 20261124, validCases: 6, apiKey });
    expect(formatReport(report)).toMatch(/\n\d+ passed, 0 failed$/);
    const auth = report.cases.filter((c) => c.kind === 'auth');
    const open = openOperations();
    // Streams never end, so the suite leaves them out (test/event-stream.test.ts covers them).
    const streams = new Set(['streamEvents', 'streamSessionEvents']);
    expect(auth.map((c) => c.operationId).sort()).toEqual(specOperations().map((op) => op.operationId).filter((id) => !open.has(id) && !streams.has(id)).sort());
  }, 120_000);

  it('reports a server that lets requests without a key through', async () => {
    // Only the auth cases run: the one check selected.
    const report = await runConformance({ baseUrl: await serve(), specPath, seed: 20261124, validCases: 2, apiKey, checks: ['auth-required'] });
    const auth = report.cases.filter((c) => c.kind === 'auth');
    expect(auth.length).toBeGreaterThan(0);
    expect(auth.every((c) => !c.passed && c.violations.some((v) => v.check === 'auth-required' && /expected 401, got \d{3}/.test(v.message)))).toBe(true);
  }, 120_000);
});

describe('the conformance suite against a faulty server', { timeout: 120_000 }, () => {
  it('reports a stream that ignores Last-Event-ID, and one whose events break the schema', async () => {
    // Only the stream flow runs: the one check selected.
    const streamOnly = (baseUrl: string) => runConformance({ baseUrl, specPath, seed: 20261124, checks: ['event-stream'] });
    const messagesOf = (report: Report) => report.cases.find((c) => c.key === 'flow/events/replay')!.violations.map((v) => `${v.check}: ${v.message}`).join('\n');

    // The session's stream alone ignores it: the all-sessions stream, asked without one, would send only new events, and the flow wait out its deadline for them.
    const ignoresLastEventId = await streamOnly(
      await serve(undefined, undefined, (app) =>
        app.addHook('onRequest', async (request) => {
          if (!request.url.startsWith('/api/messaging/sessions/events')) delete request.headers['last-event-id'];
        }),
      ),
    );
    expect(ignoresLastEventId.cases.map((c) => c.key)).toEqual(['flow/events/replay']);
    expect(messagesOf(ignoresLastEventId)).toMatch(/event-stream: streamSessionEvents from Last-Event-ID \d+ sent \[.*\], not exactly the later events/);

    const badDates = await streamOnly(
      await serve(undefined, undefined, (app) =>
        app.addHook('onRequest', async (request, reply) => {
          if (!request.url.includes('/events')) return;
          const write = reply.raw.write.bind(reply.raw) as (chunk: unknown) => boolean;
          reply.raw.write = ((chunk: unknown) => write(typeof chunk === 'string' ? chunk.replace(/"occurredAt":"[^"]*"/g, '"occurredAt":"yesterday"') : chunk)) as typeof reply.raw.write;
        }),
      ),
    );
    expect(messagesOf(badDates)).toMatch(/event-stream: streamSessionEvents: event at \$\.occurredAt must match format "date-time"/);
  });

  it('reports a missing field', async () => {
    const report = await runOnly(
      await serve((request, _reply, body) => {
        if (operationOf(request) === 'getSession' && body.sessionId) {
          delete body.lastActivity;
          return body;
        }
      }),
      'getSession',
    );
    expect(failuresOf(report, 'getSession').flatMap((c) => c.violations.map((v) => v.message)).join('\n')).toMatch(/must have required property 'lastActivity'/);
  });

  it('reports an undocumented status', async () => {
    const report = await runOnly(
      await serve((request, reply) => {
        if (operationOf(request) === 'listAgents') reply.code(202);
      }),
      'listAgents',
    );
    expect(failuresOf(report, 'listAgents').flatMap((c) => c.violations.map((v) => v.message)).join('\n')).toMatch(/status 202 is not documented/);
  });

  it('reports a 500 on a bad input', async () => {
    const report = await runOnly(
      await serve((request, reply, body) => {
        if (operationOf(request) === 'createSession' && reply.statusCode === 400) {
          reply.code(500);
          return { success: false, error: { code: 'INTERNAL_ERROR', message: 'Internal server error' } };
        }
      }),
      'createSession',
    );
    const failures = failuresOf(report, 'createSession');
    expect(failures.some((c) => c.kind === 'invalid' && c.violations.some((v) => /expected 400, got 500/.test(v.message)))).toBe(true);
    expect(formatReport(report)).toMatch(/\n\d+ passed, [1-9]\d* failed$/);
  });

  it('reports a wrong type', async () => {
    const report = await runOnly(
      await serve((request, _reply, body) => {
        if (operationOf(request) === 'createSession' && body.timeoutConfig) {
          body.timeoutConfig.timeoutMinutes = String(body.timeoutConfig.timeoutMinutes);
          return body;
        }
      }),
      'createSession',
    );
    expect(failuresOf(report, 'createSession').flatMap((c) => c.violations.map((v) => v.message)).join('\n')).toMatch(/\$\.timeoutConfig\.timeoutMinutes must be integer/);
  });

  it('reports a 400 that does not name the field', async () => {
    const report = await runOnly(
      await serve((request, reply, body) => {
        if (operationOf(request) === 'updateSessionTimeout' && reply.statusCode === 400) {
          body.error.details = 'bad request';
          return body;
        }
      }),
      'updateSessionTimeout',
    );
    expect(failuresOf(report, 'updateSessionTimeout').flatMap((c) => c.violations.map((v) => v.message)).join('\n')).toMatch(/the 400 does not name "timeoutMinutes"/);
  });

  it('reports a generic 400 for a bad array item: the field is the array, not its index (which "400" contains)', async () => {
    const report = await runOnly(
      await serve((request, reply, body) => {
        if (operationOf(request) === 'createWebhook' && reply.statusCode === 400) {
          body.error.details = 'Invalid request (status 400)';
          return body;
        }
      }),
      'createWebhook',
    );
    const itemCases = failuresOf(report, 'createWebhook').filter((c) => c.title.startsWith('body/types/0:'));
    expect(itemCases.length).toBeGreaterThan(0);
    for (const c of itemCases) expect(c.violations.map((v) => v.message)).toContain('the 400 does not name "types"');
  });

  it('judges an answer by what its case expected: a 404 for a malformed id only in the path, a documented 504 no server error', () => {
    const operation = { operationId: 'getThing', responses: { '404': {}, '504': {} } } as unknown as Operation;
    const answer = (status: number) => ({ status, contentType: 'application/json', text: '{}' });
    expect(expectationViolations(operation, { type: 'invalid', field: 'id', inPath: true }, answer(404))).toEqual([]);
    expect(expectationViolations(operation, { type: 'invalid', field: 'q' }, answer(404)).map((v) => v.message)).toEqual(['expected 400, got 404']);
    expect(isServerError(operation, 504)).toBe(false);
    expect(isServerError({ ...operation, responses: {} } as unknown as Operation, 504)).toBe(true);
    expect(expectationViolations(operation, { type: 'valid', realIds: true }, answer(500)).map((v) => v.check)).toEqual(['no-server-error']);
  });

  it('refuses a valid request answered 400, 413 or 415; wants a 4xx for an unknown id; takes a 3xx as a success only where documented; a malformed path id as unknown only without a 400 or 4XX', () => {
    const operation = { operationId: 'getThing', responses: { '200': {}, '303': {}, '404': {} } } as unknown as Operation;
    const answer = (status: number) => ({ status, contentType: 'application/json', text: '{}' });
    const checks = (expectation: Parameters<typeof expectationViolations>[1], status: number, on = operation) => expectationViolations(on, expectation, answer(status)).map((v) => v.check);
    for (const status of [400, 413, 415]) expect(checks({ type: 'valid', realIds: true }, status), `${status}`).toEqual(['valid-input-accepted']);
    expect(checks({ type: 'valid', realIds: true }, 404)).toEqual([]);
    for (const status of [200, 303]) expect(checks({ type: 'valid', realIds: false }, status), `${status}`).toEqual(['unknown-id-refused']);
    expect(checks({ type: 'valid', realIds: false }, 404)).toEqual([]);
    expect(succeeds(operation, 303)).toBe(true);
    expect(succeeds(operation, 302)).toBe(false);
    expect(succeeds(operation, 299)).toBe(true);
    const with4XX = { ...operation, responses: { '404': {}, '4XX': {} } } as unknown as Operation;
    expect(checks({ type: 'invalid', field: 'id', inPath: true }, 404, with4XX)).toEqual(['invalid-input-refused']);
  });

  it("reads a stream's frames, naming each fault: not a 200, a line that is no field, a frame without id:, an event: that is not its type", () => {
    const operation = { operationId: 'streamThings', responses: {} } as unknown as Operation;
    const frame = (fields: { id?: string; event?: string; data: string }) => fields;
    const read = framesRead(new ResponseChecker(), operation, {
      status: 503,
      contentType: 'text/event-stream',
      text: 'busy',
      malformed: ['nonsense'],
      frames: [frame({ id: '1', event: 'a', data: '{"id":1,"type":"a"}' }), frame({ data: '{"type":"a"}' }), frame({ id: '3', event: 'b', data: '{"id":3,"type":"c"}' }), frame({ id: '4', data: 'x' })],
    });
    expect(read.problems).toEqual([
      'answered 503, not a stream: busy',
      'a line that is no field, comment or blank: nonsense',
      'a frame has no id: line (a client could not resume after it)',
      "a frame's event: b is not its event's type c",
      "a frame's data is not JSON: x",
    ]);
    expect(read.events.map((event) => event.data)).toEqual([{ id: 1, type: 'a' }, { type: 'a' }, { id: 3, type: 'c' }]);
  });

  it('counts a field as named only as a word of its own', () => {
    expect(namesField('body/tags/0 must be string', 'tags')).toBe(true);
    expect(namesField("'status' is required", 'status')).toBe(true);
    expect(namesField('Invalid request (status 400)', '0')).toBe(false);
    expect(namesField('statuses are wrong', 'status')).toBe(false);
    expect(namesField('body/a.b must be string', 'a.b')).toBe(true);
  });
});

describe('the conformance suite is independent of the server', () => {
  it('imports nothing from the server: only its own modules and packages', () => {
    const directory = new URL('../src/conformance/', import.meta.url);
    for (const file of readdirSync(directory)) {
      const source = readFileSync(new URL(file, directory), 'utf8');
      for (const [, target] of source.matchAll(/from '([^']+)'/g)) {
        expect(target!.startsWith('.') ? target : 'package', `${file} imports ${target}`).toMatch(/^(\.\/[\w-]+\.js|package)$/);
      }
    }
  });
});
