// The server as a service under a supervisor (L19): where its stdout goes must not stop the API
// or its exit, and a stop signal sent before it listens must not be lost (as PID 1).
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { migrations } from '../src/storage/sqlite/migrations.js';
import { cleanUpServerProcesses, fetchChecked, startServer, tempDatabase } from './helpers/server-process.js';

afterEach(cleanUpServerProcesses);

const within = <T>(ms: number, promise: Promise<T>) =>
  Promise.race([promise, new Promise<'timed out'>((resolve) => setTimeout(() => resolve('timed out'), ms))]);

/** The health check's status, its answer checked against the spec; the error's name when none came. */
const health = (url: string) => fetchChecked(url, 'GET', '/api/messaging/sessions/health').then((r) => r.status, (e: Error) => e.name);

describe('stdout', () => {
  it('on a full device (ENOSPC, a log disk full): the server keeps answering after its first log line, and stops on SIGTERM', { timeout: 30_000 }, async () => {
    const full = openSync('/dev/full', 'w');
    try {
      const server = startServer({ LOG_LEVEL: 'info', DATABASE_PATH: tempDatabase() }, { stdout: full });
      const url = await server.listening;
      for (let i = 0; i < 5; i++) expect(await health(url)).toBe(200);
      server.child.kill('SIGTERM');
      expect(await within(12_000, server.exited)).toBe(0);
    } finally {
      closeSync(full);
    }
  });

  it('a pipe nobody reads (a stalled log shipper): the server keeps answering, and exits on SIGTERM within the grace period', { timeout: 60_000 }, async () => {
    const server = startServer({ LOG_LEVEL: 'info', SHUTDOWN_GRACE_SECONDS: '3', DATABASE_PATH: tempDatabase() });
    server.child.stdout!.pause(); // nobody reads: the 64 KB pipe fills
    const url = await server.listening;
    // ~500 bytes of log a request at info: 600 requests are about 300 KB, far past the pipe's 64 KB.
    for (let i = 0; i < 60; i++) await Promise.all(Array.from({ length: 10 }, () => health(url)));
    expect(await health(url)).toBe(200);
    server.child.kill('SIGTERM');
    // Stopping must not wait for a reader that never comes (pino's writer retried EAGAIN for ever, L19).
    expect(await within(8_000, server.exited)).not.toBe('timed out');
  });
});

describe('a SIGTERM sent while the schema is upgraded', () => {
  const canUnshare = spawnSync('unshare', ['--fork', '--pid', '--mount-proc', 'true']).status === 0;
  // As PID 1 (a container running `node dist/main.js`), a signal with no handler is ignored:
  // the upgrade finishes and the server serves, though it was told to stop.
  it.skipIf(!canUnshare)('as PID 1: the process exits once the upgrade is done, and never listens', { timeout: 120_000 }, async () => {
    const path = tempDatabase();
    mkdirSync(dirname(path), { recursive: true });
    const old = new Database(path);
    old.function('idempotency_id', () => null);
    old.transaction(() => {
      for (const sql of migrations.slice(0, 11)) old.exec(sql);
      old.pragma('user_version = 11');
      old.exec("INSERT INTO agents VALUES ('a', 'Ada', NULL, '{}', 0)");
      const session = old.prepare(`INSERT INTO sessions (id, agent_id, user_id, created_at, last_activity, anchor_at, expires_at, warns_at,
        timeout_minutes, auto_renew, max_duration_minutes, warning_threshold_minutes, renewal_count, status, metadata, announced, due_at)
        VALUES (?, 'a', 'u', 0, 0, 0, 9000000000000, 8000000000000, 30, 1, 720, 5, 0, 'active', '{}', 'nothing', NULL)`);
      const message = old.prepare("INSERT INTO messages (session_id, position, id, created_at, author_id, is_agent, content, attachments, metadata) VALUES (?, ?, ?, 0, 'u', 0, 'hello', '[]', '{}')");
      for (let i = 0; i < 5_000; i++) {
        session.run(`s${i}`);
        for (let j = 0; j < 10; j++) message.run(`s${i}`, j, `m${i}_${j}`);
      }
    })();
    old.close();
    const server = startServer({ DATABASE_PATH: path }, { wrap: ['unshare', '--fork', '--pid', '--mount-proc', '--kill-child'] });
    await new Promise<void>((resolve) => server.child.stderr!.on('data', () => server.output().stderr.includes('upgrading the database schema') && resolve()));
    // The signal goes to the server (PID 1 inside), not to unshare.
    const inner = spawnSync('pgrep', ['-P', String(server.child.pid)], { encoding: 'utf8' }).stdout.trim();
    expect(inner).toMatch(/^\d+$/); // (process.kill(0) would signal this test's own process group)
    process.kill(Number(inner), 'SIGTERM');
    // Without a handler before listening, PID 1 ignored it: the upgrade ended and the server listened (L19).
    const outcome = await Promise.race([server.exited.then(() => 'exited'), server.listening.then(() => 'listening', () => 'exited')]);
    expect(outcome, server.output().stderr).toBe('exited');
  });
});
