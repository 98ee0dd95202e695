// The SQLite connection the store opens: WAL, the chosen durability, the schema migrated.
import { accessSync, closeSync, constants, existsSync, mkdirSync, openSync, statfsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { DEFAULTS } from '../../defaults.js';
import { assertOwnSchema, migrate } from './migrations.js';
import { checkOnOpen } from './storage-faults.js';
import { isDiskFull } from '../store.js';

export interface SqliteOptions {
  /** NORMAL: a committed write survives the process dying; FULL: also a power loss (fsync per commit). */
  synchronous?: 'normal' | 'full';
  /** How long a write waits for another process's write lock before answering 503 (default: DEFAULTS.lockWaitMs). */
  lockWaitMs?: number;
  /** Over this size the WAL is checkpointed and emptied even under constant writes (checkpointer.ts; default 64 MiB). */
  walCapBytes?: number;
  /** Log ids a read of the events walks per statement (default EVENT_SCAN_WINDOW, event-log.ts). */
  eventScanWindow?: number;
  /** How long opening waits for another process's write lock (to migrate; default 30 s). */
  openLockWaitMs?: number;
  /** Called under the write lock before an older file's schema is upgraded (it may take minutes on a large file). */
  onUpgrade?: (from: number, to: number) => void;
}

/**
 * SQLite's own busy wait sleeps on the event loop, so it is kept this short; longer lock
 * waits are retried asynchronously (group-commit.ts).
 */
const BUSY_TIMEOUT_MS = 5;

/**
 * What this server makes is its user's alone: the database holds conversations and the
 * secrets webhooks are signed with. SQLite gives the WAL and its index the database
 * file's mode. A file or folder that exists keeps its own.
 */
const PRIVATE_FOLDER_MODE = 0o700;
const PRIVATE_FILE_MODE = 0o600;

/**
 * Makes the database file, empty (SQLite takes it for a new database), private to this
 * user; nothing to a file that exists. Opened to append, not 'wx': that fails on a symlink
 * to a missing file, which SQLite would then make with the umask's mode.
 */
export function makePrivateFile(path: string): void {
  try {
    closeSync(openSync(path, 'a', PRIVATE_FILE_MODE));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EISDIR') throw new Error(`${path} is a folder: name a file (in it, say)`);
    throw error;
  }
}

/**
 * Makes the folder and any parents missing. Not `mkdirSync(…, { recursive: true })`:
 * Node 20's loops for ever, at full CPU, where a folder cannot be made under one that
 * exists (`/proc/x`: ENOENT under /proc); one at a time, such a folder is an error.
 */
function makeFolder(folder: string): void {
  try {
    if (statSync(folder).isDirectory()) return;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    const parent = dirname(folder);
    if (parent !== folder) makeFolder(parent);
  }
  try {
    mkdirSync(folder, { mode: PRIVATE_FOLDER_MODE });
  } catch (error) {
    // Made meanwhile by another process (two servers starting at once): as good.
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || !statSync(folder).isDirectory()) throw error;
  }
}

/**
 * Refuses a file, or a folder, the server could not write: SQLite opens a file it cannot
 * write read-only without a word (every write then a 503, the server looking up), and on a
 * read-only file system says only "unable to open database file". The folder takes the
 * WAL and its index beside the file (and `npm run backup` its partial copy); when they are
 * there already, they must be writable too.
 */
export function assertWritable(path: string): void {
  // A WAL and index left by another user's process (a server once run as root, killed) make it read-only too.
  const files = [path, `${path}-wal`, `${path}-shm`].filter((file) => existsSync(file));
  for (const target of [dirname(path), ...files]) {
    try {
      accessSync(target, constants.W_OK);
    } catch (error) {
      const { code } = error as NodeJS.ErrnoException;
      if (code === 'EROFS') throw new Error(`${target} is on a read-only file system (EROFS)`);
      if (code === 'EACCES' || code === 'EPERM') throw new Error(`this process may not write ${target} (${code})`);
      if (code === 'ENOENT') throw new Error(`there is no folder ${target}`);
      throw error;
    }
  }
}

/** The connection the store uses: WAL, the chosen durability, foreign keys on, schema migrated. */
export function openDatabase(path: string, options: SqliteOptions = {}): Database.Database {
  if (path !== ':memory:') {
    makeFolder(dirname(path));
    assertWritable(path);
    makePrivateFile(path);
  }
  const openedAt = performance.now();
  const db = new Database(path);
  try {
    assertOwnSchema(db);
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${(options.synchronous ?? DEFAULTS.sqliteSynchronous).toUpperCase()}`);
    db.pragma('foreign_keys = ON');
    // Every write of a group commit runs in a savepoint, which journals the original of
    // each page it touches: in memory, not in a temporary file (one pwrite a page a write).
    db.pragma('temp_store = MEMORY');
    // Migrations and the check on open may wait longer: nothing is served yet.
    db.pragma(`busy_timeout = ${options.openLockWaitMs ?? OPEN_LOCK_WAIT_MS}`);
    checkOnOpen(db, path === ':memory:' ? 0 : statSync(path).size);
    migrate(db, options.onUpgrade);
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  } catch (error) {
    db.close();
    if (isBusy(error)) throw lockedAtOpen(error, performance.now() - openedAt);
    throw path === ':memory:' ? error : withFullDiskNamed(error, path);
  }
  return db;
}

const OPEN_LOCK_WAIT_MS = 30_000;

const isBusy = (error: unknown) => String((error as { code?: unknown }).code).startsWith('SQLITE_BUSY');

/**
 * SQLite says "database is locked": who may hold it, and what to do (a schema upgrade in
 * another process can take minutes). How long this one waited, as measured: a file not yet
 * in WAL mode is refused at once.
 */
function lockedAtOpen(error: unknown, waitedMs: number): Error {
  const message = `another process holds the database's write lock (another server upgrading its schema? its stderr says "upgrading the database schema"); this one gave up after ${(waitedMs / 1000).toFixed(1)} s: start it once that is done`;
  return Object.assign(new Error(message, { cause: error }), { code: (error as { code: unknown }).code });
}

/**
 * An I/O error at open on a full disk says so: SQLite names the step that failed
 * ("disk I/O error (SQLITE_IOERR_SHMSIZE)": its index beside the WAL could not grow).
 */
function withFullDiskNamed(error: unknown, path: string): unknown {
  const code = (error as { code?: unknown }).code;
  if (typeof code !== 'string' || !code.startsWith('SQLITE_IOERR')) return error;
  try {
    const { bavail, bsize } = statfsSync(dirname(path));
    if (!isDiskFull(bavail * bsize)) return error;
    return Object.assign(new Error(`the disk is full (${bavail * bsize} bytes free on ${dirname(path)}; SQLite: ${(error as Error).message})`), { code });
  } catch {
    return error;
  }
}

/**
 * One small write at open, so that the WAL's header is written and synced now. SQLite
 * syncs the header whenever a write starts the WAL over (an empty WAL after open, or one a
 * checkpoint emptied), also with synchronous=NORMAL: left to the first write served, that
 * fsync ran inside a group commit on the event loop (52-97 ms in the first batch of a burst
 * of due warnings right after the server started, with the disk busy). Best effort: a
 * failing disk fails the writes that follow, as it would have.
 */
export function startWal(db: Database.Database): void {
  try {
    db.prepare('INSERT INTO health_probe (id, checked_at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at').run(Date.now());
  } catch {
    // Read by nothing: the writes served report the storage's state.
  }
}
