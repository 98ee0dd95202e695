// The records of idempotent requests on SQLite: one row appended per keyed write, in the
// write's own transaction. The row's one index is the unique 16-byte digest of scope and
// key: the only B-tree a record takes a random page of, and small. No index on expiry:
// rows are in insertion order (rowid), which is expiry order, and the trim walks them
// from the oldest. A key whose record expired unpurged is freed by deleting that row and
// appending the new one, so the order holds.
import { hash } from 'node:crypto';
import type Database from 'better-sqlite3';
import { IdempotencyKeyTaken, type IdempotencyRecord } from '../store.js';

/** The row's unique id: the first 16 bytes of SHA-256 over scope and key. */
export function idempotencyId(scope: string, key: string): Buffer {
  return hash('sha256', `${scope}\n${key}`, 'buffer').subarray(0, 16);
}

type RecordRow = Pick<IdempotencyRecord, 'fingerprint' | 'status' | 'body'> & { created_at: number; expires_at: number };

export interface IdempotencyRecords {
  /** Call inside the write's transaction; a live record under the key throws IdempotencyKeyTaken. */
  insert(record: IdempotencyRecord): void;
  get(scope: string, key: string, now: number): IdempotencyRecord | undefined;
  /** Replaces a live record's answer, if the record is the one `fingerprint` wrote; whether it did. */
  settle(record: Pick<IdempotencyRecord, 'scope' | 'key' | 'fingerprint' | 'status' | 'body'>, now: number): boolean;
  /** Deletes expired records among the `limit` oldest; the count deleted. */
  purge(now: number, limit: number): number;
}

export function idempotencyRecords(db: Database.Database): IdempotencyRecords {
  const insert = db.prepare<[Buffer, string, number, string, number, number]>(
    `INSERT INTO idempotency_records (id, fingerprint, status, body, created_at, expires_at)
     VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
  );
  const deleteExpired = db.prepare<[Buffer, number]>('DELETE FROM idempotency_records WHERE id = ? AND expires_at <= ?');
  const get = db.prepare<[Buffer, number], RecordRow>(
    'SELECT fingerprint, status, body, created_at, expires_at FROM idempotency_records WHERE id = ? AND expires_at > ?',
  );
  const settle = db.prepare<[number, string, Buffer, string, number]>(
    'UPDATE idempotency_records SET status = ?, body = ? WHERE id = ? AND fingerprint = ? AND expires_at > ?',
  );
  const purge = db.prepare<{ now: number; limit: number }>(
    `DELETE FROM idempotency_records WHERE rowid IN
       (SELECT rowid FROM (SELECT rowid, expires_at FROM idempotency_records ORDER BY rowid LIMIT @limit) WHERE expires_at <= @now)`,
  );

  return {
    insert(record) {
      const id = idempotencyId(record.scope, record.key);
      const row = [id, record.fingerprint, record.status, record.body, record.createdAt, record.expiresAt] as const;
      if (insert.run(...row).changes > 0) return;
      if (deleteExpired.run(id, record.createdAt).changes > 0 && insert.run(...row).changes > 0) return;
      throw new IdempotencyKeyTaken();
    },
    get(scope, key, now) {
      const row = get.get(idempotencyId(scope, key), now);
      if (!row) return undefined;
      return { scope, key, fingerprint: row.fingerprint, status: row.status, body: row.body, createdAt: row.created_at, expiresAt: row.expires_at };
    },
    settle({ scope, key, fingerprint, status, body }, now) {
      return settle.run(status, body, idempotencyId(scope, key), fingerprint, now).changes > 0;
    },
    purge(now, limit) {
      return purge.run({ now, limit }).changes;
    },
  };
}
