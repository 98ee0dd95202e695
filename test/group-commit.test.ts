import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { groupCommit, type RunWrite } from '../src/storage/sqlite/group-commit.js';

let directory: string;
let db: Database.Database;
let reader: Database.Database; // a second connection sees only committed data
let write: RunWrite;

beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), 'group-commit-'));
  db = new Database(join(directory, 'db'));
  db.pragma('journal_mode = WAL');
  db.pragma('foreign_keys = ON');
  db.exec(`
    CREATE TABLE t (k TEXT PRIMARY KEY);
    CREATE TABLE parent (id TEXT PRIMARY KEY);
    CREATE TABLE child (parent_id TEXT REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED);
  `);
  reader = new Database(join(directory, 'db'), { readonly: true });
  write = groupCommit(db);
});
afterEach(() => {
  reader.close();
  db.close();
  rmSync(directory, { recursive: true, force: true });
});

const insert = (k: string) => () => db.prepare('INSERT INTO t (k) VALUES (?)').run(k).changes;
const keys = () => reader.prepare('SELECT k FROM t ORDER BY k').pluck().all();

describe('group commit', () => {
  it('runs writes issued in one turn of the event loop in one transaction, each with its own result', async () => {
    const committedSeenByLastWrite = () => keys();
    const results = await Promise.all([write(insert('a')), write(insert('b')), write(committedSeenByLastWrite)]);
    // The third write ran after the first two, yet nothing had been committed: one transaction.
    expect(results).toEqual([1, 1, []]);
    expect(keys()).toEqual(['a', 'b']);
    expect(db.inTransaction).toBe(false);
  });

  it('rolls back and rejects only the write that failed; the rest of its batch commits', async () => {
    const outcomes = await Promise.allSettled([write(insert('a')), write(insert('a')), write(insert('c'))]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((outcomes[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'SQLITE_CONSTRAINT_PRIMARYKEY' });
    expect(keys()).toEqual(['a', 'c']);
  });

  it('undoes every statement of a failed write, not just the last', async () => {
    const partial = () => {
      db.prepare('INSERT INTO t (k) VALUES (?)').run('x');
      throw new Error('half done');
    };
    await expect(write(partial)).rejects.toThrow('half done');
    expect(keys()).toEqual([]);
  });

  it('settles a write only after its transaction committed', async () => {
    let seenInTransaction: boolean | undefined;
    const pending = write(insert('a')).then(() => {
      seenInTransaction = db.inTransaction;
    });
    expect(keys()).toEqual([]); // nothing runs before the batch is flushed
    await pending;
    expect(seenInTransaction).toBe(false);
    expect(keys()).toEqual(['a']);
  });

  it('starts a new batch for writes issued after a flush', async () => {
    await write(insert('a'));
    await write(insert('b'));
    expect(keys()).toEqual(['a', 'b']);
  });

  it('rejects every write of the batch, and runs none after, when SQLite rolled the whole transaction back (disk full, I/O error)', async () => {
    const rolledBackWhole = () => {
      db.exec('ROLLBACK'); // what SQLite does on its own after SQLITE_FULL or SQLITE_IOERR
      throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    };
    let ranAfter = false;
    const after = () => {
      ranAfter = true;
      return insert('c')();
    };
    const outcomes = await Promise.allSettled([write(insert('a')), write(rolledBackWhole), write(after)]);
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect((outcomes[0] as PromiseRejectedResult).reason).toMatchObject({ code: 'SQLITE_FULL' });
    expect(ranAfter).toBe(false);
    expect(keys()).toEqual([]);
    expect(db.inTransaction).toBe(false);
    await write(insert('b')); // the next batch is unaffected
    expect(keys()).toEqual(['b']);
  });

  it('rejects every write of the batch when the commit itself fails, and keeps none of them', async () => {
    // A deferred foreign key is checked at COMMIT, after every savepoint was released.
    const orphan = () => db.prepare('INSERT INTO child (parent_id) VALUES (?)').run('missing').changes;
    const outcomes = await Promise.allSettled([write(insert('a')), write(orphan)]);
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected']);
    expect((outcomes[0] as PromiseRejectedResult).reason).toMatchObject({ code: 'SQLITE_CONSTRAINT_FOREIGNKEY' });
    expect(keys()).toEqual([]);
    expect(db.inTransaction).toBe(false);
    await write(insert('b')); // the next batch is unaffected
    expect(keys()).toEqual(['b']);
  });
});
