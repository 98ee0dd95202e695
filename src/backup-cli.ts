// npm run backup -- <new file>: a copy of the SQLite database at DATABASE_PATH, consistent
// as of one moment, taken while the server runs (VACUUM INTO: one read transaction, which
// in WAL mode holds back no writer, though the WAL cannot be emptied until it ends; see
// checkpointer.ts; compacted on the way). The copy's next event id is far beyond its last
// (event-log.ts, skipEventIds): the original goes on giving ids after the copy. Restore: stop the server, put
// the copy at DATABASE_PATH (without the old file's -wal and -shm), start it. PostgreSQL
// has pg_dump for this.
import { constants, copyFileSync, existsSync, linkSync, rmSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { ConfigError, loadConfig } from './config.js';
import { callersFolder } from './conformance/callers-folder.js';
import { assertWritable, makePrivateFile } from './storage/sqlite/connection.js';
import { EVENT_IDS_SKIPPED_BY_A_COPY, skipEventIds } from './storage/sqlite/event-log.js';
import { assertOwnSchema } from './storage/sqlite/migrations.js';

const USAGE = 'usage: npm run backup -- <new file>   (copies the SQLite database at DATABASE_PATH)';

function fail(message: string, code = 1): never {
  console.error(`sessions-api backup: ${message}`);
  process.exit(code);
}

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--help' || args[0] === '-h')) {
  console.log(USAGE);
  process.exit(0);
}
if (args.length !== 1 || args[0]!.startsWith('-')) fail(USAGE, 2);
// A relative path is the caller's, where npm was run (DATABASE_PATH, like the server's, is the package's).
const target = resolve(callersFolder(), args[0]!);

let source: string;
try {
  const config = loadConfig(process.env);
  if (config.postgres) fail('DATABASE_URL is set: this copies a SQLite file; back PostgreSQL up with pg_dump');
  source = config.databasePath;
} catch (error) {
  if (error instanceof ConfigError) fail(`invalid configuration: ${error.message}`);
  throw error;
}
if (source === ':memory:') fail('DATABASE_PATH is :memory:, which no other process can read');
if (!existsSync(source)) fail(`no database at ${source}`);
// Never over another file: a backup that replaced the last good one would be no backup.
if (existsSync(target)) fail(`${target} exists: name a new file`);

// Written under a name of its own beside the target, checked, then linked to the target:
// the link fails if a file appeared there meanwhile (another backup to the same name), and
// a failure deletes only what this run wrote.
const partial = join(dirname(target), `.${basename(target)}.partial-${process.pid}`);
let summary: string | undefined;
try {
  // SQLite would say only "unable to open database file".
  assertWritable(target);
  const db = new Database(source, { fileMustExist: true });
  try {
    try {
      assertOwnSchema(db);
    } catch (error) {
      // Its advice (another file) is the server's, for DATABASE_PATH: here that is the file copied, not the copy.
      const { message } = error as Error;
      throw message.startsWith('not a Sessions API') ? new Error(`DATABASE_PATH is ${message.replace(/; name a new file, or an empty one$/, '')}`) : error;
    }
    db.pragma('busy_timeout = 5000');
    makePrivateFile(partial); // VACUUM INTO writes into an empty file as into none, with its mode
    db.prepare('VACUUM INTO ?').run(partial);
  } finally {
    db.close();
  }
  const copy = new Database(partial);
  try {
    skipEventIds(copy, EVENT_IDS_SKIPPED_BY_A_COPY);
    const check = copy.pragma('quick_check', { simple: true });
    if (check !== 'ok') throw new Error(`the copy fails its check (${String(check)}); keep the database, and try again`);
    const bytes = (copy.pragma('page_count', { simple: true }) as number) * (copy.pragma('page_size', { simple: true }) as number);
    summary = `schema version ${String(copy.pragma('user_version', { simple: true }))}, ${bytes} bytes`;
  } finally {
    copy.close();
  }
  try {
    linkSync(partial, target);
  } catch (error) {
    const { code } = error as NodeJS.ErrnoException;
    if (code === 'EEXIST') throw new Error(`${target} appeared meanwhile: name a new file`);
    // A file system without hard links: copied, still never over a file.
    if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP') copyFileSync(partial, target, constants.COPYFILE_EXCL);
    else throw error;
  }
} catch (error) {
  // A copy cut short (a full disk, say) is no backup: it goes.
  rmSync(partial, { force: true });
  fail(`cannot copy ${source} to ${target}: ${(error as Error).message}`);
}
rmSync(partial, { force: true });
console.log(`copied ${source} to ${target} (${summary})`);
