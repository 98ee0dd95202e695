// The server at the edge of its process's resources (X19): file descriptors run out and
// come back, and a heap bounded by --max-old-space-size under loads inside every documented
// limit. The built server (dist/main.js) as a child process, under `prlimit` / NODE_OPTIONS.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { builtFile } from './helpers/built.js';
import { operationFor, responseViolations, specBackend } from './helpers/spec-validator.js';
import { receiver } from './helpers/webhook-receiver.js';
import { until } from './helpers/until.js';

const children: ChildProcess[] = [];
const folders: string[] = [];
const sockets: Socket[] = [];
afterEach(() => {
  for (const socket of sockets.splice(0)) socket.destroy();
  for (const child of children.splice(0)) child.kill('SIGKILL');
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

/** dist/main.js, optionally under `prlimit --nofile=N:N`; resolves with its port once listening. */
async function server({ nofile, env = {} }: { nofile?: number; env?: Record<string, string> }) {
  const folder = mkdtempSync(join(tmpdir(), 'sessions-api-x19-'));
  folders.push(folder);
  const node = [process.execPath, builtFile('main.js')];
  const [command, ...args] = nofile ? ['prlimit', `--nofile=${nofile}:${nofile}`, ...node] : node;
  const child = spawn(command!, args, {
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', DATABASE_PATH: join(folder, 'sessions.db'), HTTP_KEEP_ALIVE_TIMEOUT_SECONDS: '3600', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stderr = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  child.stdout!.resume();
  const port = await new Promise<number>((resolve, reject) => {
    child.stderr!.on('data', (chunk) => {
      stderr += chunk;
      const match = /listening on http:\/\/[^:]+:(\d+)/.exec(stderr);
      if (match) resolve(Number(match[1]));
    });
    void exited.then((code) => reject(new Error(`exited ${code}: ${stderr}`)));
  });
  return { port, child, exited, stderr: () => stderr };
}

/** Requests over one kept-alive connection: it still works when no new connection can be accepted. The API's answers are checked against the spec. */
function client(port: number, agent = new Agent({ keepAlive: true, maxSockets: 1 })) {
  return (method: string, path: string, body?: unknown) =>
    new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method, path, agent, headers: body === undefined ? {} : { 'content-type': 'application/json' } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => (text += chunk));
        res.on('end', () => {
          if (!path.startsWith('/api/')) return resolve({ status: res.statusCode!, text });
          void specBackend().then((api) => {
            const violations = responseViolations(api, operationFor(api, method, path), res.statusCode!, text ? JSON.parse(text) : undefined);
            if (violations.length > 0) reject(new Error(`${method} ${path}: ${violations.join('; ')}`));
            else resolve({ status: res.statusCode!, text });
          }, reject);
        });
      });
      req.on('error', reject);
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });
}

/** Opens event streams until the server accepts no more connections (it closes them unanswered). */
async function exhaustDescriptors(port: number): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    const answered = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => socket.write('GET /api/messaging/sessions/events HTTP/1.1\r\nHost: x\r\n\r\n'));
      sockets.push(socket);
      socket.once('data', () => resolve(true));
      socket.on('error', () => resolve(false));
      socket.once('close', () => resolve(false));
    });
    if (!answered) return;
  }
  throw new Error('the descriptors never ran out');
}

/** Closes the streams, then waits until the server accepts a new connection again. */
async function releaseDescriptors(port: number): Promise<void> {
  for (const socket of sockets.splice(0)) socket.destroy();
  await until('a new connection is answered', () => client(port, new Agent())('GET', '/api/messaging/sessions/health').then((answer) => answer.status === 200, () => false), { everyMs: 50 });
}

const USER = '9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d';

describe('file descriptors run out, then come back', () => {
  it('webhook deliveries recover: once descriptors are free, deliveries go through again (one EMFILE at the first failed every later one)', async () => {
    const hook = await receiver(() => 204);
    try {
      const { port } = await server({ nofile: 64 });
      const call = client(port);
      const agentId = JSON.parse((await call('POST', '/api/agents', { characterJson: { name: 'a' } })).text).data.character.id;
      expect((await call('POST', '/api/webhooks', { url: hook.url })).status).toBe(201);
      await exhaustDescriptors(port);
      // The first delivery (undici loaded on first use) meets EMFILE.
      const created = await call('POST', '/api/messaging/sessions', { agentId, userId: USER });
      expect(created.status).toBe(201);
      const [webhook] = JSON.parse((await call('GET', '/api/webhooks')).text).webhooks;
      await until('the first attempt failed', async () => JSON.parse((await call('GET', `/api/webhooks/${webhook.id}/deliveries`)).text).deliveries.length > 0, { everyMs: 100 });
      await releaseDescriptors(port);
      // A webhook made now has no backoff to wait for: its first attempt comes with the next
      // event. Before the fix every attempt, of every webhook, failed with the cached EMFILE.
      const second = await receiver(() => 204);
      try {
        expect((await call('POST', '/api/webhooks', { url: second.url })).status).toBe(201);
        expect((await call('POST', '/api/messaging/sessions', { agentId, userId: USER })).status).toBe(201);
        await until('a delivery went through', () => second.received.length > 0, { ms: 15_000, everyMs: 50 });
      } finally {
        await second.close();
      }
    } finally {
      await hook.close();
    }
  }, 40_000);

  it('GET /docs/ recovers once descriptors are free (its first load failed with EMFILE)', async () => {
    const { port } = await server({ nofile: 64 });
    const call = client(port);
    expect((await call('GET', '/api/messaging/sessions/health')).status).toBe(200);
    await exhaustDescriptors(port);
    expect((await call('GET', '/docs/')).status).toBe(500); // its worker cannot start, or cannot open its files
    await releaseDescriptors(port);
    const after = await client(port, new Agent())('GET', '/docs/');
    expect(after.status).toBe(200);
  }, 30_000);
});

describe('the docs pages made with a few descriptors left (R50)', () => {
  // A few left, not none: the load failed in Scalar's dependencies, which Node then kept as
  // failed for the process's life; each new attempt kept another 5 MB copy of its script.
  it.each([2])('with %i free at the first load, the next loads make them', (free) => {
    const probe = fileURLToPath(new URL('./helpers/docs-pages-probe.mjs', import.meta.url));
    const run = spawnSync('prlimit', ['--nofile=64:64', process.execPath, probe, builtFile('ops/docs.js'), String(free)], { encoding: 'utf8' });
    const { first, later } = JSON.parse(run.stdout) as { first: string; later: string[] };
    expect(first).not.toBe('ok 2');
    expect(later).toEqual(['ok 2', 'ok 2', 'ok 2']);
  });
});

describe('a bounded heap, loads inside every documented limit', () => {
  // A message at its documented maxima: content 4,000 characters, metadata 10 KB, 20 attachments at their maximum lengths.
  const message = {
    content: '\u20ac'.repeat(4000),
    metadata: { m: '\u00e9'.repeat(4000) },
    attachments: Array.from({ length: 20 }, () => ({ type: 't'.repeat(100), url: `https://e.example/${'u'.repeat(2020)}`, name: 'n'.repeat(256), mimeType: 'm'.repeat(255), size: 1 })),
  };

  // (A page of messages ends at 1 MiB: messages.contract.test.ts; 30 pages of 100 such messages at once ran a 128 MB heap out before.)
  async function sessionWithMessages(port: number, count: number): Promise<string> {
    const call = client(port, new Agent({ keepAlive: true, maxSockets: 10 }));
    const agentId = JSON.parse((await call('POST', '/api/agents', { characterJson: { name: 'a' } })).text).data.character.id;
    const sessionId = JSON.parse((await call('POST', '/api/messaging/sessions', { agentId, userId: USER })).text).sessionId;
    for (let i = 0; i < count; i += 10) {
      const sent = await Promise.all(Array.from({ length: 10 }, () => call('POST', `/api/messaging/sessions/${sessionId}/messages`, message)));
      expect(sent.map((answer) => answer.status)).toEqual(Array(10).fill(201));
    }
    return sessionId;
  }

  /** Reads an event stream until `events` frames came (a replay), then leaves. */
  function replay(port: number, sessionId: string, events: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: `/api/messaging/sessions/${sessionId}/events?lastEventId=0`, agent: false }, (res) => {
        let seen = 0;
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          seen += chunk.split('\nevent: ').length - 1;
          if (seen >= events) {
            req.destroy();
            resolve(res.statusCode!);
          }
        });
        res.on('error', () => undefined);
        res.on('close', () => resolve(seen >= events ? res.statusCode! : -seen));
      });
      req.on('error', reject);
      req.end();
    });
  }

  it('four replays at once of a session with 250 maximal messages do not kill a server with a 64 MB heap', async () => {
    const { port, exited, stderr } = await server({ env: { NODE_OPTIONS: '--max-old-space-size=64' } });
    const sessionId = await sessionWithMessages(port, 250);
    let died = false;
    void exited.then(() => (died = true));
    const statuses = await Promise.all(Array.from({ length: 4 }, () => replay(port, sessionId, 250).catch((error) => String(error))));
    expect(died ? stderr().slice(-600) : 'alive').toBe('alive');
    expect(statuses).toEqual([200, 200, 200, 200]);
  }, 60_000);
});
