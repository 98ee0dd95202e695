// A SQLite database file at an earlier schema version, with agent 'a', for the tests of a
// migration: `seed` fills it as that version stored data; then the store opens it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { migrations } from '../../src/storage/sqlite/migrations.js';
import { openSqliteStore } from '../../src/storage/sqlite/sqlite-store.js';
import type { Store } from '../../src/storage/store.js';

export async function withMigratedStore(version: number, seed: (old: Database.Database) => void, check: (store: Store, path: string) => Promise<void>): Promise<void> {
  const directory = mkdtempSync(join(tmpdir(), `schema-${version}-`));
  const path = join(directory, 'sessions.db');
  try {
    const old = new Database(path);
    old.function('idempotency_id', (_scope, _key) => null); // migration 15 calls it on idempotency records: there are none
    for (const sql of migrations.slice(0, version)) old.exec(sql);
    old.pragma(`user_version = ${version}`);
    old.exec("INSERT INTO agents VALUES ('a', 'Ada', NULL, '{}', 0)");
    seed(old);
    old.close();
    const store = openSqliteStore(path);
    try {
      await check(store, path);
    } finally {
      await store.close();
    }
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}
