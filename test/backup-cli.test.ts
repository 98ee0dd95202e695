// `npm run backup -- <new file>`: a consistent copy of the SQLite database, taken while the
// server serves and writes; the copy serves as the database it was. What it refuses, it
// says in one line.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { migrations } from '../src/storage/sqlite/migrations.js';
import { openSqliteStore } from '../src/storage/sqlite/sqlite-store.js';
import { builtFile } from './helpers/built.js';
import { cleanUpServerProcesses, fetchChecked, startServer } from './helpers/server-process.js';
import { until } from './helpers/until.js';

const folder = mkdtempSync(join(tmpdir(), 'sessions-api-backup-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));
afterEach(cleanUpServerProcesses);

/** The command running: its pid, and how it ended. */
function startBackup(args: string[], env: Record<string, string>) {
  let pid: number | undefined;
  const ended = new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
    pid = execFile(process.execPath, [builtFile('backup-cli.js'), ...args], { env: { ...process.env, ...env }, timeout: 30_000 }, (error, stdout, stderr) =>
      resolve({ status: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr }), // -1: killed (its timeout)
    ).pid;
  });
  return { pid: pid!, ended };
}

const backup = (args: string[], env: Record<string, string>) => startBackup(args, env).ended;

/** Whether process `pid` has `path` open (Linux: /proc/<pid>/fd). */
function hasOpen(pid: number, path: string): boolean {
  try {
    return readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`) === path;
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

describe('npm run backup', () => {
  it('copies the database while the server writes: the copy holds every write acknowledged before it began, and serves', { timeout: 60_000 }, async () => {
    const databasePath = join(folder, 'live', 'sessions.db');
    const server = startServer({ DATABASE_PATH: databasePath });
    const url = await server.listening;
    const agent = await fetchChecked(url, 'POST', '/api/agents', { characterJson: { name: 'Eliza' } });
    const agentId: string = agent.body.data.character.id;
    const userId = '9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d';
    const before = await Promise.all(Array.from({ length: 20 }, () => fetchChecked(url, 'POST', '/api/messaging/sessions', { agentId, userId })));
    // Writes go on during the copy.
    let writing = true;
    const during = (async () => {
      let made = 0;
      while (writing) made += (await fetchChecked(url, 'POST', '/api/messaging/sessions', { agentId, userId })).status === 201 ? 1 : 0;
      return made;
    })();
    const target = join(folder, 'copy.db');
    const copied = await backup([target], { DATABASE_PATH: databasePath });
    writing = false;
    expect(await during).toBeGreaterThan(0);
    expect(copied.status, copied.stderr).toBe(0);
    expect(copied.stdout).toMatch(new RegExp(`^copied ${databasePath} to ${target} \\(schema version ${migrations.length}, \\d+ bytes\\)\\n$`));

    const db = new Database(target, { readonly: true });
    const ids = new Set(db.prepare('SELECT id FROM sessions').pluck().all());
    db.close();
    for (const created of before) expect(ids.has(created.body.sessionId)).toBe(true);
    // Events the copy has not.
    expect((await fetchChecked(url, 'POST', '/api/messaging/sessions', { agentId, userId })).status).toBe(201);
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);

    // Restored: a server on the copy serves what it holds.
    const restored = startServer({ DATABASE_PATH: target });
    const restoredUrl = await restored.listening;
    expect((await fetchChecked(restoredUrl, 'GET', `/api/agents/${agentId}`)).status).toBe(200);
    expect((await fetchChecked(restoredUrl, 'GET', `/api/messaging/sessions/${before[0]!.body.sessionId}`)).status).toBe(200);

    // The original gave event ids after the copy; the restored server gives none of them again.
    const created = await fetchChecked(restoredUrl, 'POST', '/api/messaging/sessions', { agentId, userId });
    restored.child.kill('SIGTERM');
    expect(await restored.exited).toBe(0);
    const lastIdOf = async (path: string) => {
      const store = openSqliteStore(path);
      try {
        return Number(await store.lastEventId());
      } finally {
        await store.close();
      }
    };
    const restoredStore = openSqliteStore(target);
    try {
      const [newest] = (await restoredStore.listEvents({ after: String(await lastIdOf(databasePath)), limit: 10 })).filter((event) => event.sessionId === created.body.sessionId);
      expect(newest?.type).toBe('session.created');
    } finally {
      await restoredStore.close();
    }
  });

  it('never deletes or overwrites a file that appears at the name while it copies (another backup to it, say), and takes a relative name from where npm was run', { timeout: 60_000 }, async () => {
    const databasePath = join(folder, 'held', 'sessions.db');
    await openSqliteStore(databasePath).close();
    const holder = new Database(databasePath);
    holder.pragma('locking_mode = EXCLUSIVE');
    holder.exec('BEGIN EXCLUSIVE');
    const target = join(folder, 'raced.db');
    const copying = startBackup([target], { DATABASE_PATH: databasePath });
    // Past its check that the name is free, it waits for the lock.
    await until('the backup has opened the database', () => hasOpen(copying.pid, databasePath), { everyMs: 20, ms: 20_000 });
    writeFileSync(target, "another backup's");
    holder.exec('COMMIT');
    holder.close();
    expect(await copying.ended).toMatchObject({ status: 1, stderr: `sessions-api backup: cannot copy ${databasePath} to ${target}: ${target} appeared meanwhile: name a new file\n` });
    expect(readFileSync(target, 'utf8')).toBe("another backup's");
    expect(readdirSync(folder).filter((name) => name.includes('.partial-'))).toEqual([]);

    const caller = join(folder, 'caller');
    mkdirSync(caller);
    expect((await backup(['relative.db'], { DATABASE_PATH: databasePath, INIT_CWD: caller })).status).toBe(0);
    expect(existsSync(join(caller, 'relative.db'))).toBe(true);
  });

  it('says why it cannot write the copy: a missing folder (SQLite said only "unable to open database file")', async () => {
    const databasePath = join(folder, 'unwritable-source.db');
    await openSqliteStore(databasePath).close();
    const missing = join(folder, 'no-such-folder', 'copy.db');
    expect(await backup([missing], { DATABASE_PATH: databasePath })).toMatchObject({ status: 1, stderr: `sessions-api backup: cannot copy ${databasePath} to ${missing}: there is no folder ${join(folder, 'no-such-folder')}\n` });
  });

  it("writes its copy under a name of its own run: another run's partial copy there is neither used nor deleted", async () => {
    const databasePath = join(folder, 'partials-source.db');
    await openSqliteStore(databasePath).close();
    const target = join(folder, 'partials-copy.db');
    const others = [join(folder, '.partials-copy.db.partial'), join(folder, `.partials-copy.db.partial-${process.pid}`)];
    for (const other of others) writeFileSync(other, 'another run is writing this');
    expect(await backup([target], { DATABASE_PATH: databasePath })).toMatchObject({ status: 0, stderr: '' });
    for (const other of others) expect(readFileSync(other, 'utf8')).toBe('another run is writing this');
    expect(statSync(target).mode & 0o777).toBe(0o600); // private, as the database it copies
    const copy = new Database(target, { readonly: true });
    expect(copy.pragma('quick_check', { simple: true })).toBe('ok');
    copy.close();
  });

  // Root may write anywhere but in an immutable folder (chattr +i): access() says EPERM there.
  it.skipIf(process.getuid?.() !== 0)('says why it cannot write the copy: a folder it may not write', async () => {
    const databasePath = join(folder, 'locked-source.db');
    await openSqliteStore(databasePath).close();
    const locked = mkdtempSync(join(folder, 'locked-'));
    execFileSync('chattr', ['+i', locked]);
    try {
      const copy = join(locked, 'copy.db');
      expect(await backup([copy], { DATABASE_PATH: databasePath })).toMatchObject({ status: 1, stderr: `sessions-api backup: cannot copy ${databasePath} to ${copy}: this process may not write ${locked} (EPERM)\n` });
    } finally {
      execFileSync('chattr', ['-i', locked]);
    }
    expect(readdirSync(locked)).toEqual([]);
  });

  it('refuses, in one line, an existing file, PostgreSQL, :memory:, a missing or foreign database, and a bad command line', async () => {
    const databasePath = join(folder, 'refusals.db');
    const made = await backup([join(folder, 'first.db')], { DATABASE_PATH: databasePath });
    expect(made).toMatchObject({ status: 1, stderr: `sessions-api backup: no database at ${databasePath}\n` });
    const foreign = join(folder, 'foreign.db');
    const other = new Database(foreign);
    other.exec('CREATE TABLE users (id INTEGER)');
    other.close();
    const existing = join(folder, 'existing.db');
    writeFileSync(existing, 'keep me');
    const cases: Array<[string[], Record<string, string>, number, string]> = [
      [[existing], { DATABASE_PATH: foreign }, 1, `sessions-api backup: ${existing} exists: name a new file\n`],
      [[join(folder, 'pg.db')], { DATABASE_URL: 'postgres://db/sessions' }, 1, 'sessions-api backup: DATABASE_URL is set: this copies a SQLite file; back PostgreSQL up with pg_dump\n'],
      [[join(folder, 'memory.db')], { DATABASE_PATH: ':memory:' }, 1, 'sessions-api backup: DATABASE_PATH is :memory:, which no other process can read\n'],
      [[join(folder, 'foreign-copy.db')], { DATABASE_PATH: foreign }, 1, `sessions-api backup: cannot copy ${foreign} to ${join(folder, 'foreign-copy.db')}: DATABASE_PATH is not a Sessions API database (it has tables, users, and no schema version)\n`],
      [[], { DATABASE_PATH: foreign }, 2, 'sessions-api backup: usage: npm run backup -- <new file>   (copies the SQLite database at DATABASE_PATH)\n'],
      [['a.db', 'b.db'], { DATABASE_PATH: foreign }, 2, 'sessions-api backup: usage: npm run backup -- <new file>   (copies the SQLite database at DATABASE_PATH)\n'],
      [['--force'], { DATABASE_PATH: foreign }, 2, 'sessions-api backup: usage: npm run backup -- <new file>   (copies the SQLite database at DATABASE_PATH)\n'],
    ];
    for (const [args, env, status, stderr] of cases) expect(await backup(args, env), args.join(' ')).toMatchObject({ status, stderr, stdout: '' });
    expect(existsSync(join(folder, 'foreign-copy.db'))).toBe(false);
    expect(readFileSync(existing, 'utf8')).toBe('keep me');
    expect((await backup(['--help'], {})).stdout).toMatch(/^usage: npm run backup/);
  });
});
