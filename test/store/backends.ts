// The store backends the store suite runs on: each test gets an empty store.
// SQLite: a new file per test. PostgreSQL: one database and store per test file (in the
// run's throwaway cluster), emptied before each test.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { openPostgresStore } from '../../src/storage/postgres/postgres-store.js';
import { openSqliteStore } from '../../src/storage/sqlite/sqlite-store.js';
import type { Store } from '../../src/storage/store.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres-database.js';

export interface Backend {
  name: 'sqlite' | 'postgres';
  /** A store with nothing in it (PostgreSQL: the same store each time, emptied). */
  open(): Promise<Store>;
  /** A second store on the database the last `open` gave (another process, another instance). */
  openSibling(): Promise<Store>;
  /** Closes every store `open` gave, and what the backend holds. */
  closeAll(): Promise<void>;
}

// A read of the log walks it a few ids per statement here, so that every read
// of the suite crosses windows (the default is EVENT_SCAN_WINDOW).
const SQLITE_OPTIONS = { eventScanWindow: 3 };

export function sqliteBackend(): Backend {
  const opened: Array<{ store: Store; directory?: string }> = [];
  return {
    name: 'sqlite',
    async openSibling() {
      const directory = [...opened].reverse().find((o) => o.directory)!.directory!;
      const store = openSqliteStore(join(directory, 'sessions.db'), SQLITE_OPTIONS);
      opened.push({ store });
      return store;
    },
    async open() {
      const directory = mkdtempSync(join(tmpdir(), 'sessions-api-store-'));
      const store = openSqliteStore(join(directory, 'sessions.db'), SQLITE_OPTIONS);
      opened.push({ store, directory });
      return store;
    },
    async closeAll() {
      for (const { store, directory } of opened.splice(0)) {
        await store.close();
        if (directory) rmSync(directory, { recursive: true, force: true });
      }
    },
  };
}

const TABLES = 'agents, sessions, session_buckets, messages, api_keys, idempotency_records, events, webhooks, webhook_deliveries, health_probe';

export function postgresBackend(): Backend {
  let database: TestDatabase | undefined;
  let store: Store | undefined;
  let admin: pg.Client | undefined;
  const siblings: Store[] = [];
  return {
    name: 'postgres',
    async openSibling() {
      const sibling = await openPostgresStore({ url: database!.url, poolSize: 2 });
      siblings.push(sibling);
      return sibling;
    },
    async open() {
      if (!database) {
        database = await createTestDatabase();
        store = await openPostgresStore({ url: database.url, poolSize: 8 });
        admin = new pg.Client({ connectionString: database.url });
        await admin.connect();
      }
      await admin!.query(`TRUNCATE ${TABLES} CASCADE`);
      return store!;
    },
    async closeAll() {
      for (const sibling of siblings.splice(0)) await sibling.close();
      await admin?.end();
      await store?.close();
      await database?.drop();
      database = undefined;
    },
  };
}

export const backends = [sqliteBackend, postgresBackend];
