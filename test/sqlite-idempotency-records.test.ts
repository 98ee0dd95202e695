// The SQLite idempotency records without an index on the key: each connection finds keys
// through a map in memory. Two connections on one file stand for two processes; their
// writes run as the group commit runs them (BEGIN IMMEDIATE, a savepoint per write, the
// module told of rollbacks and commits).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { idempotencyDigest, idempotencyId, idempotencyRecords, type IdempotencyRecords } from '../src/storage/sqlite/idempotency-records.js';
import { migrate, migrations } from '../src/storage/sqlite/migrations.js';
import { IdempotencyKeyTaken, type IdempotencyRecord } from '../src/storage/store.js';

const DAY = 24 * 60 * 60_000;
const folders: string[] = [];
const connections: Database.Database[] = [];
afterEach(() => {
  for (const db of connections.splice(0)) db.close();
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

function databaseFile(): string {
  const folder = mkdtempSync(join(tmpdir(), 'idempotency-records-'));
  folders.push(folder);
  const path = join(folder, 'x.db');
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  migrate(db);
  db.close();
  return path;
}

/** A connection with its records, writing as the group commit does. */
function connect(path: string) {
  const db = new Database(path);
  connections.push(db);
  const records = idempotencyRecords(db);
  const inSavepoint = db.transaction((work: () => void) => work());
  /** One transaction of writes, each in its savepoint; a write that throws is rolled back alone. */
  const batch = db.transaction((writes: Array<() => void>) =>
    writes.map((work) => {
      const mark = records.mark();
      try {
        inSavepoint(work);
        return 'ok';
      } catch (error) {
        records.rollbackTo(mark);
        return error instanceof IdempotencyKeyTaken ? 'taken' : String(error);
      }
    }),
  ).immediate;
  return {
    db,
    records,
    write(...writes: Array<() => void>): string[] {
      try {
        const outcomes = batch(writes);
        records.committed();
        return outcomes;
      } catch (error) {
        records.discard();
        throw error;
      }
    },
    rows: () => db.prepare('SELECT count(*) FROM idempotency_records').pluck().get() as number,
  };
}

const record = (key: string, createdAt = 0, expiresAt = createdAt + DAY): IdempotencyRecord => ({
  scope: 'anonymous',
  key,
  fingerprint: 'f',
  status: 201,
  body: '{}',
  createdAt,
  expiresAt,
});

function insertOf(records: IdempotencyRecords, key: string, createdAt = 0, expiresAt?: number) {
  return () => records.insert(record(key, createdAt, expiresAt));
}

describe('SQLite idempotency records (no index on the key)', () => {
  it("finds a key written by another connection after this one opened: it reads the rows appended since, under the write lock", () => {
    const path = databaseFile();
    const a = connect(path);
    const b = connect(path);
    expect(a.write(insertOf(a.records, 'k'))).toEqual(['ok']);
    expect(b.write(insertOf(b.records, 'k'))).toEqual(['taken']);
    expect(b.records.get('anonymous', 'k', 1)?.fingerprint).toBe('f');
    expect(a.rows()).toBe(1);
  });

  it('never numbers two records alike: after every row was trimmed, a new record is still seen as new by the other connection', () => {
    const path = databaseFile();
    const a = connect(path);
    const b = connect(path);
    a.write(insertOf(a.records, 'first', 0, 10));
    expect(b.records.get('anonymous', 'first', 5)).toBeDefined(); // b has read up to it
    expect(a.records.purge(10, 100)).toBe(1);
    expect(a.rows()).toBe(0);
    a.write(insertOf(a.records, 'second', 20));
    // Numbered again from 1, the row would look already read to b, which would write the key twice.
    expect(b.write(insertOf(b.records, 'second', 20))).toEqual(['taken']);
    expect(a.rows()).toBe(1);
  });

  it('forgets a record rolled back to its savepoint: the key is free in the same transaction and after', () => {
    const path = databaseFile();
    const a = connect(path);
    const failsAfterItsRecord = (key: string) => () => {
      a.records.insert(record(key));
      throw new Error('the write failed after its record');
    };
    expect(a.write(failsAfterItsRecord('k'), insertOf(a.records, 'k'))).toEqual(['Error: the write failed after its record', 'ok']);
    expect(a.rows()).toBe(1);
    expect(a.write(insertOf(a.records, 'k'))).toEqual(['taken']);
    // `m` takes the number `j`'s rolled-back row had: `j` must not be found in it.
    expect(a.write(failsAfterItsRecord('j'), insertOf(a.records, 'm'))).toEqual(['Error: the write failed after its record', 'ok']);
    expect(a.write(insertOf(a.records, 'j'))).toEqual(['ok']);
    expect(a.rows()).toBe(3);
  });

  it('forgets the records of a transaction that did not commit', () => {
    const path = databaseFile();
    const a = connect(path);
    const b = connect(path);
    const abort = () => {
      throw Object.assign(new Error('disk full'), { abort: true });
    };
    // A write that throws outside its savepoint's reach aborts the whole transaction.
    const failing = a.db.transaction(() => {
      a.records.insert(record('k'));
      abort();
    }).immediate;
    expect(() => failing()).toThrow('disk full');
    a.records.discard();
    expect(a.rows()).toBe(0);
    // b writes the key; a must see it (a's aborted attempt may not have advanced what it read).
    expect(b.write(insertOf(b.records, 'k'))).toEqual(['ok']);
    expect(a.write(insertOf(a.records, 'k'))).toEqual(['taken']);
  });

  it('keeps in memory only the keys whose rows are left, whichever connection trimmed them', () => {
    const path = databaseFile();
    const a = connect(path);
    const b = connect(path);
    a.write(...['a1', 'a2', 'a3'].map((key) => insertOf(a.records, key, 0, 10)));
    a.write(insertOf(a.records, 'late', 0, 1000));
    expect(b.records.get('anonymous', 'a1', 5)).toBeDefined();
    expect([a.records.keysInMemory(), b.records.keysInMemory()]).toEqual([4, 4]);
    expect(a.records.purge(10, 100)).toBe(3);
    expect(a.records.keysInMemory()).toBe(1);
    expect(b.records.purge(10, 100)).toBe(0);
    expect(b.records.keysInMemory()).toBe(1);
    expect(b.records.get('anonymous', 'late', 5)).toBeDefined();
  });

  it('lets an expired record make way, and trims the key in its new place', () => {
    const path = databaseFile();
    const a = connect(path);
    a.write(insertOf(a.records, 'k', 0, 10), insertOf(a.records, 'other', 0, 20));
    expect(a.write(insertOf(a.records, 'k', 10, 30))).toEqual(['ok']);
    expect(a.rows()).toBe(2);
    expect(a.records.purge(20, 1)).toBe(1); // `other`, now the oldest
    expect(a.records.get('anonymous', 'k', 25)?.createdAt).toBe(10);
  });

  it('keeps expiry in seq order after a clock stepped back: a record written then lives as long as the one before, and the trim is not held back', () => {
    const a = connect(databaseFile());
    a.write(insertOf(a.records, 'before-the-step', 1000, 1000 + DAY));
    const keys = Array.from({ length: 200 }, (_, i) => `after-${i}`);
    // An hour back: each would expire an hour before the record ahead of it.
    a.write(...keys.map((key) => insertOf(a.records, key, 1000 - 3_600_000, 1000 - 3_600_000 + DAY)));
    expect(a.records.get('anonymous', 'after-0', 1000 + DAY - 1)?.expiresAt).toBe(1000 + DAY);
    expect(a.records.purge(1000 + DAY - 1, 100)).toBe(0);
    // Due together: the oldest rows, 100 at a time, are all expired.
    expect(a.records.purge(1000 + DAY, 100)).toBe(100);
    expect(a.records.purge(1000 + DAY, 100)).toBe(100);
    expect(a.records.purge(1000 + DAY, 100)).toBe(1);
    expect(a.rows()).toBe(0);
  });

  it('does not follow a record from a clock that was far ahead: a later record keeps its own 24 hours, its key free after them', () => {
    const YEAR = 365 * DAY;
    const a = connect(databaseFile());
    a.write(insertOf(a.records, 'from-the-future', YEAR, YEAR + DAY));
    a.write(insertOf(a.records, 'today', 1000, 1000 + DAY));
    expect(a.records.get('anonymous', 'today', 1000)?.expiresAt).toBe(1000 + DAY);
    expect(a.records.get('anonymous', 'today', 1000 + DAY)).toBeUndefined();
    expect(a.write(insertOf(a.records, 'today', 1000 + DAY, 1000 + 2 * DAY))).toEqual(['ok']);
  });

  it('follows the newest record, not the oldest, and only up to an hour later than its own expiry', () => {
    const HOUR = 3_600_000;
    const at = 10 * HOUR;
    const a = connect(databaseFile());
    a.write(insertOf(a.records, 'first', 0, at + 10), insertOf(a.records, 'second', 0, at + 20));
    a.write(insertOf(a.records, 'third', 0, at + 15));
    expect(a.records.get('anonymous', 'third', 0)?.expiresAt).toBe(at + 20);
    a.write(insertOf(a.records, 'an-hour-behind', 0, at + 20 - HOUR));
    expect(a.records.get('anonymous', 'an-hour-behind', 0)?.expiresAt).toBe(at + 20);
    a.write(insertOf(a.records, 'further-behind', 0, at + 20 - HOUR - 1));
    expect(a.records.get('anonymous', 'further-behind', 0)?.expiresAt).toBe(at + 20 - HOUR - 1);
  });

  it('keeps the records of a database from before migration 23, in their order, under the same digest', () => {
    const db = new Database(':memory:');
    connections.push(db);
    db.function('idempotency_id', (scope, key) => idempotencyId(String(scope), String(key))); // migration 15's
    for (const sql of migrations.slice(0, 22)) db.exec(sql);
    db.pragma('user_version = 22');
    const insert = db.prepare('INSERT INTO idempotency_records (id, fingerprint, status, body, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)');
    insert.run(idempotencyId('s', 'old'), 'f1', 201, '{"a":1}', 1, 10);
    insert.run(idempotencyId('s', 'new'), 'f2', 200, '{"b":2}', 2, 20);
    migrate(db);
    expect(db.prepare('SELECT seq, digest FROM idempotency_records ORDER BY seq').raw().all()).toEqual([
      [1, idempotencyDigest('s', 'old')],
      [2, idempotencyDigest('s', 'new')],
    ]);
    const records = idempotencyRecords(db);
    expect(records.get('s', 'new', 5)).toEqual({ scope: 's', key: 'new', fingerprint: 'f2', status: 200, body: '{"b":2}', createdAt: 2, expiresAt: 20 });
    expect(records.get('s', 'old', 10)).toBeUndefined();
  });
});
