// The one place that chooses the store: PostgreSQL when DATABASE_URL is set (any number
// of instances on one database), otherwise SQLite at DATABASE_PATH (one process, one file).
import { existsSync, statSync } from 'node:fs';
import { type ServerConfig, redactedUrl } from '../config.js';
import { openSqliteStore } from './sqlite/sqlite-store.js';
import { NoStore, type Store } from './store.js';

export type StoreConfig = Pick<ServerConfig, 'databasePath' | 'sqliteSynchronous' | 'lockWaitMs' | 'postgres'>;

/** What the store is, in words, for the startup line and messages (no password). */
export function describeStore(config: StoreConfig): string {
  return config.postgres ? redactedUrl(config.postgres.url) : config.databasePath;
}

/** The line a command prints to stderr before an older database's schema is upgraded: the wait that follows has a reason. */
export function announceUpgrade(from: number, to: number): void {
  console.error(`sessions-api: upgrading the database schema from version ${from} to ${to}, in one transaction (on a large file this can take minutes; stopping the process meanwhile leaves the file as it was)`);
}

/**
 * Opens (and migrates) the configured store; throws with the reason when it cannot.
 * `existing`: only a store already made (a file, a schema), else NoStore and nothing is
 * made: a command that reads or revokes must not start an empty one on a mistyped name.
 * `onUpgrade`: told before an older SQLite file's schema is upgraded.
 */
export async function openStore(config: StoreConfig, { existing = false, onUpgrade }: { existing?: boolean; onUpgrade?: (from: number, to: number) => void } = {}): Promise<Store> {
  if (config.postgres) {
    const { url, poolSize, statementTimeoutMs } = config.postgres;
    // Loaded only when used: a SQLite server does not pay for the pg driver at every start.
    const { openPostgresStore } = await import('./postgres/postgres-store.js');
    try {
      return await openPostgresStore({ url, poolSize, statementTimeoutMs, existing });
    } catch (error) {
      if (error instanceof NoStore) throw new NoStore(`no Sessions API schema in ${describeStore(config)} (DATABASE_URL: ${error.message})`);
      throw error;
    }
  }
  // An empty file is a database not made yet (SQLite would make it one), as a schema_migrations table missing is.
  if (existing && config.databasePath !== ':memory:' && !(existsSync(config.databasePath) && statSync(config.databasePath).size > 0)) {
    throw new NoStore(`no database at ${config.databasePath} (DATABASE_PATH${existsSync(config.databasePath) ? ': an empty file' : ''})`);
  }
  return openSqliteStore(config.databasePath, { synchronous: config.sqliteSynchronous, lockWaitMs: config.lockWaitMs, ...(onUpgrade ? { onUpgrade } : {}) });
}
