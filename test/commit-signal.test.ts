import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { commitSignal } from '../src/storage/sqlite/commit-signal.js';
import { externalCommits } from '../src/storage/sqlite/external-commits.js';

const directories: string[] = [];
/** A database path in a temporary directory, removed after the test. */
function tempPath(prefix: string, name: string): string {
  const directory = mkdtempSync(join(tmpdir(), prefix));
  directories.push(directory);
  return join(directory, name);
}
afterEach(() => {
  for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true });
});

describe('commitSignal (the WAL header as a cheap change signal)', () => {
  const open: { close(): void }[] = [];
  afterEach(() => open.splice(0).forEach((item) => item.close()));

  function walDatabase() {
    const path = tempPath('commit-signal-', 'x.db');
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE t (v INTEGER)');
    open.push(db);
    return { path, db };
  }

  it('moves after a commit from another connection, and only then', () => {
    const { path } = walDatabase();
    const signal = commitSignal(path);
    open.push(signal);
    const other = new Database(path);
    open.push(other);
    expect(signal.moved()).toBe(true); // the first look
    expect(signal.moved()).toBe(false);
    other.prepare('SELECT count(*) FROM t').get();
    expect(signal.moved()).toBe(false); // a read is no commit
    other.prepare('INSERT INTO t VALUES (1)').run();
    expect(signal.moved()).toBe(true);
    expect(signal.moved()).toBe(false);
    for (let i = 0; i < 3; i += 1) {
      other.prepare('INSERT INTO t VALUES (?)').run(i);
      expect(signal.moved()).toBe(true);
    }
  });

  it('moves when the WAL starts over after a checkpoint', () => {
    const { path, db } = walDatabase();
    const signal = commitSignal(path);
    open.push(signal);
    db.prepare('INSERT INTO t VALUES (1)').run();
    signal.moved();
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.prepare('INSERT INTO t VALUES (2)').run();
    expect(signal.moved()).toBe(true);
  });

  it('always answers "moved" without a -shm file to read', () => {
    const memory = commitSignal(':memory:');
    const missing = commitSignal(tempPath('commit-signal-', 'none.db'));
    open.push(memory, missing);
    for (let i = 0; i < 3; i += 1) expect([memory.moved(), missing.moved()]).toEqual([true, true]);
  });
});

describe('externalCommits (commits by other connections, one pragma per own commit)', () => {
  const open: { close(): void }[] = [];
  afterEach(() => open.splice(0).forEach((item) => item.close()));

  function twoConnections() {
    const path = tempPath('external-commits-', 'x.db');
    const own = new Database(path);
    own.pragma('journal_mode = WAL');
    own.exec('CREATE TABLE t (v INTEGER)');
    const other = new Database(path);
    const commits = externalCommits(own, path);
    open.push(commits, own, other);
    const insert = (db: Database.Database) => db.prepare('INSERT INTO t VALUES (1)').run();
    return { own, other, commits, insert };
  }

  it('moves on another connection\'s commit, not on its own commits taken in', () => {
    const { own, other, commits, insert } = twoConnections();
    const start = commits.generation();
    insert(own);
    commits.tookOwnCommit();
    expect(commits.generation()).toBe(start);
    insert(other);
    expect(commits.generation()).toBe(start + 1);
    expect(commits.generation()).toBe(start + 1);
    // Its own commit not taken in: a look costs the pragma, but it is still no change elsewhere.
    insert(own);
    expect(commits.generation()).toBe(start + 1);
  });

  it('does not hide a commit elsewhere that landed between its own commit and taking it in', () => {
    const { own, other, commits, insert } = twoConnections();
    const start = commits.generation();
    insert(own);
    insert(other);
    commits.tookOwnCommit();
    expect(commits.generation()).toBe(start + 1);
  });
});
