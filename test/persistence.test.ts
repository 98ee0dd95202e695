import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { migrations } from '../src/storage/sqlite/migrations.js';
import { openDatabase } from '../src/storage/sqlite/connection.js';
import { openSqliteStore } from '../src/storage/sqlite/sqlite-store.js';
import { createSession, registerAgent } from './helpers/fixtures.js';
import { storedMessages } from './helpers/stored-messages.js';
import { startTestApp } from './helpers/test-app.js';

const directories: string[] = [];
function tempDirectory(): string {
  const directory = mkdtempSync(join(tmpdir(), 'sessions-api-persist-'));
  directories.push(directory);
  return directory;
}
afterEach(() => {
  for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true });
});

describe('SQLite persistence', () => {
  it('keeps agents and sessions across a restart on the same file', async () => {
    const databasePath = join(tempDirectory(), 'sessions.db');
    const first = await startTestApp({ databasePath });
    const agentId = await registerAgent(first, { settings: { SESSION_TIMEOUT_MINUTES: 60 } });
    const created = [await createSession(first, { agentId }), await createSession(first, { agentId, metadata: { platform: 'web' } })];
    const storedBefore = await Promise.all(created.map((session) => first.store.getSession(session.sessionId)));
    await first.close();

    const second = await startTestApp({ databasePath });
    try {
      const agent = await second.request({ method: 'GET', url: `/api/agents/${agentId}` });
      expect(agent.status).toBe(200);
      expect(agent.body.data.settings).toEqual({ SESSION_TIMEOUT_MINUTES: 60 });
      const storedAfter = await Promise.all(created.map((session) => second.store.getSession(session.sessionId)));
      expect(storedAfter).toEqual(storedBefore);
      expect(storedAfter.every(Boolean)).toBe(true);
      // The reopened store still knows the agent has active sessions.
      expect((await second.request({ method: 'DELETE', url: `/api/agents/${agentId}` })).status).toBe(409);
    } finally {
      await second.close();
    }
  });

  it('keeps every lifecycle field and the expired state across a restart', async () => {
    const databasePath = join(tempDirectory(), 'sessions.db');
    const first = await startTestApp({ databasePath });
    const agentId = await registerAgent(first);
    const active = (await createSession(first, { agentId, timeoutConfig: { timeoutMinutes: 60, warningThresholdMinutes: 9 } })).sessionId;
    const expiring = (await createSession(first, { agentId, timeoutConfig: { timeoutMinutes: 5 } })).sessionId;
    first.clock.advance(3 * 60_000);
    await first.request({ method: 'POST', url: `/api/messaging/sessions/${active}/heartbeat` });
    await first.request({ method: 'PATCH', url: `/api/messaging/sessions/${active}/timeout`, body: { autoRenew: false } });
    first.clock.advance(10 * 60_000);
    await first.sweeper.sweep();
    const before = [await first.request({ method: 'GET', url: `/api/messaging/sessions/${active}` }), await first.request({ method: 'GET', url: `/api/messaging/sessions/${expiring}` })];
    const records = [await first.store.getSession(active), await first.store.getSession(expiring)];
    await first.close();

    const second = await startTestApp({ databasePath, clock: first.clock });
    try {
      const after = [await second.request({ method: 'GET', url: `/api/messaging/sessions/${active}` }), await second.request({ method: 'GET', url: `/api/messaging/sessions/${expiring}` })];
      expect(after.map((r) => [r.status, r.body])).toEqual(before.map((r) => [r.status, r.body]));
      expect(after[0]!.body).toMatchObject({ renewalCount: 1, timeoutConfig: { autoRenew: false, warningThresholdMinutes: 9 } });
      expect(after[1]!.status).toBe(410);
      expect([await second.store.getSession(active), await second.store.getSession(expiring)]).toEqual(records);
      expect(records[1]!.status).toBe('expired');
    } finally {
      await second.close();
    }
  });

  it('loses no update when two servers share one database file', async () => {
    const databasePath = join(tempDirectory(), 'sessions.db');
    const one = await startTestApp({ databasePath });
    const two = await startTestApp({ databasePath, clock: one.clock });
    try {
      const agentId = await registerAgent(one);
      const { sessionId } = await createSession(one, { agentId });
      const beat = (server: typeof one) => server.request({ method: 'POST', url: `/api/messaging/sessions/${sessionId}/heartbeat` });
      const responses = await Promise.all(Array.from({ length: 40 }, (_, i) => beat(i % 2 ? one : two)));
      expect(responses.every((r) => r.status === 200)).toBe(true);
      expect((await one.store.getSession(sessionId))?.renewalCount).toBe(40);
      expect((await two.store.getSession(sessionId))?.renewalCount).toBe(40);
    } finally {
      await one.close();
      await two.close();
    }
  });

  it('creates the folder of the database file, and opens it in WAL mode with foreign keys on', async () => {
    const databasePath = join(tempDirectory(), 'nested', 'deeper', 'sessions.db');
    const store = openSqliteStore(databasePath);
    await store.ping();
    await store.close();
    const db = new Database(databasePath, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('user_version', { simple: true })).toBe(migrations.length);
    db.close();
  });

  it.each([
    [undefined, 1],
    ['normal', 1],
    ['full', 2],
  ] as const)('opens with synchronous=%s as PRAGMA synchronous %i', (synchronous, pragma) => {
    const db = openDatabase(join(tempDirectory(), 'sessions.db'), synchronous ? { synchronous } : {});
    expect(db.pragma('synchronous', { simple: true })).toBe(pragma);
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
    db.close();
  });

  it('applies migrations once: reopening leaves the schema version alone', async () => {
    const databasePath = join(tempDirectory(), 'sessions.db');
    await openSqliteStore(databasePath).close();
    await openSqliteStore(databasePath).close();
    const db = new Database(databasePath, { readonly: true });
    expect(db.pragma('user_version', { simple: true })).toBe(migrations.length);
    db.close();
  });

  it('upgrades a version-3 database in place: its messages survive the move to the clustered table', async () => {
    const databasePath = join(tempDirectory(), 'sessions.db');
    const old = new Database(databasePath);
    for (const sql of migrations.slice(0, 3)) old.exec(sql);
    old.pragma('user_version = 3');
    old.exec(`
      INSERT INTO agents VALUES ('a', 'Ada', NULL, '{}', 0);
      INSERT INTO sessions (id, agent_id, user_id, created_at, last_activity, anchor_at, expires_at, warns_at,
        timeout_minutes, auto_renew, max_duration_minutes, warning_threshold_minutes, metadata)
        VALUES ('s', 'a', 'u', 0, 0, 0, 9000000000000, 8000000000000, 30, 1, 720, 5, '{}');
      INSERT INTO messages VALUES ('m2', 's', 20, 2, 'u', 0, 'second', '[]', '{}');
      INSERT INTO messages VALUES ('m1', 's', 10, 1, 'u', 1, 'first', '[]', '{"k":1}');
    `);
    old.close();

    const store = openSqliteStore(databasePath);
    try {
      const page = await storedMessages(store, { sessionId: 's', limit: 10 });
      expect(page.positions).toEqual([20, 10]);
      expect(page.messages.map((m) => [m.id, m.content, m.isAgent, m.metadata])).toEqual([
        ['m2', 'second', false, {}],
        ['m1', 'first', true, { k: 1 }],
      ]);
    } finally {
      await store.close();
    }
    const db = new Database(databasePath, { readonly: true });
    expect(db.pragma('user_version', { simple: true })).toBe(migrations.length);
    expect(db.prepare("SELECT sql FROM sqlite_schema WHERE name = 'messages'").pluck().get()).toMatch(/WITHOUT ROWID/);
    expect(db.pragma('foreign_key_check')).toEqual([]);
    db.close();
  });

  it('migrates once when two processes open an old file at the same time: the second waits for each step, then finds it done', async () => {
    const databasePath = join(tempDirectory(), 'sessions.db');
    const old = new Database(databasePath);
    for (const sql of migrations.slice(0, 10)) old.exec(sql);
    old.pragma('user_version = 10');
    // Enough sessions that the later steps take a while (each rewrites or indexes them all).
    old.exec(`
      INSERT INTO agents VALUES ('a', 'Ada', NULL, '{}', 0);
      WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 30000)
      INSERT INTO sessions (id, agent_id, user_id, created_at, last_activity, anchor_at, expires_at, warns_at, timeout_minutes,
        auto_renew, max_duration_minutes, warning_threshold_minutes, renewal_count, status, metadata, announced, due_at)
        SELECT 's' || i, 'a', 'u' || (i % 100), i, i, i, 9000000000000 + i, 8000000000000 + i, 30, 1, 720, 5, 0, 'active', '{}', 'nothing', 8000000000000 + i FROM n;
    `);
    old.close();
    const opener = `import(${JSON.stringify(new URL('../src/storage/sqlite/connection.ts', import.meta.url).href)}).then(({ openDatabase }) => openDatabase(${JSON.stringify(databasePath)}).close())`;
    const open = () =>
      new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', opener], { stdio: ['ignore', 'ignore', 'pipe'] });
        let stderr = '';
        child.stderr.on('data', (chunk) => (stderr += chunk));
        child.on('close', (code) => resolve({ code, stderr }));
      });
    const results = await Promise.all([open(), open()]);
    expect(results).toEqual([{ code: 0, stderr: '' }, { code: 0, stderr: '' }]);
    const db = new Database(databasePath, { readonly: true });
    expect(db.pragma('user_version', { simple: true })).toBe(migrations.length);
    expect(db.prepare('SELECT count(*) FROM sessions').pluck().get()).toBe(30000);
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    db.close();
  }, 60_000);

  it('refuses a database written by a newer server', async () => {
    const databasePath = join(tempDirectory(), 'sessions.db');
    const db = new Database(databasePath);
    db.pragma(`user_version = ${migrations.length + 1}`);
    db.close();
    expect(() => openSqliteStore(databasePath)).toThrow(/newer than this server/);
  });

  it("refuses another application's database, or a newer server's, before writing a byte to it (one was migrated in place; others were switched to WAL, then refused)", () => {
    const folder = tempDirectory();
    const foreign = (name: string, setUp: string) => {
      const path = join(folder, name);
      const db = new Database(path); // rollback journal, as most applications leave it
      db.exec(setUp);
      db.close();
      return path;
    };
    const files: Array<[string, RegExp]> = [
      [foreign('users.db', 'CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users (name) VALUES (1)'), /^not a Sessions API database \(it has tables, users, and no schema version\)/],
      [foreign('own-sessions.db', 'CREATE TABLE sessions (token TEXT PRIMARY KEY, data TEXT)'), /^not a Sessions API database \(it has tables, sessions, and no schema version\)/],
      [foreign('versioned.db', 'CREATE TABLE things (id INTEGER); PRAGMA user_version = 5'), /^not a Sessions API database \(schema version 5, but no agents and sessions tables\)/],
      [foreign('agents-only.db', 'CREATE TABLE agents (id TEXT); PRAGMA user_version = 2'), /^not a Sessions API database \(schema version 2, but no agents and sessions tables\)/],
      [foreign('many.db', ['a', 'b', 'c', 'd', 'e', 'f'].map((name) => `CREATE TABLE ${name} (x);`).join('')), /^not a Sessions API database \(it has tables, a, b, c, d, e, …, and no schema version\)/],
      [foreign('newer.db', `PRAGMA user_version = ${migrations.length + 1}`), /newer than this server/],
    ];
    for (const [path, refusal] of files) {
      const before = readFileSync(path);
      expect(() => openSqliteStore(path), path).toThrow(refusal);
      expect(readFileSync(path).equals(before), `${path} unchanged`).toBe(true);
      expect(existsSync(`${path}-wal`), `${path}: no WAL`).toBe(false);
    }
    // An empty file is a new database, as SQLite has it.
    const empty = join(folder, 'empty.db');
    writeFileSync(empty, '');
    const store = openSqliteStore(empty);
    return store.close();
  });

  it('enforces foreign keys: a session of a deleted agent cannot be inserted', async () => {
    const store = openSqliteStore(':memory:');
    const session = {
      id: '11111111-1111-4111-8111-111111111111',
      agentId: '22222222-2222-4222-8222-222222222222',
      userId: '33333333-3333-4333-8333-333333333333',
      metadata: {},
      status: 'active' as const,
      announced: 'nothing' as const,
      createdAt: 0,
      lastActivity: 0,
      anchorAt: 0,
      expiresAt: 1,
      warnsAt: 0,
      renewalCount: 0,
      config: { timeoutMinutes: 30, autoRenew: true, maxDurationMinutes: 720, warningThresholdMinutes: 5 },
    };
    expect(await store.insertSession(session)).toBe(false);
    await store.close();
  });
});
