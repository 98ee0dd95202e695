// SQLite failures that are the storage's, not the request's: the store turns them into
// StorageFault (503 STORAGE_UNAVAILABLE, retry later), never a generic 500.
import { realpathSync, statSync } from 'node:fs';
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

/** A file's identity (device and inode); undefined when there is none at the path. */
function fileId(path: string): string | undefined {
  const found = statSync(path, { throwIfNoEntry: false });
  return found && `${found.dev}:${found.ino}`;
}

/** Which of the database's files is no longer the one opened, with the fault in words. */
export interface FileMoved {
  file: 'database' | 'wal';
  fault: string;
}

/**
 * A check that the database file at `path`, and its write-ahead log beside it, are still
 * the ones opened. SQLite in WAL mode does not notice either deleted or replaced under a
 * running server: its writes would go to a file nothing reads again, and those of a WAL
 * deleted (a cleanup script, a restore of the database file alone) are lost with the
 * process, the ones acknowledged before with them. The WAL is never deleted or made anew
 * while a connection of this server is open (SQLite deletes it when the last one closes).
 * Undefined while both are in place; always, for an in-memory database.
 */
export function filesInPlace(path: string): () => FileMoved | undefined {
  if (path === ':memory:') return () => undefined;
  const database = fileId(path);
  // Beside the file a symlink names: where SQLite puts it.
  const walPath = `${realpathSync(path)}-wal`;
  let wal = fileId(walPath);
  return () => {
    const databaseNow = fileId(path);
    if (databaseNow !== database) return { file: 'database', fault: `the database file was ${databaseNow ? 'replaced' : 'deleted'} while the server ran (restart the server)` };
    const walNow = fileId(walPath);
    wal ??= walNow; // none at open: the first one made is this server's
    if (walNow === wal) return undefined;
    return { file: 'wal', fault: `the database's write-ahead log (${walPath}) was ${walNow ? 'replaced' : 'deleted'} while the server ran: writes are refused, what it held is copied into the database file (restart the server)` };
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
