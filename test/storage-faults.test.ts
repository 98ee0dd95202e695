// Storage that fails under the server: a write lock held by another connection, a full
// disk, a corrupt or unusable file at startup. Never a 500 or a stack trace; 503
// STORAGE_UNAVAILABLE with Retry-After; reads keep working; health says which check
// failed and recovers by itself; nothing acknowledged is lost.
import { execFileSync } from 'node:child_process';
import { appendFileSync, closeSync, copyFileSync, mkdirSync, mkdtempSync, openSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { announce } from '../src/events/due-events.js';
import { createMetrics } from '../src/ops/metrics.js';
import { openSqliteStore } from '../src/storage/sqlite/sqlite-store.js';
import { withStorageFaults } from '../src/storage/sqlite/storage-faults.js';
import { StorageFault, type Store } from '../src/storage/store.js';
import { createSession, registerAgent, USER_ID } from './helpers/fixtures.js';
import { logLines } from './helpers/log-lines.js';
import { MINUTE } from './helpers/fake-clock.js';
import { cleanUpServerProcesses, fetchChecked, startServer, tempDatabase } from './helpers/server-process.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';
import { until } from './helpers/until.js';

const HEALTH = '/api/messaging/sessions/health';
let t: TestApp | undefined;
const cleanups: (() => void)[] = [];
afterEach(async () => {
  await t?.close();
  t = undefined;
  cleanUpServerProcesses();
  for (const cleanup of cleanups.splice(0)) cleanup();
});

describe('storage faults of synchronous store methods', () => {
  it('are StorageFaults too, thrown at once (the key check each request makes answers without a promise)', () => {
    const busy = new Database.SqliteError('database is locked', 'SQLITE_BUSY');
    const store = withStorageFaults({
      hasApiKeys: () => {
        throw busy;
      },
      onEventsWritten: () => {
        throw new TypeError('not a storage fault');
      },
    } as unknown as Store);
    let thrown: unknown;
    try {
      store.hasApiKeys();
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(StorageFault);
    expect((thrown as StorageFault).cause).toBe(busy);
    expect(() => store.onEventsWritten(() => undefined)).toThrow(TypeError);
  });
});

describe('a write lock held by another connection', () => {
  const LOCK_WAIT_MS = 1500;

  async function appWithLockWait() {
    const directory = mkdtempSync(join(tmpdir(), 'sessions-api-lock-'));
    cleanups.push(() => rmSync(directory, { recursive: true, force: true }));
    const databasePath = join(directory, 'sessions.db');
    t = await startTestApp({ databasePath, store: openSqliteStore(databasePath, { lockWaitMs: LOCK_WAIT_MS }) });
    const agentId = await registerAgent(t);
    const sessionId: string = (await createSession(t, { agentId })).sessionId;
    const holder = new Database(databasePath);
    cleanups.push(() => holder.close());
    return { app: t, sessionId, holder };
  }

  it('never blocks the event loop: reads answer, writes wait asynchronously then get 503 STORAGE_UNAVAILABLE, health says write', async () => {
    const { app, sessionId, holder } = await appWithLockWait();
    holder.exec('BEGIN IMMEDIATE');
    const delay = monitorEventLoopDelay({ resolution: 1 });
    delay.enable();

    const heartbeat = app.request({ method: 'POST', url: `/api/messaging/sessions/${sessionId}/heartbeat` });
    const read = await app.request({ method: 'GET', url: `/api/messaging/sessions/${sessionId}` });
    expect(read.status).toBe(200);
    const refused = await heartbeat;
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('1');
    expect(refused.body.error).toMatchObject({ code: 'STORAGE_UNAVAILABLE', details: expect.stringContaining('SQLITE_BUSY') });

    const health = await app.request({ method: 'GET', url: HEALTH });
    expect(health.status).toBe(503);
    expect(health.body).toMatchObject({ status: 'unhealthy', failedChecks: ['write'] });
    delay.disable();
    // A synchronous busy wait would stall the loop for the whole lock wait (1.5 s) or
    // more; the margin is for a CPU shared with other work.
    expect(delay.max / 1e6).toBeLessThan(LOCK_WAIT_MS / 2);

    holder.exec('ROLLBACK');
    expect((await app.request({ method: 'GET', url: HEALTH })).status).toBe(200);
    expect((await app.request({ method: 'POST', url: `/api/messaging/sessions/${sessionId}/heartbeat` })).body.renewalCount).toBe(1);
  });

  it('closing waits for the writes queued, not for the lock when none is: a stopping server exits once its requests are answered', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'sessions-api-lock-'));
    cleanups.push(() => rmSync(directory, { recursive: true, force: true }));
    const databasePath = join(directory, 'sessions.db');
    const store = openSqliteStore(databasePath, { lockWaitMs: 60_000 }); // a close waiting for the lock would outlast the test
    const holder = new Database(databasePath);
    cleanups.push(() => holder.close());
    holder.exec('BEGIN IMMEDIATE');
    await store.close();
    holder.exec('ROLLBACK');
  });

  it('a due-event tick with nothing due takes no write lock: it finds nothing while the lock is held elsewhere', async () => {
    const { app, holder } = await appWithLockWait();
    holder.exec('BEGIN IMMEDIATE');
    // Taking the lock would wait the lock wait out and fail with SQLITE_BUSY.
    expect(await app.store.announceDue(app.clock.now(), 100, announce)).toBe(0);
    holder.exec('ROLLBACK');
  });

  it('a sweep waits for the lock as a write does: a pass begun while another process holds it announces and trims once it is released', async () => {
    const { app, sessionId, holder } = await appWithLockWait();
    const agentId = (await app.store.getSession(sessionId))!.agentId;
    await app.request({ method: 'POST', url: '/api/messaging/sessions', body: { agentId, userId: USER_ID }, headers: { 'idempotency-key': 'kept-a-day' } });
    app.clock.advance(24 * 60 * MINUTE);
    holder.exec('BEGIN IMMEDIATE');
    const pass = app.sweeper.sweep();
    await new Promise((resolve) => setTimeout(resolve, LOCK_WAIT_MS / 2));
    holder.exec('COMMIT');
    expect(await pass).toMatchObject({ announced: 4, trimmed: 1 }); // two sessions' warnings and expiries
  });

  it('a write waiting for the lock commits once it is released within the lock wait', async () => {
    const { app, sessionId, holder } = await appWithLockWait();
    holder.exec('BEGIN IMMEDIATE');
    const heartbeat = app.request({ method: 'POST', url: `/api/messaging/sessions/${sessionId}/heartbeat` });
    await new Promise((resolve) => setTimeout(resolve, LOCK_WAIT_MS / 2));
    holder.exec('COMMIT');
    const answer = await heartbeat;
    expect(answer.status).toBe(200);
    expect(answer.body.renewalCount).toBe(1);
  });
});

/** A tmpfs of `size` mounted on a new folder (root only); undefined where mounting is not allowed. */
function mountTmpfs(size: string, readOnly = false): string | undefined {
  const directory = mkdtempSync(join(tmpdir(), 'sessions-api-full-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}${readOnly ? ',ro' : ''}`, 'tmpfs', directory], { stdio: 'ignore' });
  } catch {
    rmSync(directory, { recursive: true, force: true });
    return undefined;
  }
  cleanups.push(() => {
    execFileSync('umount', ['-l', directory], { stdio: 'ignore' });
    rmSync(directory, { recursive: true, force: true });
  });
  return directory;
}

function fillUp(path: string): void {
  const chunk = Buffer.alloc(64 * 1024, 1);
  try {
    for (;;) appendFileSync(path, chunk);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  }
}

const canMount = process.getuid?.() === 0;

describe('the database file deleted or replaced under a running server', () => {
  it.each(['deleted', 'replaced'])('%s: writes answer 503 STORAGE_UNAVAILABLE (they would go where nothing reads them again), health says write', async (what) => {
    const directory = mkdtempSync(join(tmpdir(), 'sessions-api-moved-'));
    cleanups.push(() => rmSync(directory, { recursive: true, force: true }));
    const databasePath = join(directory, 'sessions.db');
    t = await startTestApp({ databasePath, store: openSqliteStore(databasePath) });
    const agentId = await registerAgent(t);
    const sessionId: string = (await createSession(t, { agentId })).sessionId;
    if (what === 'deleted') {
      rmSync(databasePath);
    } else {
      copyFileSync(databasePath, `${databasePath}.copy`);
      renameSync(`${databasePath}.copy`, databasePath);
    }
    const refused = await t.request({ method: 'POST', url: `/api/messaging/sessions/${sessionId}/heartbeat` });
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('1');
    expect(refused.body.error).toMatchObject({ code: 'STORAGE_UNAVAILABLE', details: `the database file was ${what} while the server ran (restart the server); nothing was changed, retry later` });
    const health = await t.request({ method: 'GET', url: HEALTH });
    expect(health.status).toBe(503);
    expect(health.body.failedChecks).toContain('write');
    expect((await t.request({ method: 'GET', url: `/api/messaging/sessions/${sessionId}` })).body.renewalCount).toBe(0);
  });
  it('both deleted (rm sessions.db*): names the database file, not its WAL (checked first)', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'sessions-api-moved-'));
    cleanups.push(() => rmSync(directory, { recursive: true, force: true }));
    const databasePath = join(directory, 'sessions.db');
    const store = openSqliteStore(databasePath);
    cleanups.push(() => void store.close());
    await store.probeWrite();
    rmSync(databasePath);
    rmSync(`${databasePath}-wal`);
    await expect(store.probeWrite()).rejects.toThrow(/^the database file was deleted while the server ran/);
  });
});

describe("the database's write-ahead log deleted or replaced under a running server (F17)", () => {
  /** An app on a file of its own, with a session in it; the WAL holds what was written (no checkpoint yet). */
  async function appWithSession() {
    const directory = mkdtempSync(join(tmpdir(), 'sessions-api-wal-'));
    cleanups.push(() => rmSync(directory, { recursive: true, force: true }));
    const databasePath = join(directory, 'sessions.db');
    t = await startTestApp({ databasePath, store: openSqliteStore(databasePath) });
    const agentId = await registerAgent(t);
    const sessionId: string = (await createSession(t, { agentId })).sessionId;
    expect(statSync(`${databasePath}-wal`).size).toBeGreaterThan(0);
    return { app: t, databasePath, sessionId };
  }

  /** The sessions in the database file alone, as a restart after a kill would find them (a copy, opened without the WAL). */
  function sessionsInFileAlone(databasePath: string): string[] {
    const copy = `${databasePath}.alone`;
    copyFileSync(databasePath, copy);
    const db = new Database(copy, { readonly: true });
    try {
      // The schema itself may be in the WAL alone yet (a new file).
      if (!db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'sessions'").get()) return [];
      return db.prepare('SELECT id FROM sessions').pluck().all() as string[];
    } finally {
      db.close();
      rmSync(copy);
    }
  }

  it.each(['deleted', 'replaced'])('%s: writes answer 503 STORAGE_UNAVAILABLE, health says write, and what it held is copied into the database file', async (what) => {
    const { app, databasePath, sessionId } = await appWithSession();
    expect(sessionsInFileAlone(databasePath)).toEqual([]);
    if (what === 'deleted') {
      rmSync(`${databasePath}-wal`);
    } else {
      writeFileSync(`${databasePath}-wal.new`, '');
      renameSync(`${databasePath}-wal.new`, `${databasePath}-wal`);
    }
    const refused = await app.request({ method: 'POST', url: `/api/messaging/sessions/${sessionId}/heartbeat` });
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('1');
    expect(refused.body.error).toMatchObject({
      code: 'STORAGE_UNAVAILABLE',
      details: `the database's write-ahead log (${databasePath}-wal) was ${what} while the server ran: writes are refused, what it held is copied into the database file (restart the server); nothing was changed, retry later`,
    });
    expect(sessionsInFileAlone(databasePath)).toEqual([sessionId]);
    // The sweeper's purge starts no worker, whose connection would begin a WAL of its own beside the one deleted.
    await expect(app.store.purgeExpired(Date.now(), 10)).rejects.toThrow(/^the database's write-ahead log/);
    await expect(app.store.moveCountMarks!(Date.now(), Date.now(), 10)).rejects.toThrow(/^the database's write-ahead log/);
    const health = await app.request({ method: 'GET', url: HEALTH });
    expect(health.status).toBe(503);
    expect(health.body.failedChecks).toContain('write');
    expect((await app.request({ method: 'GET', url: `/api/messaging/sessions/${sessionId}` })).body.renewalCount).toBe(0);
  });

  it('deleted with no write after: what it held is copied into the database file all the same (checked every second)', async () => {
    const { databasePath, sessionId } = await appWithSession();
    rmSync(`${databasePath}-wal`);
    await until('the session is in the database file', () => sessionsInFileAlone(databasePath).length > 0, { ms: 5_000, everyMs: 50 });
    expect(sessionsInFileAlone(databasePath)).toEqual([sessionId]);
  });

  it('deleted, then found by the purge before any write: what it held is copied into the database file at once', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] }); // not by the check every second
    try {
      const { app, databasePath, sessionId } = await appWithSession();
      rmSync(`${databasePath}-wal`);
      await expect(app.store.purgeExpired(Date.now(), 10)).rejects.toThrow(/^the database's write-ahead log/);
      expect(sessionsInFileAlone(databasePath)).toEqual([sessionId]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('leaves the WAL alone while both files are in place (the check every second copies nothing), and stops checking once the store is closed', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      const directory = mkdtempSync(join(tmpdir(), 'sessions-api-wal-'));
      cleanups.push(() => rmSync(directory, { recursive: true, force: true }));
      const databasePath = join(directory, 'sessions.db');
      const store = openSqliteStore(databasePath);
      await store.probeWrite();
      const walBytes = statSync(`${databasePath}-wal`).size;
      expect(walBytes).toBeGreaterThan(0);
      vi.advanceTimersByTime(5_000);
      expect(statSync(`${databasePath}-wal`).size).toBe(walBytes);
      expect(vi.getTimerCount()).toBe(1);
      await store.close();
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('acknowledges nothing that a kill then loses: every 201 is there after a restart', { timeout: 30_000 }, async () => {
    const databasePath = tempDatabase();
    const first = startServer({ DATABASE_PATH: databasePath });
    const baseUrl = await first.listening;
    const agentId = (await fetchChecked(baseUrl, 'POST', '/api/agents', { characterJson: { name: 'Eliza' } })).body.data.character.id;
    const acknowledged: string[] = [];
    const create = async () => {
      const answer = await fetchChecked(baseUrl, 'POST', '/api/messaging/sessions', { agentId, userId: USER_ID });
      if (answer.status === 201) acknowledged.push(answer.body.sessionId);
      else expect(answer.body.error.code).toBe('STORAGE_UNAVAILABLE');
    };
    await create();
    rmSync(`${databasePath}-wal`);
    for (let i = 0; i < 5; i += 1) await create();
    expect(acknowledged).toHaveLength(1);
    first.child.kill('SIGKILL');
    await first.exited;

    const second = startServer({ DATABASE_PATH: databasePath });
    const again = await second.listening;
    for (const sessionId of acknowledged) expect((await fetchChecked(again, 'GET', `/api/messaging/sessions/${sessionId}`)).status, sessionId).toBe(200);
  });
});

describe('the write-ahead log deleted under a server whose DATABASE_PATH is a symlink (r48)', () => {
  it('refuses writes as for a path that is the file itself (SQLite puts the WAL beside the file the link names)', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'sessions-api-wal-link-'));
    cleanups.push(() => rmSync(directory, { recursive: true, force: true }));
    const real = join(directory, 'real.db');
    await openSqliteStore(real).close();
    const link = join(directory, 'sessions.db');
    symlinkSync(real, link);
    const store = openSqliteStore(link);
    cleanups.push(() => void store.close());
    await store.probeWrite();
    expect(statSync(`${real}-wal`).size).toBeGreaterThan(0);
    rmSync(`${real}-wal`);
    await expect(store.probeWrite()).rejects.toThrow(StorageFault);
  });
});

describe('a full disk', () => {
  it.skipIf(!canMount)('answers 503 STORAGE_UNAVAILABLE to writes, keeps serving reads, health says disk, then recovers', { timeout: 60_000 }, async () => {
    const directory = mountTmpfs('8m');
    expect(directory, 'mount -t tmpfs failed: this test needs root with CAP_SYS_ADMIN').toBeDefined();
    const databasePath = join(directory!, 'sessions.db');
    const server = startServer({ DATABASE_PATH: databasePath });
    const baseUrl = await server.listening;
    const agentId = (await fetchChecked(baseUrl, 'POST', '/api/agents', { characterJson: { name: 'Eliza' } })).body.data.character.id;
    const newSession = () => fetchChecked(baseUrl, 'POST', '/api/messaging/sessions', { agentId, userId: '5f1c1c8e-4a3b-4c7d-9e2f-0a1b2c3d4e5f' });
    const first = await newSession();
    expect(first.status).toBe(201);
    let acknowledged = 1;

    const filler = join(directory!, 'filler');
    fillUp(filler);
    const statuses: number[] = [];
    for (let i = 0; i < 20; i += 1) {
      const answer = await newSession();
      statuses.push(answer.status);
      if (answer.status === 201) acknowledged += 1;
      else expect(answer.body.error.code).toBe('STORAGE_UNAVAILABLE');
    }
    expect(statuses).toContain(503);
    expect(statuses.every((status) => status === 201 || status === 503)).toBe(true);
    expect((await fetchChecked(baseUrl, 'GET', `/api/messaging/sessions/${first.body.sessionId}`)).status).toBe(200);
    const health = await fetchChecked(baseUrl, 'GET', HEALTH);
    expect(health.status).toBe(503);
    expect(health.body.failedChecks).toContain('disk');

    rmSync(filler);
    expect((await fetchChecked(baseUrl, 'GET', HEALTH)).status).toBe(200);
    expect((await newSession()).status).toBe(201);
    acknowledged += 1;

    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    const db = new Database(databasePath, { readonly: true });
    expect(db.prepare('SELECT count(*) AS n FROM sessions').get()).toEqual({ n: acknowledged });
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    db.close();
  });
});

describe('startup with unusable storage: one line naming the file and the cause, exit 1', () => {
  async function refusesToStart(databasePath: string, cause: RegExp) {
    const server = startServer({ DATABASE_PATH: databasePath });
    expect(await server.exited).toBe(1);
    const { stderr } = server.output();
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toContain(`cannot open the database ${databasePath}: `);
    expect(stderr).toMatch(cause);
    expect(stderr).not.toMatch(/\n\s+at /);
  }

  it('a file that is not a database', async () => {
    const databasePath = tempDatabase();
    mkdirSync(join(databasePath, '..'), { recursive: true });
    writeFileSync(databasePath, Buffer.alloc(64 * 1024, 7));
    await refusesToStart(databasePath, /not a database/);
  });

  it('a database with garbage in its pages', async () => {
    const databasePath = tempDatabase();
    const store = openSqliteStore(databasePath);
    await store.close();
    const db = new Database(databasePath);
    db.exec(`CREATE TABLE filler (x TEXT);
      WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400) INSERT INTO filler SELECT printf('%.500c', 'x') FROM n`);
    db.close();
    const garbage = Buffer.alloc(4096 * 8, 0xff);
    const fd = openSync(databasePath, 'r+');
    writeSync(fd, garbage, 0, garbage.length, 4096 * 20);
    closeSync(fd);
    await refusesToStart(databasePath, /malformed|corrupt|quick_check/i);
  });

  it('a path under a file, and a path that is a directory', async () => {
    const databasePath = tempDatabase();
    mkdirSync(join(databasePath, '..'), { recursive: true });
    writeFileSync(databasePath, '');
    await refusesToStart(join(databasePath, 'sub', 'sessions.db'), /ENOTDIR/);
    await refusesToStart(join(databasePath, 'sessions.db'), /EEXIST/); // its folder is that file
    const folder = join(databasePath, '..');
    await refusesToStart(folder, new RegExp(`: ${folder} is a folder: name a file \\(in it, say\\)$`, 'm'));
  });

  it.skipIf(!canMount)('a read-only file system, saying so (SQLite said only "unable to open database file")', async () => {
    const directory = mountTmpfs('1m', true);
    expect(directory, 'mount -t tmpfs failed: this test needs root with CAP_SYS_ADMIN').toBeDefined();
    await refusesToStart(join(directory!, 'sessions.db'), new RegExp(`: ${directory} is on a read-only file system \\(EROFS\\)$`, 'm'));
  });

  // Root may write any file, but not an immutable one (`chattr +i`): access() says EPERM,
  // as it says EACCES to a user without the permission. SQLite would open the file read-only.
  it.skipIf(!canMount)('a file, or a folder, this process may not write, or a WAL and index left so, saying so (SQLite would serve, every write a 503)', async () => {
    const databasePath = tempDatabase();
    await openSqliteStore(databasePath).close();
    const folder = join(databasePath, '..');
    // As a server run by another user and killed leaves them (empty: SQLite starts them anew).
    for (const file of [`${databasePath}-wal`, `${databasePath}-shm`]) writeFileSync(file, '');
    for (const target of [databasePath, folder, `${databasePath}-wal`, `${databasePath}-shm`]) {
      execFileSync('chattr', ['+i', target]);
      try {
        await refusesToStart(databasePath, new RegExp(`: this process may not write ${target} \\(EPERM\\)$`, 'm'));
      } finally {
        execFileSync('chattr', ['-i', target]);
      }
    }
  });

  it.skipIf(!canMount)('a full disk, saying so (SQLite said "disk I/O error (SQLITE_IOERR_SHMSIZE)")', async () => {
    const directory = mountTmpfs('2m');
    expect(directory, 'mount -t tmpfs failed: this test needs root with CAP_SYS_ADMIN').toBeDefined();
    const databasePath = join(directory!, 'sessions.db');
    await openSqliteStore(databasePath).close();
    fillUp(join(directory!, 'filler'));
    await refusesToStart(databasePath, /: the disk is full \(\d+ bytes free on .*; SQLite: disk I\/O error\) \(SQLITE_IOERR/);
  });

  it('a folder that cannot be made under one that exists (Node 20 loops for ever making /proc/x recursively)', async () => {
    await refusesToStart(`/proc/sessions-api-${process.pid}/sessions.db`, /ENOENT/);
  });

  it('makes the folders missing, parents included', async () => {
    const databasePath = join(tempDatabase(), '..', 'a', 'b', 'sessions.db');
    const store = openSqliteStore(databasePath);
    await store.close();
    expect(statSync(databasePath).isFile()).toBe(true);
  });
});

describe('an outage before the store ever said whether keys are on', () => {
  it('answers 503 to a request without a key (it cannot tell that none is needed); once the store said "no keys", that answer holds through an outage', async () => {
    let down = true;
    const real = openSqliteStore(':memory:');
    const store = new Proxy(real, {
      get(target, name: keyof Store) {
        if (name !== 'hasApiKeys') return target[name];
        // As PostgreSQL answers it: a promise.
        return () => (down ? Promise.reject(new StorageFault('the database cannot be reached (test)')) : Promise.resolve(target.hasApiKeys()));
      },
    });
    t = await startTestApp({ store, metrics: createMetrics() });
    const metrics = await t.requestText('/metrics');
    expect(metrics.status).toBe(503);
    expect(JSON.parse(metrics.text).error.code).toBe('STORAGE_UNAVAILABLE');
    down = false;
    expect((await t.requestText('/metrics')).status).toBe(200);
    down = true;
    expect((await t.requestText('/metrics')).status).toBe(200);
  });
});

describe('an outage in the log', () => {
  it('logs the first failed request and health check, holds back the rest for a minute, and says when health passes again', async () => {
    const { lines, stream } = logLines();
    let down = false;
    const real = openSqliteStore(':memory:');
    const fault = () => new StorageFault('the database cannot be reached (test)');
    const store = new Proxy(real, {
      get(target, name: keyof Store) {
        const value = target[name];
        if (typeof value !== 'function' || name === 'close' || name === 'onEventsWritten') return value;
        return (...args: unknown[]) => {
          if (!down) return (value as (...a: unknown[]) => unknown).apply(target, args);
          if (name === 'hasApiKeys') throw fault();
          return Promise.reject(fault());
        };
      },
    });
    t = await startTestApp({ store, app: { logger: { level: 'warn', stream } } });
    const agentId = await registerAgent(t);
    const messages = () => lines.map((line) => line.msg);

    down = true;
    for (let i = 0; i < 20; i++) expect((await t.request({ method: 'GET', url: `/api/agents/${agentId}` })).status).toBe(503);
    for (let i = 0; i < 3; i++) expect((await t.request({ method: 'GET', url: HEALTH })).status).toBe(503);
    expect(messages()).toEqual(['request failed: storage unavailable (503)', 'health check failed: read: the database cannot be reached (test); write: the database cannot be reached (test); disk: the database cannot be reached (test)']);
    expect(lines[0]).toMatchObject({ heldBack: 0, err: { type: 'StorageFault' } });

    down = false;
    expect((await t.request({ method: 'GET', url: HEALTH })).status).toBe(200);
    expect((await t.request({ method: 'GET', url: HEALTH })).status).toBe(200);
    expect(messages().slice(2)).toEqual(['health checks pass again']);
    // The next outage's first failure is logged at once.
    down = true;
    expect((await t.request({ method: 'GET', url: HEALTH })).status).toBe(503);
    expect(messages().slice(3)).toEqual([expect.stringMatching(/^health check failed/)]);
  });
});
