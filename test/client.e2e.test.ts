// The typed client (`sessions-api/client`) against the real server process: a whole
// conversation, every answer also checked against the spec on the wire.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { createSessionsClient } from 'sessions-api/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { specPath } from '../src/spec.js';
import { cleanUpServerProcesses, startServer, tempDatabase } from './helpers/server-process.js';
import { operationFor, responseViolations, specBackend } from './helpers/spec-validator.js';

afterAll(cleanUpServerProcesses);

/** fetch whose every answer must honour the spec; it also keeps the request headers sent. */
function checkedFetch(sent: Headers[] = []) {
  return async (request: Request): Promise<Response> => {
    sent.push(new Headers(request.headers));
    const response = await fetch(request);
    const text = await response.clone().text();
    const api = await specBackend();
    const { pathname, search } = new URL(request.url);
    const violations = responseViolations(api, operationFor(api, request.method, pathname + search), response.status, text ? JSON.parse(text) : undefined);
    if (violations.length > 0) throw new Error(`${request.method} ${pathname}: ${violations.join('; ')}`);
    return response;
  };
}

describe('the typed client against the server process', () => {
  let baseUrl: string;
  beforeAll(async () => {
    baseUrl = await startServer({ DATABASE_PATH: tempDatabase() }).listening;
  }, 60_000);

  it('holds a conversation: agent, session, heartbeat, timeout, messages, listing, end', async () => {
    const api = createSessionsClient({ baseUrl, fetch: checkedFetch() });

    const agent = await api.POST('/api/agents', { body: { characterJson: { name: 'Eliza', settings: { SESSION_TIMEOUT_MINUTES: 60 } } } });
    expect(agent.response.status).toBe(201);
    const agentId = agent.data!.data.character.id;

    const created = await api.POST('/api/messaging/sessions', { body: { agentId, userId: '9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d', metadata: { platform: 'discord' } } });
    expect(created.response.status).toBe(201);
    expect(created.data!.timeoutConfig.timeoutMinutes).toBe(60);
    const path = { sessionId: created.data!.sessionId };

    const heartbeat = await api.POST('/api/messaging/sessions/{sessionId}/heartbeat', { params: { path } });
    expect(heartbeat.data!.renewalCount).toBe(1);
    const patched = await api.PATCH('/api/messaging/sessions/{sessionId}/timeout', { params: { path }, body: { timeoutMinutes: 90 } });
    expect(patched.data!.timeoutConfig.timeoutMinutes).toBe(90);
    const sent = await api.POST('/api/messaging/sessions/{sessionId}/messages', { params: { path }, body: { content: 'Hello, Eliza!' } });
    expect(sent.response.status).toBe(201);
    const page = await api.GET('/api/messaging/sessions/{sessionId}/messages', { params: { path, query: { limit: 10 } } });
    expect(page.data!.messages.map((message) => message.content)).toEqual(['Hello, Eliza!']);
    const listed = await api.GET('/api/messaging/sessions', { params: { query: { agentId } } });
    expect(listed.data!.total).toBe(1);

    const ended = await api.DELETE('/api/messaging/sessions/{sessionId}', { params: { path } });
    expect(ended.data).toEqual({ success: true, message: 'Session ended' });
    const gone = await api.GET('/api/messaging/sessions/{sessionId}', { params: { path } });
    expect(gone.response.status).toBe(404);
    expect(gone.error!.error.code).toBe('SESSION_NOT_FOUND');
  });

  it('hands over text answers as strings, and an event stream as a stream when asked, refusing at once to wait for its end', async () => {
    const api = createSessionsClient({ baseUrl });
    const yaml = await api.GET('/openapi.yaml');
    expect(yaml.data).toBe(readFileSync(specPath, 'utf8'));
    const metrics = await api.GET('/metrics');
    expect(metrics.data).toMatch(/^# HELP /);

    await expect(api.GET('/api/messaging/sessions/events', { params: { query: {} } })).rejects.toThrow(
      "/api/messaging/sessions/events answers a stream of Server-Sent Events, which does not end: call it with { parseAs: 'stream' } and read data as the events arrive",
    );
    const stream = await api.GET('/api/messaging/sessions/events', { params: { query: {} }, parseAs: 'stream' });
    expect(stream.response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = stream.data!.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe(': stream open\n\n');
    await reader.cancel();
  });

  it('sends X-API-KEY when given an apiKey, and nothing otherwise (an empty one is none); a request carrying its own keeps it', async () => {
    const withKey: Headers[] = [];
    const withoutKey: Headers[] = [];
    const keyed = createSessionsClient({ baseUrl, apiKey: 'key-123', fetch: checkedFetch(withKey) });
    await keyed.GET('/api/agents');
    await keyed.GET('/api/agents', { headers: { 'X-API-KEY': 'agent-bound-key' } });
    await createSessionsClient({ baseUrl, fetch: checkedFetch(withoutKey) }).GET('/api/agents');
    await createSessionsClient({ baseUrl, apiKey: '', fetch: checkedFetch(withoutKey) }).GET('/api/agents');
    expect(withKey.map((headers) => headers.get('x-api-key'))).toEqual(['key-123', 'agent-bound-key']);
    expect(withoutKey.map((headers) => headers.has('x-api-key'))).toEqual([false, false]);
  });

  it("streams a message's frames (transport 'sse'): the user's message, then the agent's reply, then the end", async () => {
    const api = createSessionsClient({ baseUrl });
    const agent = await api.POST('/api/agents', { body: { characterJson: { name: 'Eliza' } } });
    const agentId = agent.data!.data.character.id;
    const created = await api.POST('/api/messaging/sessions', { body: { agentId, userId: '9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d' } });
    const path = { sessionId: created.data!.sessionId };
    // As the README writes it: `as const` keeps the literal, without which openapi-fetch types data as the JSON answer.
    const { data, response } = await api.POST('/api/messaging/sessions/{sessionId}/messages', {
      params: { path },
      body: { content: 'Hello, Eliza!', transport: 'sse' as const },
      parseAs: 'stream',
    });
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = data!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    const replied = api.POST('/api/messaging/sessions/{sessionId}/messages', { params: { path }, body: { content: 'Hello! How can I help?', authorId: agentId } });
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) text += chunk.value;
    expect((await replied).response.status).toBe(201);
    const frames = text.split('\n\n').filter((frame) => frame.includes('data: ')).map((frame) => JSON.parse(/^data: (.*)$/m.exec(frame)![1]!));
    expect(frames.map((event) => [event.type, event.data.content])).toEqual([
      ['message.created', 'Hello, Eliza!'],
      ['message.created', 'Hello! How can I help?'],
    ]);
  });

  it('is what the built package exports as sessions-api/client', async () => {
    // npm test builds before it runs vitest; run `npm run build` first when running this file alone.
    const script = "const m = await import('sessions-api/client'); console.log(typeof m.createSessionsClient);";
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script]);
    expect(stdout.trim()).toBe('function');
  });
});

describe('logs of the server process', () => {
  // Two server processes one after the other: more than the default 20 s on a loaded machine.
  it('are JSON lines carrying the request id by default, every line of stdout (the listening and stopped lines are on stderr), and human lines with LOG_PRETTY=1', { timeout: 60_000 }, async () => {
    const json = startServer({ DATABASE_PATH: tempDatabase(), LOG_LEVEL: 'info' });
    await createSessionsClient({ baseUrl: await json.listening }).GET('/api/agents', { headers: { 'X-Request-Id': 'json-1' } });
    json.child.kill('SIGTERM');
    await json.exited;
    const lines = json.output().stdout.trimEnd().split('\n').map((line) => JSON.parse(line));
    expect(lines.filter((line) => line.reqId === 'json-1').map((line) => line.msg)).toEqual(['incoming request', 'request completed']);

    const pretty = startServer({ DATABASE_PATH: tempDatabase(), LOG_LEVEL: 'info', LOG_PRETTY: '1' });
    await createSessionsClient({ baseUrl: await pretty.listening }).GET('/api/agents', { headers: { 'X-Request-Id': 'pretty-1' } });
    await new Promise((resolve) => setTimeout(resolve, 500)); // pino-pretty writes from a worker thread
    pretty.child.kill('SIGTERM');
    await pretty.exited;
    const prettyLines = pretty.output().stdout.split('\n').filter((line) => line.includes('pretty-1'));
    expect(prettyLines.length).toBeGreaterThan(0);
    expect(prettyLines.every((line) => !line.trimStart().startsWith('{'))).toBe(true);
  });
});
