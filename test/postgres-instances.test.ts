// The server on PostgreSQL (DATABASE_URL): a real process starts on it (or refuses to,
// with a clear message, when the database cannot be reached), and three instances on
// one database migrate once and share every write without losing one. The instances
// are in-process stores, each with its own pool (two serve HTTP as apps): what they
// share is the database, as separate processes would.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { announce } from '../src/events/due-events.js';
import { agentEvent } from '../src/events/event-records.js';
import { createWebhookDispatcher } from '../src/events/webhook-delivery.js';
import { migrations } from '../src/storage/postgres/migrations.js';
import { openPostgresStore } from '../src/storage/postgres/postgres-store.js';
import type { Store } from '../src/storage/store.js';
import { createTestDatabase, postgresAdminUrl, type TestDatabase, withClient, withTestDatabase } from './helpers/postgres-database.js';
import { builtFile } from './helpers/built.js';
import { cleanUpServerProcesses, fetchChecked, startServer } from './helpers/server-process.js';
import { fakeClock, MINUTE, T0 } from './helpers/fake-clock.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';
import { agentRecord, sessionRecord } from './store/records.js';
import { until } from './helpers/until.js';
import { createSession, registerAgent } from './helpers/fixtures.js';

const USER = '5f1c1c8e-4a3b-4c7d-9e2f-0a1b2c3d4e5f';

/** Until `instances` listening connections on the database of `admin` have run their LISTEN. */
const untilListening = (admin: pg.Client, instances: number) =>
  until(`${instances} instance(s) listen`, async () => {
    const { rows } = await admin.query(
      "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'sessions-api-listen' AND state = 'idle' AND query LIKE 'LISTEN%'",
    );
    return rows.length === instances;
  });

describe('the server on PostgreSQL', { timeout: 60_000 }, () => {
  let database: TestDatabase;
  const apps: TestApp[] = [];
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterEach(async () => {
    cleanUpServerProcesses();
    for (const app of apps.splice(0)) await app.close();
  });
  afterAll(() => database?.drop());

  it('a process serves from DATABASE_URL; an unreachable database stops startup, saying so without the password', async () => {
    const server = startServer({ DATABASE_URL: database.url });
    const unreachable = startServer({ DATABASE_URL: 'postgres://app:s3cret@127.0.0.1:1/sessions' });
    const url = await server.listening;
    expect(server.output().stderr).toContain(`(database: ${database.url})`);
    const agentId = randomUUID();
    expect((await fetchChecked(url, 'POST', '/api/agents', { characterJson: { id: agentId, name: 'Eliza' } })).status).toBe(201);
    expect((await fetchChecked(url, 'GET', `/api/agents/${agentId}`)).status).toBe(200);
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);

    expect(await unreachable.exited).toBe(1);
    const { stderr } = unreachable.output();
    expect(stderr).toContain('sessions-api: cannot open the database postgres://app:***@127.0.0.1:1/sessions: connect ECONNREFUSED');
    expect(stderr).not.toContain('s3cret');
  });

  it('connects through a Unix socket, its folder named in the URL as libpq has it (?host=, or the host percent-encoded)', () =>
    withClient(database.url, async (admin) => {
      // admin is over TCP
      const folder = (await admin.query<{ unix_socket_directories: string }>('SHOW unix_socket_directories')).rows[0]!.unix_socket_directories;
      const { port, pathname } = new URL(database.url);
      for (const url of [`postgres:///${pathname.slice(1)}?host=${folder}&port=${port}&user=postgres`, `postgres://postgres@${encodeURIComponent(folder)}:${port}${pathname}`]) {
        const store = await openPostgresStore(loadConfig({ DATABASE_URL: url }).postgres!);
        try {
          const agent = agentRecord();
          expect(await store.insertAgent(agent), url).toBe(true);
          expect(await store.getAgent(agent.id)).toEqual(agent);
          // Its connections came through the socket: they have no client address.
          const { rows } = await admin.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend' AND client_addr IS NULL");
          expect(rows[0].n, url).toBeGreaterThan(0);
        } finally {
          await store.close();
        }
      }
    }));

  it('a database a newer server migrated is refused at open, and left as it was', () =>
    withTestDatabase(async (fresh, client) => {
      await (await openPostgresStore({ url: fresh.url, poolSize: 1 })).close();
      const next = migrations.length + 1;
      await client.query('INSERT INTO schema_migrations (version) VALUES ($1)', [next]);
      await expect(openPostgresStore({ url: fresh.url, poolSize: 1 })).rejects.toThrow(`database schema version ${next} is newer than this server (${migrations.length})`);
      const { rows } = await client.query<{ version: number }>('SELECT max(version) AS version FROM schema_migrations');
      expect(rows[0]!.version).toBe(next);
    }));

  it("another application's tables: beside them the schema is made; a name collision is refused, naming it, and changes nothing", () =>
    withTestDatabase((shared, sharedClient) =>
      withTestDatabase(async (colliding, collidingClient) => {
        await sharedClient.query('CREATE TABLE orders (id integer PRIMARY KEY)');
        await (await openPostgresStore({ url: shared.url, poolSize: 1 })).close();
        expect((await sharedClient.query('SELECT max(version) AS version FROM schema_migrations')).rows[0].version).toBe(migrations.length);

        await collidingClient.query('CREATE TABLE sessions (ref text)');
        await expect(openPostgresStore({ url: colliding.url, poolSize: 1 })).rejects.toThrow(
          `migration 1 of this server's schema cannot run: relation "sessions" already exists, made by something else; give the server a database (or a search_path schema) of its own; nothing was changed`,
        );
        const tables = await collidingClient.query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name");
        expect(tables.rows).toEqual([{ table_name: 'sessions' }]);
        const columns = await collidingClient.query("SELECT column_name FROM information_schema.columns WHERE table_name = 'sessions'");
        expect(columns.rows).toEqual([{ column_name: 'ref' }]);
        // The way out the message names: a schema of its own, by search_path in the URL.
        await collidingClient.query('CREATE SCHEMA sessions_api');
        const own = await openPostgresStore({ url: `${colliding.url}?options=${encodeURIComponent('-c search_path=sessions_api')}`, poolSize: 1 });
        const agent = agentRecord();
        expect(await own.insertAgent(agent)).toBe(true);
        await own.close();
        expect((await collidingClient.query('SELECT count(*)::int AS n FROM sessions_api.agents')).rows).toEqual([{ n: 1 }]);
      }),
    ));

  it("another tool's schema_migrations (Rails', golang-migrate's) is not taken for this server's: refused, naming both, and nothing changes", () =>
    withTestDatabase(async (database, admin) => {
      for (const [made, columns] of [
        ['CREATE TABLE schema_migrations (version character varying PRIMARY KEY); INSERT INTO schema_migrations VALUES (\'20240101000000\')', 'version character varying'],
        ['CREATE TABLE schema_migrations (version bigint PRIMARY KEY, dirty boolean NOT NULL); INSERT INTO schema_migrations VALUES (10, false)', 'version bigint, dirty boolean'],
      ]) {
        await admin.query(`DROP TABLE IF EXISTS schema_migrations; ${made}`);
        await expect(openPostgresStore({ url: database.url, poolSize: 1 })).rejects.toThrow(
          `the schema_migrations table on the search path is not this server's (${columns}; this server's has version integer, applied_at timestamp with time zone): another application's? give the server a database (or a search_path schema) of its own; nothing was changed`,
        );
        const tables = await admin.query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'");
        expect(tables.rows).toEqual([{ table_name: 'schema_migrations' }]);
      }
    }));

  it("a schema_migrations of this server's shape whose tables are missing: refused, saying so", () =>
    withTestDatabase(async (database, admin) => {
      await admin.query('CREATE TABLE schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now()); INSERT INTO schema_migrations (version) VALUES (1), (2), (3)');
      await expect(openPostgresStore({ url: database.url, poolSize: 1 })).rejects.toThrow(
        /^migration 4 of this server's schema cannot run: relation "\w+" does not exist, though schema_migrations says the versions before it were applied: a table of this schema was dropped, or that schema_migrations is not this server's; nothing was changed$/,
      );
    }));

  it('a search_path naming a schema not made yet: refused, saying to create it', () =>
    withTestDatabase(async (database) => {
      await expect(openPostgresStore({ url: `${database.url}?options=${encodeURIComponent('-c search_path=not_made')}`, poolSize: 1 })).rejects.toThrow(
        "this server's schema cannot be made: no schema has been selected to create in; the search_path names no schema that exists: create it first (CREATE SCHEMA …); nothing was changed",
      );
    }));

  it('a deployment in a schema of its own beside one in public: each has its own schema_migrations and tables, found on its search_path', () =>
    withTestDatabase(async (shared, admin) => {
      await (await openPostgresStore({ url: shared.url, poolSize: 1 })).close();
      await admin.query('CREATE SCHEMA own');
      const own = await openPostgresStore({ url: `${shared.url}?options=${encodeURIComponent('-c search_path=own')}`, poolSize: 1 });
      try {
        expect(await own.insertAgent(agentRecord())).toBe(true);
      } finally {
        await own.close();
      }
      const versions = await admin.query('SELECT (SELECT max(version) FROM public.schema_migrations) AS public, (SELECT max(version) FROM own.schema_migrations) AS own');
      expect(versions.rows).toEqual([{ public: migrations.length, own: migrations.length }]);
      const agents = await admin.query('SELECT (SELECT count(*)::int FROM public.agents) AS public, (SELECT count(*)::int FROM own.agents) AS own');
      expect(agents.rows).toEqual([{ public: 0, own: 1 }]);
    }));

  it("two deployments in two schemas of one database: a key stored in one does not turn keys on in the other (the notification is database-wide)", () =>
    withTestDatabase(async (shared, admin) => {
      const inSchema = (schema: string) => `${shared.url}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
      await admin.query('CREATE SCHEMA one; CREATE SCHEMA two');
      const [first, second] = await Promise.all([openPostgresStore({ url: inSchema('one'), poolSize: 1 }), openPostgresStore({ url: inSchema('two'), poolSize: 1 })]);
      try {
        const listening = async () =>
          (await admin.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'sessions-api-listen' AND query LIKE 'LISTEN%'")).rows[0].n;
        await until('both listen', async () => (await listening()) === 2, { ms: 5000 });
        expect(await second.hasApiKeys()).toBe(false);
        await admin.query('LISTEN sessions_api_keys');
        const heard = new Promise((resolve) => admin.once('notification', resolve));
        expect(await first.insertApiKey({ id: randomUUID(), name: 'bot', keyHash: 'h1', admin: true, agentIds: [], createdAt: T0 })).toBe(true);
        await heard; // sent to every listener of the database, the second's too
        await admin.query('SELECT pg_sleep(0.2)');
        expect(await first.hasApiKeys()).toBe(true);
        expect(await second.hasApiKeys()).toBe(false);
      } finally {
        await Promise.all([first.close(), second.close()]);
      }
    }));

  it('a user with only the rights to read and write serves a database another migrated; at a first start it is told what right it lacks, and nothing changes', async () => {
    const role = `app_${randomUUID().replaceAll('-', '')}`;
    const asRole = (url: string) => Object.assign(new URL(url), { username: role }).toString();
    try {
      await withTestDatabase(async (migrated, admin) => {
        await (await openPostgresStore({ url: migrated.url, poolSize: 1 })).close();
        await admin.query(`CREATE ROLE ${role} LOGIN`);
        await admin.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${role}`);
        await admin.query(`GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO ${role}`);
        const store = await openPostgresStore({ url: asRole(migrated.url), poolSize: 1 });
        try {
          const agent = agentRecord();
          expect(await store.insertAgent(agent)).toBe(true);
          expect(await store.getAgent(agent.id)).toEqual(agent);
        } finally {
          await store.close();
        }
      });
      await withTestDatabase(async (fresh, other) => {
        await expect(openPostgresStore({ url: asRole(fresh.url), poolSize: 1 })).rejects.toThrow(
          "this server's schema cannot be made: permission denied for schema public; the database user needs the right to create tables there on first start and on upgrades (GRANT CREATE ON SCHEMA …); nothing was changed",
        );
        expect((await other.query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")).rows).toEqual([]);
      });
    } finally {
      await withClient(postgresAdminUrl(), (cluster) => cluster.query(`DROP ROLE IF EXISTS ${role}`));
    }
  });

  it('three instances on one database: migrated once, every write seen by all, no update lost', async () => {
    const fresh = await createTestDatabase();
    try {
      const stores = await Promise.all([0, 1, 2].map(() => openPostgresStore({ url: fresh.url, poolSize: 4 })));
      const admin = new pg.Client({ connectionString: fresh.url });
      await admin.connect();
      try {
        expect((await admin.query('SELECT version FROM schema_migrations ORDER BY version')).rows).toEqual(migrations.map((_sql, i) => ({ version: i + 1 })));
      } finally {
        await admin.end();
      }
      // Two of them serve HTTP (an app costs a second or two to build); the third reads the log.
      for (const store of stores.slice(0, 2)) apps.push(await startTestApp({ store }));
      const at = (i: number) => apps[i % apps.length]!;

      const agentId = randomUUID();
      expect((await at(0).request({ method: 'POST', url: '/api/agents', body: { characterJson: { id: agentId, name: 'Eliza' } } })).status).toBe(201);
      const created = await at(1).request({ method: 'POST', url: '/api/messaging/sessions', body: { agentId, userId: USER } });
      expect(created.status).toBe(201);
      const sessionId: string = created.body.sessionId;

      // Concurrent heartbeats spread over the instances: each one counted.
      const beats = await Promise.all(Array.from({ length: 30 }, (_, i) => at(i).request({ method: 'POST', url: `/api/messaging/sessions/${sessionId}/heartbeat` })));
      expect(beats.map((beat) => beat.status)).toEqual(Array(30).fill(200));
      expect((await at(2).request({ method: 'GET', url: `/api/messaging/sessions/${sessionId}` })).body.renewalCount).toBe(30);

      // Concurrent messages through both: paged back through them, each exactly once, newest first.
      const sent = await Promise.all(
        Array.from({ length: 24 }, (_, i) => at(i).request({ method: 'POST', url: `/api/messaging/sessions/${sessionId}/messages`, body: { content: `m${i}` } })),
      );
      expect(sent.map((answer) => answer.status)).toEqual(Array(24).fill(201));
      const seen: Array<{ id: string; createdAt: string }> = [];
      let before: string | undefined;
      for (let page = 0; page < 10; page++) {
        const query = `limit=5${before ? `&before=${encodeURIComponent(before)}` : ''}`;
        const answer = await at(page).request({ method: 'GET', url: `/api/messaging/sessions/${sessionId}/messages?${query}` });
        seen.push(...answer.body.messages);
        if (!answer.body.hasMore) break;
        before = answer.body.cursors.before;
      }
      expect(seen.map((m) => m.id).sort()).toEqual(sent.map((answer) => answer.body.id).sort());
      const times = seen.map((m) => Date.parse(m.createdAt));
      expect(times).toEqual([...times].sort((x, y) => y - x));

      // One event log: every instance reads the same events, in one order.
      const logs = await Promise.all(stores.map((store) => store.listEvents({ sessionId, limit: 100 })));
      expect(logs[0]!.filter((e) => e.type === 'message.created')).toHaveLength(24);
      expect(logs[1]).toEqual(logs[0]);
      expect(logs[2]).toEqual(logs[0]);
    } finally {
      for (const app of apps.splice(0)) await app.close();
      await fresh.drop();
    }
  });

  it('npm run keys manages the keys on DATABASE_URL: a key bound to an agent counts on every instance, and its revocation at once', async () => {
    const fresh = await createTestDatabase();
    const folder = mkdtempSync(join(tmpdir(), 'sessions-keys-'));
    const sqliteFile = join(folder, 'never-made.db'); // DATABASE_URL wins: no SQLite file is made
    try {
      // Run without blocking this process: the servers' keep-alive connections it holds
      // expire on time meanwhile (blocked, a fetch after the command took a socket the
      // server had closed: "other side closed", on a loaded machine).
      const keysCli = async (...args: string[]) =>
        (
          await promisify(execFile)(process.execPath, [builtFile('keys-cli.js'), ...args], {
            env: { ...process.env, DATABASE_URL: fresh.url, DATABASE_PATH: sqliteFile },
            encoding: 'utf8',
            timeout: 30_000, // a CLI that hangs on its pool fails here, not the whole file
          })
        ).stdout;
      // Before any server: list and revoke make no schema in a database without one.
      for (const command of [['list'], ['revoke', 'bot-1']]) {
        await expect(keysCli(...command), command[0]).rejects.toMatchObject({
          code: 1,
          stderr: `sessions-api keys: no Sessions API schema in ${fresh.url} (DATABASE_URL: no schema_migrations table on its search path); nothing to ${command[0]}\n`,
        });
      }
      expect((await withClient(fresh.url, (client) => client.query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"))).rows).toEqual([]);
      const servers = [0, 1].map(() => startServer({ DATABASE_URL: fresh.url, LOG_LEVEL: 'silent' }));
      const urls = await Promise.all(servers.map((server) => server.listening));
      const [mine, theirs] = [randomUUID(), randomUUID()];
      for (const id of [mine, theirs]) expect((await fetchChecked(urls[0]!, 'POST', '/api/agents', { characterJson: { id, name: 'Eliza' } })).status).toBe(201);

      const created = await keysCli('create', '--name', 'bot-1', '--agent', mine);
      expect(created).toContain(`(database: ${fresh.url})`);
      const key = /key \(shown once, store it now\): (sk_\S+)/.exec(created)?.[1];
      expect(key).toMatch(/^sk_/);
      expect(await keysCli('list')).toMatch(new RegExp(`bot-1 {2}agents: ${mine} .* live`));
      const withKey = { 'x-api-key': key! };
      for (const url of urls) {
        expect((await fetchChecked(url, 'GET', `/api/agents/${mine}`, undefined, withKey)).status).toBe(200);
        expect((await fetchChecked(url, 'GET', `/api/agents/${theirs}`, undefined, withKey)).status).toBe(404);
        expect((await fetchChecked(url, 'GET', `/api/agents/${mine}`)).status).toBe(401);
      }

      expect(await keysCli('revoke', 'bot-1')).toMatch(/^revoked .* bot-1 /);
      for (const url of urls) expect((await fetchChecked(url, 'GET', `/api/agents/${mine}`, undefined, withKey)).status).toBe(401);
      expect(existsSync(sqliteFile)).toBe(false);
    } finally {
      cleanUpServerProcesses();
      rmSync(folder, { recursive: true, force: true });
      await fresh.drop();
    }
  });

  it('an instance that remembers no API key exists learns of the first one stored, by any writer (NOTIFY)', async () => {
    const fresh = await createTestDatabase();
    const store = await openPostgresStore({ url: fresh.url, poolSize: 2 });
    const admin = new pg.Client({ connectionString: fresh.url });
    await admin.connect();
    try {
      await untilListening(admin, 1);
      expect(await store.hasApiKeys()).toBe(false);
      expect(await store.hasApiKeys()).toBe(false);
      await admin.query("INSERT INTO api_keys (id, name, key_hash, admin, agent_ids, created_at) VALUES ('k1', 'ops', 'h1', true, '[]', 1)");
      await until('the instance knows keys exist', () => store.hasApiKeys());
    } finally {
      await admin.end();
      await store.close();
      await fresh.drop();
    }
  });

  it.each([
    ['a heartbeat', (id: string) => ({ method: 'POST' as const, url: `/api/messaging/sessions/${id}/heartbeat` })],
    ['a message', (id: string) => ({ method: 'POST' as const, url: `/api/messaging/sessions/${id}/messages`, body: { content: 'late' } })],
  ])("judges %s when it holds the session's lock: one that waited past the expiry (another instance's write) answers 410 and renews nothing", async (_name, write) => {
    const fresh = await createTestDatabase();
    const t = await startTestApp({ store: await openPostgresStore({ url: fresh.url, poolSize: 2 }) });
    const holder = new pg.Client({ connectionString: fresh.url });
    await holder.connect();
    try {
      const agentId = await registerAgent(t);
      const { sessionId } = await createSession(t, { agentId, timeoutConfig: { timeoutMinutes: 5 } });
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM sessions WHERE id = $1 FOR UPDATE', [sessionId]);
      t.clock.set(T0 + 5 * MINUTE - 1);
      const answer = t.request(write(sessionId));
      await until('the write waits for the lock', async () => {
        const { rows } = await holder.query("SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'");
        return rows.length === 1;
      });
      // The holder (the pump announcing the expiry, say) commits once the session has expired.
      t.clock.set(T0 + 5 * MINUTE);
      await holder.query('COMMIT');
      expect((await answer).status).toBe(410);
      const stored = await t.store.getSession(sessionId);
      expect([stored?.expiresAt, stored?.renewalCount, stored?.lastActivity]).toEqual([T0 + 5 * MINUTE, 0, T0]);
      expect((await holder.query('SELECT count(*)::int AS n FROM messages')).rows[0].n).toBe(0);
    } finally {
      await holder.end();
      await t.close();
      await fresh.drop();
    }
  });

  it('an agent kept by one instance: a delete anywhere is heard; one not heard fails the create, which then finds the new agent', async () => {
    const fresh = await createTestDatabase();
    const [a, b] = [await openPostgresStore({ url: fresh.url, poolSize: 2 }), await openPostgresStore({ url: fresh.url, poolSize: 2 })];
    const admin = new pg.Client({ connectionString: fresh.url });
    await admin.connect();
    try {
      await untilListening(admin, 2);
      const agent = agentRecord();
      await b.insertAgent(agent);
      expect(await a.getAgent(agent.id)).toEqual(agent);
      expect((await b.deleteAgent(agent.id, { force: true, now: T0, purgeCutoff: 0 })).kind).toBe('deleted');
      await until('the delete is heard', async () => (await a.getAgent(agent.id)) === undefined);

      // Deleted and created again with other settings, unheard (triggers off for that
      // session): the kept agent is stale, so the insert is refused, and nothing is written.
      const again = { ...agent, createdAt: agent.createdAt + 1 };
      await b.insertAgent(agent);
      expect(await a.getAgent(agent.id)).toEqual(agent);
      await admin.query("SET session_replication_role = replica");
      await admin.query('DELETE FROM agents WHERE id = $1', [agent.id]);
      await admin.query("SET session_replication_role = origin");
      await b.insertAgent({ ...again, settings: { SESSION_TIMEOUT_MINUTES: 5 } });
      expect(await a.insertSession(sessionRecord(agent.id))).toBe(false);
      expect((await admin.query('SELECT count(*)::int AS n FROM sessions')).rows[0].n).toBe(0);
      expect((await a.getAgent(agent.id))?.createdAt).toBe(again.createdAt);
      expect(await a.insertSession(sessionRecord(agent.id))).toBe(true);
    } finally {
      await admin.end();
      await a.close();
      await b.close();
      await fresh.drop();
    }
  });

  it('instances on one database: NOTIFY wakes every instance, and each webhook event is delivered by one of them, once', async () => {
    const fresh = await createTestDatabase();
    const stores: Store[] = [];
    const received: string[] = [];
    const receiver = createServer((request, response) => {
      received.push(String(request.headers['webhook-id']));
      request.resume();
      request.on('end', () => response.writeHead(204).end());
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const address = receiver.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    try {
      for (let i = 0; i < 3; i++) stores.push(await openPostgresStore({ url: fresh.url, poolSize: 4 }));
      const [a, b, c] = stores as [Store, Store, Store];

      // A commit with events on one instance wakes the others' readers.
      const woken = new Promise<void>((resolve) => {
        const unsubscribe = b.onEventsWritten(() => (unsubscribe(), resolve()));
      });
      const agent = agentRecord();
      await a.insertAgent(agent, { events: (written) => [agentEvent('agent.created', written, T0)] });
      await woken;

      // Every instance announces what is due at once: each session expires once.
      for (let i = 0; i < 5; i++) await a.insertSession(sessionRecord(agent.id));
      const clock = fakeClock(T0 + 31 * MINUTE);
      await c.insertWebhook({ id: randomUUID(), url: `http://127.0.0.1:${port}/hook`, secret: 'whsec_c2VjcmV0c2VjcmV0', createdAt: T0, cursor: '0', attempts: 0, nextAttemptAt: T0 });
      const announced = await Promise.all(stores.map((store) => store.announceDue(clock.now(), 100, announce)));
      expect(announced.reduce((x, y) => x + y)).toBe(10); // a warning and an expiry each
      const events = await a.listEvents({ limit: 100 });
      expect(events.filter((e) => e.type === 'session.expired')).toHaveLength(5);

      // Three dispatchers tick at once, twice: every event is posted once, by one of them.
      const dispatchers = stores.map((store) => createWebhookDispatcher({ store, clock, random: () => 0.5 }));
      for (let round = 0; round < 2; round++) await Promise.all(dispatchers.map((dispatcher) => dispatcher.tick()));
      expect(received.sort()).toEqual(events.map((e) => `evt_${e.id}`).sort());
    } finally {
      receiver.close();
      for (const store of stores) await store.close();
      await fresh.drop();
    }
  });
});
