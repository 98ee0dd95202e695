// The statements each store runs while the API, the sweeper, the due-event pump and
// webhook delivery do a day's work: every index of the schema is used by one of them (an
// index no statement needs is a B-tree each write pays for nothing), and none of them
// reads a table that grows with the traffic from end to end (a statement without an
// index grows with the data). The statements are taken as they run, not from a list, so
// a new one is checked the day it is added; the plan tests beside each query
// (write-path.test.ts, list-sessions.contract.test.ts, postgres-plans.test.ts) say which
// index each one takes. SQLite: the plan of every statement run. PostgreSQL: the
// database's own counts of index and table scans, with sequential scans turned off (on
// tables this small the planner would scan them whatever the indexes).
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateApiKey, hashApiKey } from '../src/api-keys.js';
import { announce } from '../src/events/due-events.js';
import { openPostgresStore } from '../src/storage/postgres/postgres-store.js';
import { openSqliteStore } from '../src/storage/sqlite/sqlite-store.js';
import type { Store } from '../src/storage/store.js';
import { DEFAULT_RETENTION_MS, startTestApp, type TestApp } from './helpers/test-app.js';
import { MINUTE } from './helpers/fake-clock.js';
import { createTestDatabase } from './helpers/postgres-database.js';
import { until } from './helpers/until.js';

/** Tables whose rows grow with sessions, messages, events and requests. */
const GROWING_TABLES = ['sessions', 'messages', 'event_log', 'idempotency_records', 'webhook_deliveries', 'due_announcements', 'session_counts'];
const GROWING_TABLES_ON_POSTGRES = ['sessions', 'messages', 'events', 'idempotency_records', 'webhook_deliveries', 'session_buckets'];

/**
 * The scans of a growing table the SQLite store makes, each with what bounds it. Any other
 * scan fails the test: give the statement an index, or list it here with its reason.
 */
const LISTED_SCANS: Array<{ sql: RegExp; table: string; why: string }> = [
  { sql: /FROM event_log (WHERE n > 0 )?ORDER BY id DESC LIMIT 1/, table: 'event_log', why: "the log's newest row (a row of no events is only the one a log trimmed to nothing keeps)" },
  { sql: /^SELECT 1 FROM (sessions|event_log) LIMIT 1$/, table: '', why: 'one row: is there any' },
  { sql: /^SELECT id, n, occurred_at AS recorded_at FROM event_log ORDER BY id LIMIT \?$/, table: 'event_log', why: "the trim's oldest rows, as many as its batch" },
  { sql: /FROM idempotency_records ORDER BY seq LIMIT @limit/, table: 'idempotency_records', why: "the trim's oldest records, as many as its batch" },
  {
    sql: /^SELECT sessions\.id, .* FROM sessions WHERE \+expires_at .* ORDER BY created_at DESC, id DESC LIMIT @limit \+ 1 OFFSET @offset$/,
    table: 'sessions',
    why:
      'a listing without agentId or userId: newest first along sessions_by_created, stopping once the page is full; ' +
      'when few sessions have the status asked (status=expired, most of them active), it walks past the others (README, Listing)',
  },
];

type Statement = Database.Statement;
const STATEMENT_METHODS = ['run', 'get', 'all', 'iterate'] as const;

/** The SQL of every statement run on an in-memory database while `work` runs, with the connection it ran on. */
async function statementsRunDuring(work: () => Promise<void>): Promise<Map<string, Database.Database>> {
  const probe = new Database(':memory:');
  const prototype = Object.getPrototypeOf(probe.prepare('SELECT 1')) as Record<string, (...args: unknown[]) => unknown>;
  probe.close();
  const originals = STATEMENT_METHODS.map((name) => [name, prototype[name]!] as const);
  const ran = new Map<string, Database.Database>();
  for (const [name, original] of originals) {
    prototype[name] = function (this: Statement, ...args: unknown[]) {
      if (this.database.name === ':memory:') ran.set(this.source, this.database);
      return original.apply(this, args);
    };
  }
  try {
    await work();
  } finally {
    for (const [name, original] of originals) prototype[name] = original;
  }
  return ran;
}

/** EXPLAIN QUERY PLAN of `sql` on its own connection (temporary tables included), every parameter null. */
function planOf(db: Database.Database, sql: string): string[] {
  const named = [...new Set([...sql.matchAll(/[@:$]([A-Za-z_]\w*)/g)].map((match) => match[1]!))];
  const parameters = named.length > 0 ? [Object.fromEntries(named.map((name) => [name, null]))] : Array((sql.match(/\?/g) ?? []).length).fill(null);
  return (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...parameters) as Array<{ detail: string }>).map((row) => row.detail);
}

/** What the server does in a day, compressed: every operation, the sweeper's passes, the pump and a webhook delivery. */
async function aDayOfWork(t: TestApp, store: Store): Promise<void> {
  const ok = async (request: Parameters<TestApp['request']>[0], status = [200, 201]) => {
    const response = await t.request(request);
    expect(status, `${request.method} ${request.url}: ${response.rawBody}`).toContain(response.status);
    return response.body;
  };
  const agent = async (name: string) => (await ok({ method: 'POST', url: '/api/agents', body: { characterJson: { name } } })).data.character.id as string;
  const [eliza, other] = [await agent('Eliza'), await agent('Other')];
  await ok({ method: 'GET', url: '/api/agents' });
  await ok({ method: 'GET', url: `/api/agents/${eliza}` });

  const users = [randomUUID(), randomUUID()];
  const sessionIds: string[] = [];
  for (const agentId of [eliza, other]) {
    for (const userId of users) sessionIds.push((await ok({ method: 'POST', url: '/api/messaging/sessions', body: { agentId, userId } })).sessionId);
  }
  const keyed = { method: 'POST' as const, url: '/api/messaging/sessions', body: { agentId: eliza, userId: users[0] }, headers: { 'idempotency-key': 'k1' } };
  await ok(keyed);
  await ok(keyed); // replayed
  const [chat] = sessionIds;
  await ok({ method: 'GET', url: `/api/messaging/sessions/${chat}` });
  await ok({ method: 'POST', url: `/api/messaging/sessions/${chat}/heartbeat` });
  await ok({ method: 'POST', url: `/api/messaging/sessions/${chat}/renew` });
  await ok({ method: 'PATCH', url: `/api/messaging/sessions/${chat}/timeout`, body: { timeoutMinutes: 45 } });
  for (let i = 0; i < 3; i++) await ok({ method: 'POST', url: `/api/messaging/sessions/${chat}/messages`, body: { content: `hello ${i}` }, headers: { 'idempotency-key': `m${i}` } });
  const page = await ok({ method: 'GET', url: `/api/messaging/sessions/${chat}/messages?limit=2` });
  await ok({ method: 'GET', url: `/api/messaging/sessions/${chat}/messages?limit=2&before=${page.cursors.before}` });
  await ok({ method: 'GET', url: `/api/messaging/sessions/${chat}/messages?limit=2&after=${page.cursors.before}` });

  for (const filter of ['', `agentId=${eliza}&`, `userId=${users[0]}&`, `agentId=${eliza}&userId=${users[0]}&`]) {
    for (const status of ['active', 'expired', 'all']) {
      const listed = await ok({ method: 'GET', url: `/api/messaging/sessions?${filter}status=${status}&limit=1` });
      if (listed.nextCursor) await ok({ method: 'GET', url: `/api/messaging/sessions?${filter}status=${status}&limit=1&count=false&cursor=${listed.nextCursor}` });
    }
  }
  await ok({ method: 'GET', url: '/api/messaging/sessions/health' });

  const webhook = await ok({ method: 'POST', url: '/api/webhooks', body: { url: 'https://hooks.example.com/a' } });
  await ok({ method: 'GET', url: '/api/webhooks' });
  const [event] = await store.listEvents({ limit: 10 });
  await store.listEvents({ sessionId: chat, limit: 10 });
  await store.listEvents({ agentId: eliza, userId: users[0], limit: 10 });
  await store.lastEventId();
  const now = t.clock.now();
  await store.claimWebhook(webhook.id, 'plans', now, now + 15_000);
  await store.recordDelivery(
    { webhookId: webhook.id, eventId: event!.id, attempt: 1, attemptedAt: now, statusCode: 204 },
    { id: webhook.id, cursor: event!.id, attempts: 0, nextAttemptAt: now },
    'plans',
  );
  await ok({ method: 'GET', url: `/api/webhooks/${webhook.id}/deliveries` });
  await ok({ method: 'DELETE', url: `/api/webhooks/${webhook.id}` });

  const key = generateApiKey();
  await store.insertApiKey({ id: randomUUID(), name: 'ops', keyHash: hashApiKey(key), admin: true, agentIds: [], createdAt: now });
  const withKey = { 'x-api-key': key };
  await ok({ method: 'DELETE', url: `/api/messaging/sessions/${sessionIds[1]}`, headers: withKey });
  await ok({ method: 'DELETE', url: `/api/agents/${other}?force=true`, headers: withKey });
  await store.listApiKeys();

  // Warnings and expiries fall due; then everything is past the retention and purged.
  t.clock.advance(40 * MINUTE);
  while ((await store.announceDue(t.clock.now(), 100, announce)) > 0);
  await t.sweeper.sweep();
  t.clock.advance(DEFAULT_RETENTION_MS + 24 * 60 * MINUTE);
  await t.sweeper.sweep();
  await store.purgeEvents(t.clock.now(), 100);
  await store.revokeApiKey('ops', t.clock.now());
}

describe('the SQLite store, statement by statement', () => {
  let ran: Map<string, Database.Database>;
  let schema: Database.Database;
  let t: TestApp;
  beforeAll(async () => {
    const store = openSqliteStore(':memory:');
    t = await startTestApp({ store });
    ran = await statementsRunDuring(() => aDayOfWork(t, store));
    schema = [...ran.values()][0]!;
  });
  afterAll(() => t?.close());

  it('uses every index of the schema in a statement it runs', () => {
    const indexes = (schema.prepare("SELECT name FROM sqlite_schema WHERE type = 'index'").pluck().all() as string[]).sort();
    const used = new Set([...ran].flatMap(([sql, db]) => planOf(db, sql).flatMap((line) => [...line.matchAll(/ INDEX (\w+)/g)].map((match) => match[1]!))));
    expect(indexes.length).toBeGreaterThan(10);
    expect(indexes.filter((index) => !used.has(index))).toEqual([]);
  });

  it('reads a table that grows only through an index, or in one of the scans listed here with why each is bounded', () => {
    expect(ran.size).toBeGreaterThan(60);
    const seen = new Set<string>();
    const unlisted = [...ran].flatMap(([sql, db]) => {
      const text = sql.replace(/\s+/g, ' ');
      return planOf(db, sql)
        .filter((line) => GROWING_TABLES.includes(/^SCAN (\w+)/.exec(line)?.[1] ?? ''))
        .flatMap((line) => {
          const listed = LISTED_SCANS.find((scan) => scan.sql.test(text) && line.startsWith(`SCAN ${scan.table}`));
          if (listed) seen.add(listed.why);
          return listed ? [] : [`${text.slice(0, 120)} → ${line}`];
        });
    });
    expect(unlisted).toEqual([]);
    // A listed scan no statement makes any more is taken off the list.
    expect(LISTED_SCANS.filter((scan) => !seen.has(scan.why)).map((scan) => scan.why)).toEqual([]);
  });
});

/** Until the admin's is the only connection to its database left. */
async function untilAlone(admin: pg.Client): Promise<void> {
  await until('the other connections end', async () => {
    const { rows } = await admin.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()');
    return rows[0].n === 0;
  });
}

describe('the PostgreSQL store, index by index', { timeout: 60_000 }, () => {
  it('uses every index of the schema, and reads no table that grows but through an index', async () => {
    const database = await createTestDatabase();
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    try {
      await admin.query(`ALTER DATABASE ${new URL(database.url).pathname.slice(1)} SET enable_seqscan = off`);
      // Migrated first, by a store of its own: the migrations' scans (building an index, filling a column) are not the day's.
      await (await openPostgresStore({ url: database.url, poolSize: 1 })).close();
      await untilAlone(admin);
      await admin.query('SELECT pg_stat_reset()');
      const store = await openPostgresStore({ url: database.url, poolSize: 4 });
      const t = await startTestApp({ store });
      try {
        await aDayOfWork(t, store);
      } finally {
        await t.close();
      }
      await untilAlone(admin); // a connection's counts reach the statistics when it ends
      const counts = async () => {
        const indexes = await admin.query<{ name: string; scans: string }>(
          "SELECT indexrelname AS name, idx_scan AS scans FROM pg_stat_user_indexes WHERE schemaname = 'public' AND relname <> 'schema_migrations' ORDER BY 1",
        );
        const tables = await admin.query<{ name: string; scans: string }>("SELECT relname AS name, seq_scan AS scans FROM pg_stat_user_tables WHERE schemaname = 'public' ORDER BY 1");
        return {
          unused: indexes.rows.filter((row) => Number(row.scans) === 0).map((row) => row.name),
          indexes: indexes.rows.length,
          scanned: tables.rows.filter((row) => GROWING_TABLES_ON_POSTGRES.includes(row.name) && Number(row.scans) > 0).map((row) => `${row.name}: ${row.scans}`),
        };
      };
      const seen = await counts();
      expect(seen.indexes).toBeGreaterThan(15);
      expect(seen.unused).toEqual([]);
      expect(seen.scanned).toEqual([]);
    } finally {
      await admin.end();
      await database.drop();
    }
  });
});
