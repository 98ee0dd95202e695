// Servers for the conformance suite to test: ours in-process on a temporary database
// (optionally with a clock that runs faster than the wall clock, so that sessions
// expire within a test), and a proxy in front of it that injects one fault on the wire.
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, createServer, type IncomingMessage, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { buildApp } from '../../src/app.js';
import { type Clock, systemClock } from '../../src/domain/clock.js';
import { createMetrics } from '../../src/ops/metrics.js';
import { openSqliteStore } from '../../src/storage/sqlite/sqlite-store.js';
import type { Store } from '../../src/storage/store.js';
import { createSweeper } from '../../src/sweeper.js';

export interface Target {
  url: string;
  databasePath: string;
  close(): Promise<void>;
}

/** A clock `speed` times faster than the wall clock, from now on. */
export function fastClock(speed: number): Clock {
  const start = Date.now();
  return { now: () => start + Math.floor((Date.now() - start) * speed) };
}

export async function serveOurs(options: { clock?: Clock } = {}): Promise<Target> {
  const directory = mkdtempSync(join(tmpdir(), 'sessions-api-conformance-'));
  const databasePath = join(directory, 'sessions.db');
  const clock = options.clock ?? { now: () => Date.now() };
  const store = openSqliteStore(databasePath);
  const sweeper = createSweeper({ store, clock, retentionMs: 3_600_000, intervalMs: 3_600_000, batchSize: 100 });
  // Wired as `npm start` wires it: /metrics is on.
  // No agent answers here: a message sent with transport http or sse gives up on its reply after 200 ms.
  const app = buildApp({ store, clock, sessionDefaults: {}, retentionMs: 3_600_000, sweeper, agentReplyTimeoutMs: 2000 }, { metrics: createMetrics() });
  await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`,
    databasePath,
    async close() {
      await app.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

/** An app on `store` (a PostgreSQL one, say), wired as `npm start` wires it (/metrics on), on a free port; its close closes the store. */
export async function serveStore(store: Store): Promise<{ url: string; close(): Promise<void> }> {
  const sweeper = createSweeper({ store, clock: systemClock, retentionMs: 60_000, intervalMs: 60_000, batchSize: 100 });
  const app = buildApp({ store, clock: systemClock, sessionDefaults: {}, retentionMs: 60_000, sweeper }, { metrics: createMetrics() });
  await app.listen({ host: '127.0.0.1', port: 0 });
  return { url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, close: () => app.close() };
}

/**
 * The server's own bookkeeping, not data the suite could delete: the health check's write
 * probe row, and the event log with its webhook attempts, which record every change (a
 * session created and deleted is two events) until EVENT_RETENTION_HOURS.
 */
const SERVER_TABLES = new Set(['health_probe', 'event_log', 'webhook_deliveries']);

/** Row counts of every table, read through a connection of its own. */
export function rowCounts(databasePath: string): Record<string, number> {
  const db = new Database(databasePath, { readonly: true });
  try {
    const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").pluck().all() as string[]).filter(
      (table) => !SERVER_TABLES.has(table),
    );
    return Object.fromEntries(tables.map((table) => [table, db.prepare(`SELECT count(*) FROM "${table}"`).pluck().get() as number]));
  } finally {
    db.close();
  }
}

export interface ProxiedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  /** The parsed JSON body, when there is one. */
  body?: any;
  raw: Buffer;
}

export interface ProxiedAnswer {
  status: number;
  contentType: string;
  /** Parsed JSON (re-serialized when sent on), or text when not JSON. */
  json?: any;
  text: string;
}

export interface Fault {
  /** Changes the request before it goes on (returns the new body), or answers it alone. */
  request?(request: ProxiedRequest): { body: unknown } | ProxiedAnswer | undefined;
  /** Changes the answer before it goes back; undefined leaves it. */
  response?(request: ProxiedRequest, answer: ProxiedAnswer): ProxiedAnswer | undefined;
}

const readAll = async (request: IncomingMessage) => {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
};

export async function faultProxy(upstream: string, fault: Fault): Promise<{ url: string; close(): Promise<void> }> {
  const upstreamAgent = new Agent({ keepAlive: true });
  const server: Server = createServer(async (incoming, outgoing) => {
    try {
      const raw = await readAll(incoming);
      const url = new URL(incoming.url ?? '/', 'http://proxy');
      let body: any;
      try {
        body = raw.length > 0 ? JSON.parse(raw.toString('utf8')) : undefined;
      } catch {
        body = undefined;
      }
      const request: ProxiedRequest = { method: incoming.method ?? 'GET', path: url.pathname, query: url.searchParams, body, raw };
      const changed = fault.request?.(request);
      let answer: ProxiedAnswer;
      if (changed && 'status' in changed) {
        answer = changed;
      } else {
        const sent = changed ? Buffer.from(JSON.stringify(changed.body)) : raw;
        const headers: Record<string, string> = {};
        for (const name of ['content-type', 'accept', 'last-event-id']) {
          const value = incoming.headers[name];
          if (typeof value === 'string') headers[name] = value;
        }
        // node:http, not fetch: a run's requests all pass here, and fetch cost twice the CPU.
        const sendsBody = !(request.method === 'GET' || request.method === 'HEAD' || sent.length === 0);
        if (sendsBody) headers['content-length'] = String(sent.length);
        const response = await new Promise<IncomingMessage>((resolve, reject) => {
          const upstreamRequest = httpRequest(`${upstream}${incoming.url}`, { method: request.method, headers, agent: upstreamAgent }, resolve);
          upstreamRequest.on('error', reject);
          outgoing.on('close', () => upstreamRequest.destroy());
          upstreamRequest.end(sendsBody ? sent : undefined);
        });
        // A stream of events goes through as it comes, untouched, until either side closes.
        const contentType = response.headers['content-type'] ?? '';
        if (/^text\/event-stream/.test(contentType)) {
          outgoing.writeHead(response.statusCode ?? 502, { 'content-type': contentType });
          response.on('data', (chunk: Buffer) => outgoing.write(chunk));
          response.on('error', () => undefined);
          await new Promise((resolve) => response.once('close', resolve));
          outgoing.end();
          return;
        }
        const text = (await readAll(response)).toString('utf8');
        let json: any;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        answer = { status: response.statusCode ?? 502, contentType, json, text };
      }
      answer = fault.response?.(request, answer) ?? answer;
      const text = answer.json === undefined ? answer.text : JSON.stringify(answer.json);
      outgoing.writeHead(answer.status, { 'content-type': answer.contentType });
      outgoing.end(text);
    } catch (error) {
      outgoing.writeHead(502, { 'content-type': 'text/plain' });
      outgoing.end(String(error));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        upstreamAgent.destroy();
      }),
  };
}
