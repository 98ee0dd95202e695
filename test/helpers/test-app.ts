// An app on an in-memory (or given) database with a fake clock, whose every response is
// checked against the spec twice: the handler's own payload before serialization (the
// serializer would strip unknown fields and coerce types, hiding handler bugs), and
// the bytes the client receives.
import type { PrivateAddresses } from '../../src/events/private-addresses.js';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { OpenAPIBackend } from 'openapi-backend';
import { expect } from 'vitest';
import { type AppOptions, buildApp } from '../../src/app.js';
import { type AgentReplies, createAgentReplies } from '../../src/events/agent-replies.js';
import { createEventFeed } from '../../src/events/event-feed.js';
import type { AccessOptions } from '../../src/http/security.js';
import type { TimeoutConfigInput } from '../../src/domain/timeout-policy.js';
import type { Metrics } from '../../src/ops/metrics.js';
import { openSqliteStore } from '../../src/storage/sqlite/sqlite-store.js';
import type { Store } from '../../src/storage/store.js';
import { createSweeper, type Sweeper } from '../../src/sweeper.js';
import { type FakeClock, fakeClock } from './fake-clock.js';
import { operationFor, responseViolations, specBackend } from './spec-validator.js';

const TRACE_HEADER = 'x-test-trace';

export interface TestRequest {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE' | 'PUT';
  url: string;
  /** An object is sent as JSON; a string or a Buffer is sent as it is. */
  body?: unknown;
  headers?: Record<string, string>;
  /** The router answers before any route (or hook) runs: there is no handler payload to check. */
  answeredByRouter?: boolean;
  /** The client's address (default 127.0.0.1). */
  remoteAddress?: string;
}

export interface TestResponse<B = any> {
  status: number;
  body: B;
  rawBody: string;
  headers: Record<string, unknown>;
}

export const DEFAULT_RETENTION_MS = 1440 * 60_000;

export interface TestApp {
  clock: FakeClock;
  store: Store;
  /** Never started: a test runs a pass with `sweeper.sweep()` when it wants one. */
  sweeper: Sweeper;
  databasePath: string;
  /** The messages waiting for their agent's reply (transport http or sse). */
  replies: AgentReplies;
  /** Rows per table, read through a connection of its own: what is really stored. */
  rowCounts(): Record<string, number>;
  request<B = any>(request: TestRequest): Promise<TestResponse<B>>;
  /**
   * A GET whose answer need not be JSON (the spec as YAML, metrics): its status must be
   * documented and its body (parsed when JSON) valid for it; the body comes back as text.
   */
  requestText(url: string, headers?: Record<string, string>): Promise<{ status: number; text: string; headers: Record<string, unknown> }>;
  /** Serves the app on 127.0.0.1 (any free port) for a real client, such as a stream's; returns its base URL. */
  listen(): Promise<string>;
  close(): Promise<void>;
}

export interface TestAppOptions {
  databasePath?: string;
  clock?: FakeClock;
  sessionDefaults?: TimeoutConfigInput;
  store?: Store;
  retentionMs?: number;
  sweepBatchSize?: number;
  /** API keys, rate limit, CORS: all off unless given. */
  access?: AccessOptions;
  /** Wired as `npm start` wires it: the store timed, the sweeper observed, /metrics served. */
  metrics?: Metrics;
  app?: Omit<AppOptions, 'metrics'>;
  /** How long transport http / sse waits for the agent's reply (default 30 s). */
  agentReplyTimeoutMs?: number;
  /** WEBHOOK_PRIVATE_ADDRESSES (default allow). */
  webhookPrivateAddresses?: PrivateAddresses;
  webhooksPerKeyMax?: number;
}

export async function startTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const api: OpenAPIBackend = await specBackend();
  const clock = options.clock ?? fakeClock();
  const ownDirectory = options.databasePath ? undefined : mkdtempSync(join(tmpdir(), 'sessions-api-test-'));
  const databasePath = options.databasePath ?? join(ownDirectory!, 'sessions.db');
  const { metrics } = options;
  const plainStore = options.store ?? openSqliteStore(databasePath);
  const store = metrics ? metrics.instrumentStore(plainStore) : plainStore;
  const retentionMs = options.retentionMs ?? DEFAULT_RETENTION_MS;
  const sweeper = createSweeper({ store, clock, retentionMs, intervalMs: 60_000, batchSize: options.sweepBatchSize ?? 500, batchBudgetMs: Infinity, ...(metrics ? { onSweep: metrics.observeSweep } : {}) });
  const replies = createAgentReplies(createEventFeed(store));
  const replyTimeout = options.agentReplyTimeoutMs === undefined ? {} : { agentReplyTimeoutMs: options.agentReplyTimeoutMs };
  const privateAddresses = options.webhookPrivateAddresses === undefined ? {} : { webhookPrivateAddresses: options.webhookPrivateAddresses };
  const webhookCap = options.webhooksPerKeyMax === undefined ? {} : { webhooksPerKeyMax: options.webhooksPerKeyMax };
  const app = buildApp({ store, clock, sessionDefaults: options.sessionDefaults ?? {}, retentionMs, sweeper, replies, ...replyTimeout, ...privateAddresses, ...webhookCap }, { access: options.access, ...options.app, ...(metrics ? { metrics } : {}) });

  const handlerChecks = new Map<string, string[]>();
  app.addHook('preSerialization', async (request, reply, payload) => {
    const operationId = (request.routeOptions.schema as { operationId?: string } | undefined)?.operationId;
    const trace = String(request.headers[TRACE_HEADER]);
    handlerChecks.set(trace, responseViolations(api, operationId, reply.statusCode, payload));
    return payload;
  });
  // A handler that sends JSON it already holds as a string (getSessionMessages sends stored
  // message views) skips preSerialization: its payload is checked parsed.
  app.addHook('onSend', async (request, reply, payload) => {
    const operationId = (request.routeOptions.schema as { operationId?: string } | undefined)?.operationId;
    const trace = String(request.headers[TRACE_HEADER]);
    if (operationId && !handlerChecks.has(trace) && typeof payload === 'string' && /^application\/json/.test(String(reply.getHeader('content-type')))) {
      handlerChecks.set(trace, responseViolations(api, operationId, reply.statusCode, JSON.parse(payload)));
    }
    return payload;
  });
  await app.ready();

  return {
    clock,
    store,
    sweeper,
    databasePath,
    replies,
    rowCounts() {
      const db = new Database(databasePath, { readonly: true });
      try {
        const tables = db.prepare<[], { name: string }>("SELECT name FROM sqlite_schema WHERE type = 'table'").all();
        return Object.fromEntries(tables.map(({ name }) => [name, (db.prepare(`SELECT count(*) AS n FROM "${name}"`).get() as { n: number }).n]));
      } finally {
        db.close();
      }
    },
    async request({ method, url, body, headers = {}, answeredByRouter = false, remoteAddress }) {
      const trace = randomUUID();
      const isJson = body !== undefined && typeof body !== 'string' && !Buffer.isBuffer(body);
      const response = await app.inject({
        method,
        url,
        payload: isJson ? JSON.stringify(body) : (body as string | Buffer | undefined),
        headers: { ...(isJson ? { 'content-type': 'application/json' } : {}), ...headers, [TRACE_HEADER]: trace },
        ...(remoteAddress !== undefined && { remoteAddress }),
      });
      const context = `${method} ${url.slice(0, 120)} → ${response.statusCode}`;
      expect(response.headers['content-type'], context).toMatch(/^application\/json/);
      const parsed = JSON.parse(response.body);
      if (answeredByRouter) {
        expect(handlerChecks.has(trace), `${context}: expected the router to answer`).toBe(false);
      } else {
        expect(handlerChecks.get(trace), `${context}: the handler's payload was not checked`).toBeDefined();
        expect(handlerChecks.get(trace), `${context}: handler payload`).toEqual([]);
      }
      expect(responseViolations(api, operationFor(api, method, url), response.statusCode, parsed), context).toEqual([]);
      return { status: response.statusCode, body: parsed, rawBody: response.body, headers: response.headers };
    },
    async requestText(url, headers = {}) {
      const response = await app.inject({ method: 'GET', url, headers });
      const isJson = /^application\/json/.test(String(response.headers['content-type']));
      const body = isJson ? JSON.parse(response.body) : response.body;
      expect(responseViolations(api, operationFor(api, 'GET', url), response.statusCode, body), `GET ${url} → ${response.statusCode}`).toEqual([]);
      return { status: response.statusCode, text: response.body, headers: response.headers };
    },
    async listen() {
      return app.listen({ host: '127.0.0.1', port: 0 });
    },
    async close() {
      await app.close();
      if (ownDirectory) rmSync(ownDirectory, { recursive: true, force: true });
    },
  };
}
