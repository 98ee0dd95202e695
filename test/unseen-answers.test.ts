// The requests Fastify neither times nor logs by itself: a response its client closed
// before it ended (a stream, a wait, or any request whose client gave up while its handler
// worked), a URL the router refused, an answer Node gave before any request was read or to
// one whose body stopped arriving. Each is counted once in the request histogram and logged with its request id.
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { createMetrics } from '../src/ops/metrics.js';
import { specSchemaValidator } from '../src/spec.js';
import { createSession, registerAgent } from './helpers/fixtures.js';
import { parsePrometheusText } from './helpers/prometheus-text.js';
import { openStream } from './helpers/sse-client.js';
import { type TestApp, startTestApp } from './helpers/test-app.js';
import { until } from './helpers/until.js';
import { logLines } from './helpers/log-lines.js';
import { abandonedRequest } from './helpers/abandoned-request.js';

let t: TestApp | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const REQUESTS = 'sessions_api_http_request_duration_seconds';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The histogram's counts by 'operationId status', without the scrapes themselves. */
async function requestCounts(app: TestApp): Promise<Record<string, number>> {
  const response = await app.requestText('/metrics');
  expect(response.status).toBe(200);
  const samples = parsePrometheusText(response.text).get(REQUESTS)?.samples ?? [];
  return Object.fromEntries(
    samples.filter((s) => s.name === `${REQUESTS}_count` && s.labels.operationId !== 'getMetrics').map((s) => [`${s.labels.operationId} ${s.labels.status}`, s.value]),
  );
}

/** Sends `raw` on a new connection; resolves with what came back once the server closed it. */
function exchange(port: number, raw: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(raw));
    let text = '';
    socket.on('data', (chunk) => (text += chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(text));
  });
}

describe('answers Fastify does not see through', () => {
  it('counts and logs a stream and a wait their clients closed, a URL the router refused, and what Node answered before reading a request', async () => {
    const { lines, stream } = logLines();
    const app = (t = await startTestApp({ metrics: createMetrics(), app: { logger: { level: 'info', stream } } }));
    const base = await app.listen();
    const port = Number(new URL(base).port);
    const agentId = await registerAgent(app);
    const { sessionId } = await createSession(app, { agentId });
    const before = await requestCounts(app);

    // An event stream its client closes: the status it was sent.
    const events = await openStream(`${base}/api/messaging/sessions/events`, { 'x-request-id': 'closed-stream' });
    expect(events.status).toBe(200);
    events.close();

    // A wait for the agent's reply its client leaves before any answer: 499. The agent's
    // reply after that does not count it a second time.
    const waiting = abandonedRequest(`${base}/api/messaging/sessions/${sessionId}/messages`, { 'content-type': 'application/json', 'x-request-id': 'closed-wait' }, { content: 'Hello?', transport: 'http' });
    await until('the message waits for its reply', async () => app.replies.size() === 1);
    await waiting.abort();
    expect(await waiting.answer).toBe('AbortError');
    await until('the wait is released', async () => app.replies.size() === 0);
    const reply = await app.request({ method: 'POST', url: `/api/messaging/sessions/${sessionId}/messages`, body: { content: 'Hi!', authorId: agentId } });
    expect(reply.status).toBe(201);

    const refused = await app.request({ method: 'GET', url: '/api/messaging/sessions/%E0%A4%A', headers: { 'x-request-id': 'refused' }, answeredByRouter: true });
    expect(refused.status).toBe(400);

    const isEnvelope = specSchemaValidator('ErrorEnvelope');
    for (const [raw, status] of [
      ['GET /api/agents HTTP/1.1\r\nHost: 127.0.0.1\r\nno colon here\r\n\r\n', 400],
      ['CONNECT 127.0.0.1:80 HTTP/1.1\r\nHost: 127.0.0.1:80\r\n\r\n', 404],
    ] as const) {
      const answer = await exchange(port, raw);
      expect(answer).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
      expect(isEnvelope(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)))).toBe(true);
    }

    let moved: Record<string, number> = {};
    await until('six kinds of answer are counted', async () => {
      const after = await requestCounts(app);
      moved = Object.fromEntries(Object.entries(after).map(([key, n]) => [key, n - (before[key] ?? 0)]).filter(([, n]) => n !== 0));
      return Object.keys(moved).length >= 6;
    });
    expect(moved).toEqual({ 'streamEvents 200': 1, 'sendSessionMessage 499': 1, 'sendSessionMessage 201': 1, 'not_found 400': 1, 'unread 400': 1, 'unread 404': 1 });

    const completed = (reqId: string) => lines.filter((line) => line.reqId === reqId && line.msg === 'request completed');
    expect(completed('closed-stream')).toEqual([expect.objectContaining({ res: { statusCode: 200 }, closedByClient: true, responseTime: expect.any(Number) })]);
    expect(completed('closed-wait')).toEqual([expect.objectContaining({ res: { statusCode: 499 }, closedByClient: true })]);
    // Not a reply timeout: the client left.
    expect(lines.filter((line) => line.reqId === 'closed-wait').map((line) => line.msg)).toEqual(['incoming request', 'request completed']);
    expect(completed('refused')).toEqual([expect.objectContaining({ res: { statusCode: 400 }, responseTime: expect.any(Number) })]);
    const unread = lines.filter((line) => line.msg === 'request refused before it was read');
    expect(unread.map((line) => [line.res.statusCode, line.reason])).toEqual([
      [400, 'HPE_INVALID_HEADER_TOKEN'],
      [404, 'CONNECT'],
    ]);
    expect(unread.every((line) => UUID.test(line.reqId))).toBe(true);
  });

  it('counts a stream its client closed when logs are above info (LOG_LEVEL=warn) but metrics are on', async () => {
    const { lines, stream } = logLines();
    const app = (t = await startTestApp({ metrics: createMetrics(), app: { logger: { level: 'warn', stream } } }));
    const base = await app.listen();
    const before = await requestCounts(app);
    const events = await openStream(`${base}/api/messaging/sessions/events`);
    expect(events.status).toBe(200);
    events.close();
    await until('the closed stream is counted', async () => ((await requestCounts(app))['streamEvents 200'] ?? 0) - (before['streamEvents 200'] ?? 0) === 1);
    expect(lines.filter((line) => line.msg === 'request completed')).toEqual([]);
  });
});

/** A listening app logging at info with metrics, whose requests must arrive within 1 s (a body that stops is answered 408 then). */
async function slowBodyApp() {
  const { lines, stream } = logLines();
  const app = (t = await startTestApp({ metrics: createMetrics(), app: { logger: { level: 'info', stream }, timeouts: { requestTimeoutMs: 1000, headersTimeoutMs: 1000, keepAliveTimeoutMs: 5000 } } }));
  return { app, lines, base: await app.listen() };
}

/** An agent's create as raw HTTP/1.1, under the request id `id`. */
function rawCreate(id: string): string {
  const body = JSON.stringify({ characterJson: { name: 'Eliza' } });
  return `POST /api/agents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Request-Id: ${id}\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
}

/**
 * `requests` pipelined on one raw connection to the app while another connection holds the
 * database's write lock: the first write waits for it, the rest behind it. `release` lets it go.
 */
function pipelinedBehindLock(app: TestApp, base: string, requests: string[]) {
  const other = new Database(app.databasePath);
  other.exec('BEGIN IMMEDIATE');
  const socket = connect(Number(new URL(base).port), '127.0.0.1', () => socket.write(requests.join('')));
  socket.on('error', () => {});
  const release = () => {
    other.exec('COMMIT');
    other.close();
  };
  return { socket, release };
}

/** The requests counted under createAgent, whatever their status. */
const createsCounted = (counts: Record<string, number>) => Object.entries(counts).filter(([key]) => key.startsWith('createAgent ')).reduce((sum, [, n]) => sum + n, 0);

describe('requests whose answers nobody read (O16)', () => {
  it('counts 499 and logs "request completed" (the answer it had, closedByClient) for a create whose client left while it waited for the write lock, though the session was stored', async () => {
    const { lines, stream } = logLines();
    const app = (t = await startTestApp({ metrics: createMetrics(), app: { logger: { level: 'info', stream } } }));
    const base = await app.listen();
    const agentId = await registerAgent(app);
    const before = await requestCounts(app);
    // Another process holds the write lock: the create waits in its handler.
    const other = new Database(app.databasePath);
    other.exec('BEGIN IMMEDIATE');
    const create = abandonedRequest(`${base}/api/messaging/sessions`, { 'content-type': 'application/json', 'x-request-id': 'left-create' }, { agentId, userId: '9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d' });
    await until('the create reached the server', async () => lines.some((line) => line.reqId === 'left-create'));
    await create.abort();
    other.exec('COMMIT');
    other.close();
    await until('the create is logged', async () => lines.some((line) => line.reqId === 'left-create' && line.msg === 'request completed'));
    expect((await app.request({ method: 'GET', url: '/api/messaging/sessions?userId=9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d' })).body.total).toBe(1);
    const after = await requestCounts(app);
    expect(after['createSession 499']).toBe((before['createSession 499'] ?? 0) + 1);
    expect(after['createSession 201'] ?? 0).toBe(before['createSession 201'] ?? 0);
    expect(lines.filter((line) => line.reqId === 'left-create' && line.msg === 'request completed')).toEqual([
      expect.objectContaining({ res: { statusCode: 499 }, answer: 201, closedByClient: true }),
    ]);
  });

  it('answers a body that stopped arriving 408 under the X-Request-Id the request sent, counted as its operation with its time, and logged under that id', async () => {
    const { app, lines, base } = await slowBodyApp();
    const before = await requestCounts(app);
    const raw = await exchange(Number(new URL(base).port), 'POST /api/agents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Request-Id: slow-body\r\nContent-Length: 100\r\n\r\n{');
    expect(raw).toMatch(/^HTTP\/1\.1 408 /);
    expect(/\r\nx-request-id: ([^\r]*)\r\n/i.exec(raw)?.[1]).toBe('slow-body');
    expect(lines.filter((line) => line.res?.statusCode === 408)).toEqual([
      expect.objectContaining({ reqId: 'slow-body', msg: 'request completed', reason: 'ERR_HTTP_REQUEST_TIMEOUT' }),
    ]);
    expect(lines.find((line) => line.res?.statusCode === 408)!.responseTime).toBeGreaterThan(500);
    const after = await requestCounts(app);
    expect(after['createAgent 408']).toBe((before['createAgent 408'] ?? 0) + 1);
    expect(after['unread 408'] ?? 0).toBe(before['unread 408'] ?? 0);
  });

  it('R47: a body that stopped arriving is counted and logged once (408), not also 499 when its body read fails after the socket closed', async () => {
    const { app, lines, base } = await slowBodyApp();
    const before = await requestCounts(app);
    const raw = await exchange(Number(new URL(base).port), 'POST /api/agents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Request-Id: slow-body-2\r\nContent-Length: 100\r\n\r\n{');
    expect(raw).toMatch(/^HTTP\/1\.1 408 /);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const after = await requestCounts(app);
    const completed = lines.filter((line) => line.reqId === 'slow-body-2' && line.msg === 'request completed');
    expect(completed).toHaveLength(1);
    expect(after['createAgent 499'] ?? 0).toBe(before['createAgent 499'] ?? 0);
    expect(after['createAgent 400'] ?? 0).toBe(before['createAgent 400'] ?? 0);
  });
  it('R47: a message whose body stopped arriving (an operation that holds requests open) is counted and logged once (408)', async () => {
    const { app, lines, base } = await slowBodyApp();
    const agentId = await registerAgent(app);
    const { sessionId } = await createSession(app, { agentId });
    const before = await requestCounts(app);
    const raw = await exchange(Number(new URL(base).port), `POST /api/messaging/sessions/${sessionId}/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Request-Id: slow-message\r\nContent-Length: 100\r\n\r\n{`);
    expect(raw).toMatch(/^HTTP\/1\.1 408 /);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const after = await requestCounts(app);
    expect(lines.filter((line) => line.reqId === 'slow-message' && line.msg === 'request completed')).toHaveLength(1);
    expect(after['sendSessionMessage 408']).toBe((before['sendSessionMessage 408'] ?? 0) + 1);
    expect(after['sendSessionMessage 499'] ?? 0).toBe(before['sendSessionMessage 499'] ?? 0);
  });

  it('R47: two pipelined creates whose client left while they waited for the write lock are each counted 499 and logged', async () => {
    const { lines, stream } = logLines();
    const app = (t = await startTestApp({ metrics: createMetrics(), app: { logger: { level: 'info', stream } } }));
    const base = await app.listen();
    const before = await requestCounts(app);
    const { socket, release } = pipelinedBehindLock(app, base, [rawCreate('pipe-1'), rawCreate('pipe-2')]);
    await until('the first create reached the server', async () => lines.some((line) => line.reqId === 'pipe-1'));
    await new Promise((resolve) => setTimeout(resolve, 200));
    socket.destroy();
    await new Promise((resolve) => setTimeout(resolve, 300));
    release();
    await until('the first create is logged', async () => lines.some((line) => line.reqId === 'pipe-1' && line.msg === 'request completed'));
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const after = await requestCounts(app);
    // README: every request logs "request completed"; each is counted once (pipe-2: logged "incoming request", then nothing).
    expect(lines.filter((line) => line.reqId === 'pipe-2' && line.msg === 'request completed')).toHaveLength(1);
    expect(createsCounted(after)).toBe(createsCounted(before) + 2);
    // The second was not carried out: its client had left before its turn came.
    expect(await app.store.listAgents()).toHaveLength(1);
    expect(lines.find((line) => line.reqId === 'pipe-2' && line.msg === 'request completed')).toMatchObject({ res: { statusCode: 499 }, answer: 503, closedByClient: true });
  });
  it('logs and counts a third pipelined request whose connection closed before its turn too (README: every request logs "request completed") (R49)', async () => {
    const { lines, stream } = logLines();
    const app = (t = await startTestApp({ metrics: createMetrics(), app: { logger: { level: 'info', stream } } }));
    const base = await app.listen();
    const before = await requestCounts(app);
    const { socket, release } = pipelinedBehindLock(app, base, ['three-1', 'three-2', 'three-3'].map(rawCreate));
    await until('all three reached the server', async () => lines.some((line) => line.reqId === 'three-3'));
    socket.destroy();
    await new Promise((resolve) => setTimeout(resolve, 300));
    release();
    await until('the first create is logged', async () => lines.some((line) => line.reqId === 'three-1' && line.msg === 'request completed'));
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(await app.store.listAgents()).toHaveLength(1);
    expect(lines.filter((line) => line.reqId === 'three-2' && line.msg === 'request completed')).toHaveLength(1);
    expect(lines.filter((line) => line.reqId === 'three-3' && line.msg === 'request completed')).toEqual([expect.objectContaining({ res: { statusCode: 499 }, answer: 503 })]);
    expect(createsCounted(await requestCounts(app))).toBe(createsCounted(before) + 3);
  });
  it('does not carry out a pipelined create whose turn comes after the server, stopping, closed the connection with the answer before it: every create carried out has its answer sent (R49)', async () => {
    const { lines, stream } = logLines();
    // A folder of its own: the app's own goes when it closes, and the file is read after.
    const folder = mkdtempSync(join(tmpdir(), 'pipelined-at-shutdown-'));
    const databasePath = join(folder, 'sessions.db');
    const app = await startTestApp({ databasePath, app: { logger: { level: 'info', stream } } });
    const base = await app.listen();
    const { socket, release } = pipelinedBehindLock(app, base, [rawCreate('sd-1'), rawCreate('sd-2')]);
    let received = '';
    socket.on('data', (chunk) => (received += chunk));
    const closed = new Promise((resolve) => socket.on('close', resolve));
    await until('both reached the server', async () => lines.some((line) => line.reqId === 'sd-2'));
    const stopping = app.close();
    await new Promise((resolve) => setTimeout(resolve, 100));
    release();
    await closed;
    await stopping;
    const statuses = [...received.matchAll(/^HTTP\/1\.1 (\d+)/gm)].map((match) => match[1]);
    const file = new Database(databasePath, { readonly: true });
    const agents = (file.prepare('SELECT count(*) AS n FROM agents').get() as { n: number }).n;
    file.close();
    rmSync(folder, { recursive: true, force: true });
    expect(statuses).toEqual(['201']);
    expect(agents).toBe(1);
  });
  it('does not carry out a pipelined request without a body (a delete) whose connection closed before its turn, and logs it 499', async () => {
    const { lines, stream } = logLines();
    const app = (t = await startTestApp({ metrics: createMetrics(), app: { logger: { level: 'info', stream } } }));
    const base = await app.listen();
    const kept = await registerAgent(app);
    const remove = `DELETE /api/agents/${kept} HTTP/1.1\r\nHost: x\r\nX-Request-Id: behind\r\n\r\n`;
    const { socket, release } = pipelinedBehindLock(app, base, [rawCreate('first'), remove]);
    await until('both reached the server', async () => lines.some((line) => line.reqId === 'behind'));
    socket.destroy();
    await until('the first create is logged', async () => lines.some((line) => line.reqId === 'first' && line.msg === 'request completed'));
    release();
    await until('the delete is logged', async () => lines.some((line) => line.reqId === 'behind' && line.msg === 'request completed'));
    expect(lines.find((line) => line.reqId === 'behind' && line.msg === 'request completed')).toMatchObject({ res: { statusCode: 499 }, answer: 503, closedByClient: true });
    expect((await app.request({ method: 'GET', url: `/api/agents/${kept}` })).status).toBe(200);
  });

  it('R47: a chunked body with a malformed chunk is answered 400 under its own id, counted and logged once (not also 499)', async () => {
    const { lines, stream } = logLines();
    const app = (t = await startTestApp({ metrics: createMetrics(), app: { logger: { level: 'info', stream } } }));
    const base = await app.listen();
    const before = await requestCounts(app);
    const raw = await exchange(Number(new URL(base).port), 'POST /api/agents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Request-Id: bad-chunk\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"a":\r\nZZ\r\n');
    expect(raw).toMatch(/^HTTP\/1\.1 400 /);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const after = await requestCounts(app);
    expect(lines.filter((line) => line.reqId === 'bad-chunk' && line.msg === 'request completed')).toHaveLength(1);
    expect(after['createAgent 499'] ?? 0).toBe(before['createAgent 499'] ?? 0);
  });

  it('R47: a pipelined request whose body stopped arriving behind a create still working gets its own id on the 408 (not the create\'s, not a new one)', async () => {
    const { lines, stream } = logLines();
    const app = (t = await startTestApp({ metrics: createMetrics(), app: { logger: { level: 'info', stream }, timeouts: { requestTimeoutMs: 1000, headersTimeoutMs: 1000, keepAliveTimeoutMs: 5000 } } }));
    const base = await app.listen();
    const before = await requestCounts(app);
    const other = new Database(app.databasePath);
    other.exec('BEGIN IMMEDIATE');
    const body = JSON.stringify({ characterJson: { name: 'Eliza' } });
    const first = `POST /api/agents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Request-Id: pipe-first\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    const second = 'POST /api/agents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Request-Id: pipe-slow\r\nContent-Length: 100\r\n\r\n{';
    const answer = exchange(Number(new URL(base).port), first + second);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    other.exec('COMMIT');
    other.close();
    const raw = await answer;
    const after = await requestCounts(app);
    expect(lines.filter((line) => line.reqId === 'pipe-slow' && line.msg === 'request completed')).toEqual([expect.objectContaining({ res: { statusCode: 408 } })]);
    expect([...raw.matchAll(/\r\nx-request-id: ([^\r]*)\r\n/gi)].map((m) => m[1])).toEqual(['pipe-first', 'pipe-slow']);
    expect(after['createAgent 408']).toBe((before['createAgent 408'] ?? 0) + 1);
  });
});
