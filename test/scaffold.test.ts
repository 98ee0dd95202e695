// The scaffold loop: `npm run generate` writes a 501 stub for an operation without a
// handler, and the build stays red (the first test here) until it is implemented.
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { DEFAULTS } from '../src/defaults.js';
import { createAgentReplies } from '../src/events/agent-replies.js';
import { createEventFeed } from '../src/events/event-feed.js';
import { createEventStreams } from '../src/events/event-stream.js';
import { createHandlers } from '../src/http/handlers/index.js';
import { isNotImplemented } from '../src/http/not-implemented.js';
import { openSqliteStore } from '../src/storage/sqlite/sqlite-store.js';
import { createSweeper } from '../src/sweeper.js';
import { fakeClock } from './helpers/fake-clock.js';
import { responseViolations, specBackend } from './helpers/spec-validator.js';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '..');

function handlerDeps(store = openSqliteStore(':memory:')) {
  const clock = fakeClock();
  return { agentReplyTimeoutMs: DEFAULTS.agentReplyTimeoutMs, webhookPrivateAddresses: DEFAULTS.webhookPrivateAddresses, webhooksPerKeyMax: DEFAULTS.webhooksPerKeyMax, store, clock, sessionDefaults: {}, retentionMs: 0, sweeper: createSweeper({ store, clock, retentionMs: 0, intervalMs: 1000, batchSize: 1 }), streams: createEventStreams({ feed: createEventFeed(store) }), replies: createAgentReplies(createEventFeed(store)) };
}

describe('unimplemented operations', () => {
  it('are none: every operation of the spec has a real handler, not a generated stub', () => {
    const stubs = Object.entries(createHandlers(handlerDeps())).filter(([, handler]) => isNotImplemented(handler));
    expect(stubs.map(([operationId]) => operationId), 'operations still answering 501 NOT_IMPLEMENTED').toEqual([]);
  });
});

describe('npm run generate on a spec with a new operation', () => {
  const project = mkdtempSync(join(tmpdir(), 'sessions-api-scaffold-'));
  afterAll(() => rmSync(project, { recursive: true, force: true }));

  it('writes a typed stub that compiles, is listed, and answers 501 NOT_IMPLEMENTED', { timeout: 120_000 }, async () => {
    for (const part of ['src', 'scripts', 'generated', 'openapi', 'tsconfig.json', 'package.json']) cpSync(join(ROOT, part), join(project, part), { recursive: true });
    symlinkSync(join(ROOT, 'node_modules'), join(project, 'node_modules'), 'dir');
    const specFile = join(project, 'openapi', 'sessions-api.yaml');
    const spec = parse(readFileSync(specFile, 'utf8'));
    spec.paths['/api/agents/{agentId}/status'] = {
      parameters: [{ $ref: '#/components/parameters/AgentId' }],
      get: {
        operationId: 'getAgentStatus',
        parameters: [{ name: 'verbose', in: 'query', schema: { type: 'boolean', default: false } }],
        tags: ['Agents'],
        summary: "An agent's status",
        responses: {
          '200': { description: 'The status.', content: { 'application/json': { schema: { type: 'object', required: ['status'], properties: { status: { type: 'string' } } } } } },
          '400': { $ref: '#/components/responses/BadRequest' },
          '501': { description: 'Not implemented yet.', content: { 'application/json': { schema: { $ref: '#/components/schemas/ErrorEnvelope' } } } },
        },
      },
    };
    writeFileSync(specFile, stringify(spec));

    await run(process.execPath, ['--import', 'tsx', 'scripts/generate.ts'], { cwd: project });
    const stubFile = join(project, 'src/http/handlers/getAgentStatus.ts');
    expect(existsSync(stubFile)).toBe(true);
    expect(readFileSync(stubFile, 'utf8')).toContain("export const getAgentStatus = (_deps: HandlerDeps): Handler<'getAgentStatus'> => notImplemented('getAgentStatus');");
    expect(readFileSync(join(project, 'src/http/handlers/index.ts'), 'utf8')).toContain('getAgentStatus: getAgentStatus(deps),');
    expect(readFileSync(join(project, 'generated/operation-facts.d.ts'), 'utf8')).toContain('    getAgentStatus: "verbose";\n');
    // The handlers that existed are left alone.
    expect(readFileSync(join(project, 'src/http/handlers/getAgent.ts'), 'utf8')).toBe(readFileSync(join(ROOT, 'src/http/handlers/getAgent.ts'), 'utf8'));

    // As `npm run typecheck` checks it (tsgo, TypeScript's native compiler).
    await run(process.execPath, [join(ROOT, 'node_modules/@typescript/native-preview/bin/tsgo'), '--noEmit', '-p', join(project, 'tsconfig.json')], { cwd: project });
    await run(process.execPath, ['--import', 'tsx', 'scripts/generate.ts', '--check'], { cwd: project });

    const { buildApp } = await import(pathToFileURL(join(project, 'src/app.ts')).href);
    const { openSqliteStore: openStore } = await import(pathToFileURL(join(project, 'src/storage/sqlite/sqlite-store.ts')).href);
    const app = buildApp(handlerDeps(openStore(':memory:')));
    try {
      const response = await app.inject({ method: 'GET', url: '/api/agents/3c90c3cc-0d44-4b50-8888-8dd25736052a/status' });
      expect(response.statusCode).toBe(501);
      const body = JSON.parse(response.body);
      expect(body.error).toEqual({ code: 'NOT_IMPLEMENTED', message: 'Not implemented', details: 'getAgentStatus is in the spec but not implemented yet' });
      expect(responseViolations(await specBackend(specFile), 'getAgentStatus', 501, body)).toEqual([]);
    } finally {
      await app.close();
    }
  });

  it('generate --check names each generated file that drifted from the spec, and exits 1', { timeout: 60_000 }, async () => {
    const generated = ['generated/api.d.ts', 'generated/sessions-api.json', 'generated/operation-facts.d.ts', 'src/http/handlers/index.ts'];
    const originals = generated.map((file) => readFileSync(join(project, file), 'utf8'));
    try {
      for (const file of generated) writeFileSync(join(project, file), `${readFileSync(join(project, file), 'utf8')}\n// drifted\n`);
      const failed = await run(process.execPath, ['--import', 'tsx', 'scripts/generate.ts', '--check'], { cwd: project }).then(
        () => undefined,
        (error: { code: number; stderr: string }) => error,
      );
      expect(failed?.code).toBe(1);
      expect(failed?.stderr.trim().split('\n')).toEqual([
        'generated/api.d.ts is out of date with openapi/sessions-api.yaml',
        'generated/sessions-api.json is out of date with openapi/sessions-api.yaml',
        'generated/operation-facts.d.ts is out of date with openapi/sessions-api.yaml',
        'src/http/handlers/index.ts does not list the spec operations',
        'Run `npm run generate` and commit what it writes.',
      ]);
    } finally {
      generated.forEach((file, i) => writeFileSync(join(project, file), originals[i]!));
    }
  });

  it('refuses an operationId that is no JavaScript identifier, a reserved word or a name of the handler list, naming them, and writes nothing', { timeout: 60_000 }, async () => {
    const specFile = join(project, 'openapi', 'sessions-api.yaml');
    const spec = parse(readFileSync(specFile, 'utf8'));
    spec.paths['/api/ping'] = { get: { operationId: 'get-ping', responses: { '200': { description: 'pong' } } } };
    spec.paths['/api/pong'] = { get: { operationId: 'class', responses: { '200': { description: 'ping' } } } };
    // The handler list's own file: its list would import itself.
    spec.paths['/api/list'] = { get: { operationId: 'index', responses: { '200': { description: 'a list' } } } };
    writeFileSync(specFile, stringify(spec));
    const index = readFileSync(join(project, 'src/http/handlers/index.ts'), 'utf8');
    const failed = await run(process.execPath, ['--import', 'tsx', 'scripts/generate.ts'], { cwd: project }).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    expect(failed?.code).toBe(1);
    expect(failed?.stderr).toContain('generate: an operationId must be a JavaScript identifier, not a reserved word nor a name of the generated handler list (index, createHandlers, HandlerDeps, ServiceHandlers, Handler, notImplemented, deps) (camelCase, e.g. getPing), not "get-ping", "class", "index"');
    expect(existsSync(join(project, 'src/http/handlers/get-ping.ts'))).toBe(false);
    expect(existsSync(join(project, 'src/http/handlers/class.ts'))).toBe(false);
    expect(readFileSync(join(project, 'src/http/handlers/index.ts'), 'utf8')).toBe(index);
  });
});
