// The one place that chooses the store: PostgreSQL when DATABASE_URL is set (any number
// of instances on one database), otherwise SQLite at DATABASE_PATH (one process, one file).
import { type ServerConfig, redactedUrl } from '../config.js';
import { openSqliteStore } from './sqlite/sqlite-store.js';
import type { Store } from './store.js';

export type StoreConfig = Pick<ServerConfig, 'databasePath' | 'sqliteSynchronous' | 'lockWaitMs' | 'postgres'>;

/** What the store is, in words, for the startup line and messages (no password). */
export function describeStore(config: StoreConfig): string {
  return config.postgres ? redactedUrl(config.postgres.url) : config.databasePath;
}

/** Opens (and migrates) the configured store; throws with the reason when it cannot. */
export async function openStore(config: StoreConfig): Promise<Store> {
  if (config.postgres) {
    const { url, poolSize, statementTimeoutMs } = config.postgres;
    // Loaded only when used: a SQLite server does not pay for the pg driver at every start.
    const { openPostgresStore } = await import('./postgres/postgres-store.js');
    return openPostgresStore({ url, poolSize, statementTimeoutMs });
  }
  return openSqliteStore(config.databasePath, { synchronous: config.sqliteSynchronous, lockWaitMs: config.lockWaitMs });
}
