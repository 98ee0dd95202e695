// Errors that Node's HTTP server raises before a route runs, and the request timeouts,
// over raw sockets against a real listening server: every answer in the envelope.
import { connect, type Socket } from 'node:net';
import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { systemClock } from '../src/domain/clock.js';
import { openSqliteStore } from '../src/storage/sqlite/sqlite-store.js';
import { createSweeper } from '../src/sweeper.js';
import { BODY_LIMIT_BYTES } from '../src/http/limits.js';
import { specSchemaValidator } from '../src/spec.js';
import { until } from './helpers/until.js';

let app: FastifyInstance | undefined;
let port: number;

async function listen(access?: { corsOrigins: string[] }): Promise<void> {
  const store = openSqliteStore(':memory:');
  const sweeper = createSweeper({ store, clock: systemClock, retentionMs: 60_000, intervalMs: 60_000, batchSize: 100 });
  app = buildApp(
    { store, clock: systemClock, sessionDefaults: {}, retentionMs: 60_000, sweeper },
    { timeouts: { requestTimeoutMs: 1000, headersTimeoutMs: 1000, keepAliveTimeoutMs: 5000 }, ...(access ? { access } : {}) },
  );
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as { port: number }).port;
}
afterEach(async () => {
  await app?.close();
  app = undefined;
});

function open(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => resolve(socket));
    socket.on('error', reject);
  });
}

/** Everything the server sends until it closes the connection. */
function readAll(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    socket.on('data', (chunk) => (text += chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(text));
  });
}

/** The first response in raw bytes: status, headers, and the body checked against ErrorEnvelope. */
function parseResponse(raw: string) {
  const [head = '', ...rest] = raw.split('\r\n\r\n');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
  const headers = Object.fromEntries(
    head
      .split('\r\n')
      .slice(1)
      .map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]),
  );
  const bodyText = rest.join('\r\n\r\n');
  const body = headers['transfer-encoding'] === 'chunked' ? bodyText.split('\r\n')[1] : bodyText;
  return { status, headers, body: JSON.parse(body ?? '') };
}

function expectEnvelope(response: ReturnType<typeof parseResponse>, status: number, code: string): void {
  expect(response.status).toBe(status);
  expect(response.headers['content-type']).toMatch(/^application\/json/);
  const validate = specSchemaValidator('ErrorEnvelope');
  expect(validate(response.body), JSON.stringify(validate.errors)).toBe(true);
  expect(response.body.error.code).toBe(code);
  // Every answer carries a request id and the security headers, also those Node or the router give before any route.
  expect(response.headers['x-request-id']).toMatch(/^[\x21-\x7e]{1,200}$/);
  expect(response.headers).toMatchObject({ 'x-content-type-options': 'nosniff', 'cache-control': 'no-store', 'x-frame-options': 'DENY', 'content-security-policy': "default-src 'none'; frame-ancestors 'none'" });
}

async function exchange(request: string): Promise<ReturnType<typeof parseResponse>> {
  const socket = await open();
  const received = readAll(socket);
  socket.write(request);
  return parseResponse(await received);
}

describe('errors before routing, in the envelope', () => {
  it('431 HEADERS_TOO_LARGE for headers over 16 KB', async () => {
    await listen();
    const response = await exchange(`GET /api/agents HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expectEnvelope(response, 431, 'HEADERS_TOO_LARGE');
    expect(response.body.error.details).toBe('the request line and headers must be at most 16 KB');
  });

  it('431 for a URL over 16 KB (Node has no separate URL limit, so never 414)', async () => {
    await listen();
    const response = await exchange(`GET /api/agents?x=${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`);
    expectEnvelope(response, 431, 'HEADERS_TOO_LARGE');
  });

  it('400 INVALID_REQUEST for a malformed request line and for a malformed header', async () => {
    await listen();
    expectEnvelope(await exchange('GARBAGE\r\n\r\n'), 400, 'INVALID_REQUEST');
    expectEnvelope(await exchange('GET /api/agents HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n'), 400, 'INVALID_REQUEST');
  });

  it('400 INVALID_REQUEST naming the header for HTTP/1.1 without Host', async () => {
    await listen();
    const response = await exchange('GET /api/agents HTTP/1.1\r\nConnection: close\r\n\r\n');
    expectEnvelope(response, 400, 'INVALID_REQUEST');
    expect(response.body.error.details).toContain('headers/host');
  });
});

describe('requests the router never sees', () => {
  it('400 INVALID_REQUEST for two Host lines (RFC 9112: Node would keep the first)', async () => {
    await listen();
    const response = await exchange('GET /api/agents HTTP/1.1\r\nHost: a\r\nhost: b\r\nConnection: close\r\n\r\n');
    expectEnvelope(response, 400, 'INVALID_REQUEST');
    expect(response.body.error.details).toBe('headers/host must be sent once');
    expect((await exchange('GET /api/agents HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')).status).toBe(200);
  });

  it('answers a CORS preflight refused for its Host lines in the envelope too (its route is outside the API plugin)', async () => {
    await listen({ corsOrigins: ['https://app.example'] });
    const preflight = 'OPTIONS /api/agents HTTP/1.1\r\nOrigin: https://app.example\r\nAccess-Control-Request-Method: POST\r\nConnection: close\r\n';
    const twice = await exchange(`${preflight}Host: a\r\nhost: b\r\n\r\n`);
    expectEnvelope(twice, 400, 'INVALID_REQUEST');
    expect(twice.body.error.details).toBe('headers/host must be sent once');
    const none = await exchange(`${preflight}\r\n`);
    expectEnvelope(none, 400, 'INVALID_REQUEST');
    expect(none.body.error.details).toBe('headers/host is required (HTTP/1.1)');
    const socket = await open();
    const answered = readAll(socket);
    socket.write(`${preflight}Host: a\r\n\r\n`);
    expect(await answered).toMatch(/^HTTP\/1\.1 204 /);
  });

  it('400 INVALID_REQUEST for two Content-Type lines (Node would keep the first; a proxy may read the last)', async () => {
    await listen();
    const body = '{"characterJson":{"name":"twice"}}';
    const twice = `POST /api/agents HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\ncontent-type: text/html\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`;
    const response = await exchange(twice);
    expectEnvelope(response, 400, 'INVALID_REQUEST');
    expect(response.body.error.details).toBe('headers/content-type must be sent once');
    const once = await exchange(twice.replace('content-type: text/html\r\n', ''));
    expect(once.status).toBe(201);
  });

  it('400 INVALID_REQUEST for a request line of another HTTP version, or none (Node answered them as HTTP/1.1)', async () => {
    await listen();
    for (const line of ['GET /api/agents HTTP/2.0', 'GET /api/agents HTTP/0.9', 'GET /api/agents']) {
      const response = await exchange(`${line}\r\nHost: a\r\nConnection: close\r\n\r\n`);
      expect(response.status, line).toBe(400);
      expect(response.body.error, line).toEqual({ code: 'INVALID_REQUEST', message: expect.any(String), details: expect.stringMatching(/^the request line must end in HTTP\/1.1 or HTTP\/1.0, not HTTP\//) });
    }
    expect((await exchange('GET /api/agents HTTP/1.0\r\n\r\n')).status).toBe(200);
  });

  it('404 NOT_FOUND in the envelope for CONNECT (Node would close the socket without a word)', async () => {
    await listen();
    const response = await exchange('CONNECT 127.0.0.1:80 HTTP/1.1\r\nHost: 127.0.0.1:80\r\n\r\n');
    expectEnvelope(response, 404, 'NOT_FOUND');
    expect(response.headers.connection).toBe('close');
  });
});

describe('bytes that are not HTTP after a request', () => {
  it('answers the request read before them first, then 400, so a write it made is not answered with the 400 alone', async () => {
    await listen();
    const socket = await open();
    const all = readAll(socket);
    const body = JSON.stringify({ characterJson: { name: 'Before the garbage' } });
    socket.write(`POST /api/agents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}GARBAGE\r\n\r\n`);
    const text = await all;
    expect(text.match(/HTTP\/1\.1 \d{3}/g)).toEqual(['HTTP/1.1 201', 'HTTP/1.1 400']);
    expect(text).toContain('"name":"Before the garbage"');
    expect(text).toContain('HPE_INVALID_METHOD');
  });

  it('answers two pipelined requests before the 400 for what follows them, and a write before a CONNECT before its 404', async () => {
    await listen();
    const get = 'GET /api/agents HTTP/1.1\r\nHost: x\r\n\r\n';
    let socket = await open();
    let all = readAll(socket);
    socket.write(`${get}${get}GARBAGE\r\n\r\n`);
    expect((await all).match(/HTTP\/1\.1 \d{3}/g)).toEqual(['HTTP/1.1 200', 'HTTP/1.1 200', 'HTTP/1.1 400']);

    const body = JSON.stringify({ characterJson: { name: 'Before the CONNECT' } });
    socket = await open();
    all = readAll(socket);
    socket.write(`POST /api/agents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n`);
    const text = await all;
    expect(text.match(/HTTP\/1\.1 \d{3}/g)).toEqual(['HTTP/1.1 201', 'HTTP/1.1 404']);
    expect(text).toContain('"name":"Before the CONNECT"');
  });

  it('answers nothing to bytes after a request that asked to close the connection (RFC 9112: they are no request)', async () => {
    await listen();
    const socket = await open();
    const all = readAll(socket);
    socket.write('GET /api/agents HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /api/agents HTTP/1.1\r\nHost: x\r\n\r\n');
    expect((await all).match(/HTTP\/1\.1 \d{3}/g)).toEqual(['HTTP/1.1 200']);
  });
});

describe('HTTP as clients and proxies speak it', () => {
  it('serves a request whose Expect it does not know (Node answered a bare 417)', async () => {
    await listen();
    const unknown = await exchange('GET /api/agents HTTP/1.1\r\nHost: x\r\nExpect: foo\r\nConnection: close\r\n\r\n');
    expect(unknown.status).toBe(200);
    expect(unknown.body).toEqual({ success: true, data: { agents: [] } });
  });

  it('400 INVALID_REQUEST naming the header for a Host that is no host[:port]', async () => {
    await listen();
    for (const host of ['a b', 'user@example.com', 'example.com:80x']) {
      const response = await exchange(`GET /api/agents HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      expectEnvelope(response, 400, 'INVALID_REQUEST');
      expect(response.body.error.details).toBe('headers/host must be a host name or address, with an optional :port');
    }
    expect((await exchange('GET /api/agents HTTP/1.1\r\nHost: [::1]:3000\r\nConnection: close\r\n\r\n')).status).toBe(200);
  });

  it('415 for a transfer coding other than chunked, which Node passes on undecoded', async () => {
    await listen();
    const body = JSON.stringify({ characterJson: { name: 'Coded' } });
    const chunked = `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;
    const response = await exchange(`POST /api/agents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n${chunked}`);
    expectEnvelope(response, 415, 'UNSUPPORTED_MEDIA_TYPE');
    expect(response.body.error.details).toMatch(/^transfer-encoding gzip, chunked is not supported/);
    const plain = await exchange(`POST /api/agents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunked}`);
    expect(plain.status).toBe(201);
  });

  it('404 NOT_FOUND for a body sent to a route that does not exist, whatever the body (it was judged first)', async () => {
    await listen();
    for (const [contentType, body] of [['', '{}'], ['text/plain', 'hello'], ['application/json', '{bad']]) {
      const type = contentType ? `Content-Type: ${contentType}\r\n` : '';
      expectEnvelope(await exchange(`PUT /api/agents HTTP/1.1\r\nHost: x\r\n${type}Content-Length: ${body!.length}\r\nConnection: close\r\n\r\n${body}`), 404, 'NOT_FOUND');
    }
    // Over the size limit too (Fastify judges its length before any parser sees it), as a Content-Length or chunked.
    const large = `{"name":"${'x'.repeat(BODY_LIMIT_BYTES)}"}`;
    for (const path of ['/nope', '/api/agents']) {
      const sized = await exchange(`PUT ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${large.length}\r\nConnection: close\r\n\r\n${large}`);
      expectEnvelope(sized, 404, 'NOT_FOUND');
      expect(sized.body.error.details).toBe(`PUT ${path} does not exist`);
      const chunked = `${large.length.toString(16)}\r\n${large}\r\n0\r\n\r\n`;
      expectEnvelope(await exchange(`PUT ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunked}`), 404, 'NOT_FOUND');
    }
    // The path it names is without its query (which may carry anything, a token say).
    const queried = await exchange(`GET /nope?token=secret HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    expectEnvelope(queried, 404, 'NOT_FOUND');
    expect(queried.body.error.details).toBe('GET /nope does not exist');
    // A route that exists still refuses it: 413.
    expectEnvelope(await exchange(`POST /api/agents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${large.length}\r\nConnection: close\r\n\r\n${large}`), 413, 'PAYLOAD_TOO_LARGE');
  });
});

describe('request timeouts', () => {
  it('408 REQUEST_TIMEOUT for a body that stops arriving', async () => {
    await listen();
    const socket = await open();
    const received = readAll(socket);
    socket.write('POST /api/agents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{');
    expectEnvelope(parseResponse(await received), 408, 'REQUEST_TIMEOUT');
  });

  it('408 REQUEST_TIMEOUT for headers that stop arriving', async () => {
    await listen();
    const socket = await open();
    const received = readAll(socket);
    socket.write('GET /api/agents HTTP/1.1\r\nHost: x\r\n');
    expectEnvelope(parseResponse(await received), 408, 'REQUEST_TIMEOUT');
  });
});

describe('while the server closes', () => {
  it('a request completing on an open connection gets 503 SERVICE_UNAVAILABLE with Connection: close', async () => {
    await listen();
    const socket = await open();
    const received = readAll(socket);
    socket.write('GET /api/agents HTTP/1.1\r\nHost: x\r\n'); // in progress: not an idle socket
    await new Promise((resolve) => setTimeout(resolve, 50));
    const closed = app!.close();
    await new Promise((resolve) => setTimeout(resolve, 50));
    socket.write('\r\n');
    const response = parseResponse(await received);
    expectEnvelope(response, 503, 'SERVICE_UNAVAILABLE');
    expect(response.headers.connection).toBe('close');
    expect(response.headers['retry-after']).toBe('1');
    await closed;
    app = undefined;
  });
});

describe('pipelined requests', () => {
  it('answers them all, in order, to a client that reads, each carried out once (3,000 writes)', async () => {
    await listen();
    const body = JSON.stringify({ characterJson: { name: 'Piped' } });
    const create = `POST /api/agents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    const socket = await open();
    const all = readAll(socket);
    socket.write(create.repeat(3000) + 'GET /api/agents HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    const text = await all;
    expect(text.match(/HTTP\/1\.1 201 Created\r\n/g)).toHaveLength(3000);
    expect(text).toMatch(/HTTP\/1\.1 200 OK\r\n[^]*$/);
    expect((await app!.inject({ method: 'GET', url: '/api/agents' })).json().data.agents).toHaveLength(3000);
  });

  it('carries a pipelined request out only once the answer before it is written: a client that does not read holds back the rest, not the server\'s memory', async () => {
    await listen();
    const responses: ServerResponse[] = [];
    app!.server.on('request', (_request: unknown, response: ServerResponse) => responses.push(response));
    const answered = () => responses.filter((response) => response.writableEnded).length;
    const socket = await open();
    socket.pause();
    socket.on('error', () => undefined);
    socket.write('GET /openapi.yaml HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(300)); // 300 answers of 100 KB: 30 MB
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(responses).toHaveLength(300); // all read by Node at once
    expect(answered()).toBeLessThan(150); // what the socket's buffers take, not all 300
    expect((await fetch(`http://127.0.0.1:${port}/api/agents`)).status).toBe(200);
    // Read now: every answer comes, in order.
    // Counted as the chunks come (not a regex over 30 MB at each check, which starved this
    // process's own reading on a loaded machine); a status line cut between two chunks is
    // found in the next one with the 16 characters kept, too few to hold a whole one.
    const STATUS_LINE = /HTTP\/1\.1 200 OK\r\n/g;
    let statusLines = 0;
    let kept = '';
    socket.on('data', (chunk: Buffer) => {
      const text = kept + chunk.toString('latin1');
      statusLines += (text.match(STATUS_LINE) ?? []).length;
      kept = text.slice(-16);
    });
    socket.resume();
    await until('every answer has come', () => statusLines === 300, { everyMs: 10 });
    expect(answered()).toBe(301); // and the other client's
    socket.destroy();
  });
});
