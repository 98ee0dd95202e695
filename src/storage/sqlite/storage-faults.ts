// SQLite failures that are the storage's, not the request's: the store turns them into
// StorageFault (503 STORAGE_UNAVAILABLE, retry later), never a generic 500.
import { statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { withFaultsMapped } from '../faults-mapped.js';
import { StorageFault, type Store } from '../store.js';

const FAULTS: [prefix: string, cause: string][] = [
  ['SQLITE_BUSY', 'the database is locked by another connection'],
  ['SQLITE_LOCKED', 'the database is locked'],
  ['SQLITE_FULL', 'the disk is full'],
  ['SQLITE_READONLY', 'the database is read-only'],
  ['SQLITE_IOERR', 'an I/O error'],
  ['SQLITE_CORRUPT', 'the database file is corrupt'],
  ['SQLITE_NOTADB', 'the file is not a database'],
  ['SQLITE_CANTOPEN', 'the database file cannot be opened'],
  ['SQLITE_PROTOCOL', 'a locking protocol error'],
  ['SQLITE_NOMEM', 'out of memory'],
];

/** The fault's cause in words, with SQLite's code; undefined for an error that is not a storage fault. */
function storageFaultCause(error: unknown): string | undefined {
  if (!(error instanceof Database.SqliteError)) return undefined;
  const fault = FAULTS.find(([prefix]) => error.code.startsWith(prefix));
  return fault && `${fault[1]} (${error.code})`;
}

/**
 * A check that the file at `path` is still the one opened: deleted or replaced under a
 * running server, its writes would go to a file nothing reads again (SQLite in WAL mode
 * does not notice). Throws a StorageFault then; nothing for an in-memory database.
 */
export function fileInPlace(path: string): () => void {
  if (path === ':memory:') return () => {};
  const opened = statSync(path);
  return () => {
    const now = statSync(path, { throwIfNoEntry: false });
    if (now?.ino === opened.ino && now.dev === opened.dev) return;
    throw new StorageFault(`the database file was ${now ? 'replaced' : 'deleted'} while the server ran (restart the server)`);
  };
}

/** A storage fault as a StorageFault; any other error as it is. */
function asStorageFault(error: unknown): unknown {
  const cause = storageFaultCause(error);
  return cause === undefined ? error : new StorageFault(cause, { cause: error });
}

/** The store with every storage fault its methods raise turned into a StorageFault. */
export function withStorageFaults(store: Store): Store {
  return withFaultsMapped(store, asStorageFault);
}

/** Up to this size the check on open reads every page (`PRAGMA quick_check`: about 4 ms per MB here). */
const FULL_CHECK_MAX_BYTES = 32 * 1024 * 1024;

/**
 * The check on open, before anything is served: throws on a file that is not a
 * database, is truncated, or has garbage in its pages. `PRAGMA quick_check` reads every
 * page (measured: 340-410 ms for a 83 MB file of 10^5 sessions), so a larger file gets
 * a check that takes a few ms whatever the size: the header, the schema, and the first
 * entries of every table and index (each b-tree's root and left edge). Damage it misses
 * answers 503 STORAGE_UNAVAILABLE on the requests that meet it, never a 500.
 */
export function checkOnOpen(db: Database.Database, fileBytes: number): void {
  if (fileBytes <= FULL_CHECK_MAX_BYTES) {
    const problems = db.pragma('quick_check') as { quick_check: string }[];
    if (problems[0]?.quick_check !== 'ok') throw new Error(`quick_check: ${problems.map((p) => p.quick_check).slice(0, 3).join('; ')}`);
    return;
  }
  const objects = db
    .prepare<[], { name: string; type: string; tbl_name: string }>(
      "SELECT name, type, tbl_name FROM sqlite_schema WHERE type IN ('table', 'index') AND name NOT LIKE 'sqlite_%'",
    )
    .all();
  for (const { name, type, tbl_name } of objects) {
    if (type === 'table') {
      db.prepare(`SELECT * FROM "${name}" LIMIT 1`).all();
      continue;
    }
    try {
      db.prepare(`SELECT * FROM "${tbl_name}" INDEXED BY "${name}" LIMIT 1`).all();
    } catch (error) {
      // A partial index cannot serve a query without its WHERE clause: not checked.
      if (!(error instanceof Database.SqliteError && error.message === 'no query solution')) throw error;
    }
  }
}
