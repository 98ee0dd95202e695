// The records of idempotent requests on SQLite: one row appended per keyed write, in the
// write's own transaction, and no index on the key. A unique index on the key's digest
// took one random page per record (written to the WAL, then checkpointed): 20-30 µs of a
// keyed create. Instead each connection finds a key through a map in memory, digest →
// the `seq` of its latest record, built from the rows themselves: all of them at open,
// then the rows appended since it last read. A write reads those first, under the write
// lock (every group commit begins IMMEDIATE), so no other process can append a record
// between that read and the key's check: a key is still written once, across processes.
//
// `seq` is AUTOINCREMENT: never given twice, even after the newest rows were trimmed,
// so "appended since" is `seq >` the last one read. Rows are in seq order, which is
// expiry order (a clock stepped back by up to an hour included, see `append`): the trim walks
// them from the oldest, and the map (kept in seq order) forgets the keys whose rows are gone.
import { hash } from 'node:crypto';
import type Database from 'better-sqlite3';
import { IdempotencyKeyTaken, type IdempotencyRecord } from '../store.js';

/**
 * The key's digest: the first 16 bytes of SHA-256 over scope and key, in hex. Written out
 * of the bytes, not sliced from the whole digest's hex: a slice would keep its 64
 * characters alive in the map (142 bytes a key against 78, measured at 10^6).
 */
export function idempotencyDigest(scope: string, key: string): string {
  return hash('sha256', `${scope}\n${key}`, 'buffer').toString('hex', 0, 16);
}

/** The digest as the bytes migration 15 stored (the table's id before migration 23). */
export function idempotencyId(scope: string, key: string): Buffer {
  return Buffer.from(idempotencyDigest(scope, key), 'hex');
}

type RecordRow = Pick<IdempotencyRecord, 'fingerprint' | 'status' | 'body'> & { created_at: number; expires_at: number };

export interface IdempotencyRecords {
  /** Call inside the write's transaction; a live record under the key throws IdempotencyKeyTaken. */
  insert(record: IdempotencyRecord): void;
  get(scope: string, key: string, now: number): IdempotencyRecord | undefined;
  /** Replaces a live record's answer, if the record is the one `fingerprint` wrote; whether it did. Inside a write. */
  settle(record: Pick<IdempotencyRecord, 'scope' | 'key' | 'fingerprint' | 'status' | 'body'>, now: number): boolean;
  /** Deletes expired records among the `limit` oldest; the count deleted. */
  purge(now: number, limit: number): number;
  /** Savepoints of the transaction in progress: the records it wrote so far. */
  mark(): number;
  /** The write that made the mark was rolled back to its savepoint. */
  rollbackTo(mark: number): void;
  /** The transaction committed: its records join the map. */
  committed(): void;
  /** The transaction did not commit. */
  discard(): void;
  /** Keys the map holds (for tests: it must not keep the trimmed ones). */
  keysInMemory(): number;
}

/** How much later than its own a record's expiry may be made, to follow the record before it (see `append`). */
const INHERITED_EXPIRY_MAX_MS = 3_600_000;

export function idempotencyRecords(db: Database.Database): IdempotencyRecords {
  // Never before the newest record's expiry when that is at most INHERITED_EXPIRY_MAX_MS
  // later: after a clock stepped back (NTP), a record lives that much longer and seq order
  // stays expiry order (else one record outliving those after it holds back the trim, which
  // walks the oldest rows). A record from a clock that was far ahead is not followed: every
  // later key would stay taken as long as it.
  const append = db.prepare<{ digest: string; fingerprint: string; status: number; body: string; createdAt: number; expiresAt: number }>(
    `INSERT INTO idempotency_records (digest, fingerprint, status, body, created_at, expires_at)
       VALUES (@digest, @fingerprint, @status, @body, @createdAt, max(@expiresAt, coalesce((SELECT expires_at FROM idempotency_records
         WHERE seq = (SELECT max(seq) FROM idempotency_records) AND expires_at <= @expiresAt + ${INHERITED_EXPIRY_MAX_MS}), 0)))`,
  );
  const appendedAfter = db.prepare<[number], [number, string]>('SELECT seq, digest FROM idempotency_records WHERE seq > ? ORDER BY seq').raw();
  const expiryOf = db.prepare<[number], number>('SELECT expires_at FROM idempotency_records WHERE seq = ?').pluck();
  const deleteAt = db.prepare<[number]>('DELETE FROM idempotency_records WHERE seq = ?');
  const recordAt = db.prepare<[number], RecordRow>('SELECT fingerprint, status, body, created_at, expires_at FROM idempotency_records WHERE seq = ?');
  const settleAt = db.prepare<[number, string, number, string, number]>(
    'UPDATE idempotency_records SET status = ?, body = ? WHERE seq = ? AND fingerprint = ? AND expires_at > ?',
  );
  const trim = db.prepare<{ now: number; limit: number }>(
    `DELETE FROM idempotency_records WHERE seq IN
       (SELECT seq FROM (SELECT seq, expires_at FROM idempotency_records ORDER BY seq LIMIT @limit) WHERE expires_at <= @now)`,
  );
  const oldestSeq = db.prepare<[], number | null>('SELECT min(seq) FROM idempotency_records').pluck();

  /** Committed records: digest → seq of the key's latest, in seq order (an entry moved is deleted and set again). */
  const live = new Map<string, number>();
  let lastRead = 0;
  /** Records of the transaction in progress: digest → seq, and the digests in the order written. */
  const written = new Map<string, number>();
  const writtenOrder: string[] = [];
  /** The transaction in progress has read the rows appended before it took the write lock. */
  let caughtUp = false;

  function note(digest: string, seq: number): void {
    live.delete(digest);
    live.set(digest, seq);
  }
  /** Only outside a transaction, or inside one before it wrote a record (its rows are not committed). */
  function readAppended(): void {
    for (const [seq, digest] of appendedAfter.iterate(lastRead)) {
      note(digest, seq);
      lastRead = seq;
    }
  }
  function catchUp(): void {
    if (caughtUp) return;
    readAppended();
    caughtUp = true;
  }
  const seqOf = (digest: string) => written.get(digest) ?? live.get(digest);
  function endTransaction(): void {
    written.clear();
    writtenOrder.length = 0;
    caughtUp = false;
  }

  readAppended();

  return {
    insert(record) {
      catchUp();
      const digest = idempotencyDigest(record.scope, record.key);
      const seq = seqOf(digest);
      if (seq !== undefined) {
        const expiresAt = expiryOf.get(seq);
        if (expiresAt !== undefined && expiresAt > record.createdAt) throw new IdempotencyKeyTaken();
        // Expired and not yet trimmed: it makes way, so the rows stay in expiry order.
        if (expiresAt !== undefined) deleteAt.run(seq);
      }
      const { fingerprint, status, body, createdAt, expiresAt } = record;
      const { lastInsertRowid } = append.run({ digest, fingerprint, status, body, createdAt, expiresAt });
      written.set(digest, Number(lastInsertRowid));
      writtenOrder.push(digest);
    },
    get(scope, key, now) {
      if (!db.inTransaction) readAppended();
      const seq = seqOf(idempotencyDigest(scope, key));
      const row = seq === undefined ? undefined : recordAt.get(seq);
      if (!row || row.expires_at <= now) return undefined;
      return { scope, key, fingerprint: row.fingerprint, status: row.status, body: row.body, createdAt: row.created_at, expiresAt: row.expires_at };
    },
    settle({ scope, key, fingerprint, status, body }, now) {
      catchUp();
      const seq = seqOf(idempotencyDigest(scope, key));
      return seq !== undefined && settleAt.run(status, body, seq, fingerprint, now).changes > 0;
    },
    purge(now, limit) {
      const trimmed = trim.run({ now, limit }).changes;
      // Rows go oldest first (here or in another process): the map forgets the keys below the oldest left.
      const oldest = oldestSeq.get() ?? Infinity;
      for (const [digest, seq] of live) {
        if (seq >= oldest) break;
        live.delete(digest);
      }
      return trimmed;
    },
    mark: () => writtenOrder.length,
    rollbackTo(mark) {
      for (const digest of writtenOrder.splice(mark)) written.delete(digest);
    },
    committed() {
      // Under the write lock since it read the rows appended before it: every seq up to its last is known.
      for (const digest of writtenOrder) {
        const seq = written.get(digest)!;
        note(digest, seq);
        lastRead = seq;
      }
      endTransaction();
    },
    discard: endTransaction,
    keysInMemory: () => live.size,
  };
}
