// Upgrading a SQLite file written by an older build (U16): every step in one transaction,
// ending in this server's schema or undone. A few builds of the first days wrote a
// migration that a later build changed in place; their files are refused with nothing
// changed (the server that wrote them still opens them), not left half migrated. And a
// released migration does not change again: its digest is pinned here.
import { spawnSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { migrations as postgresMigrations } from '../src/storage/postgres/migrations.js';
import { migrations, schemaShape } from '../src/storage/sqlite/migrations.js';
import { openSqliteStore } from '../src/storage/sqlite/sqlite-store.js';
import { openPostgresStore } from '../src/storage/postgres/postgres-store.js';
import { SESSION_BUCKETS_INSERTED_AGAIN } from '../src/storage/postgres/session-buckets.js';
import { builtFile } from './helpers/built.js';
import { withMigratedStore } from './helpers/old-sqlite-database.js';
import { cleanUpServerProcesses, startServer } from './helpers/server-process.js';
import { createTestDatabase, migrateTo, withClient } from './helpers/postgres-database.js';
import { agentRecord, sessionRecord } from './store/records.js';

const folders: string[] = [];
afterEach(() => {
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

/** A file at `version`, as this server's migrations built it, then changed by `written` (what an older build did otherwise). */
function fileAt(version: number, written: (db: Database.Database) => void): string {
  const folder = mkdtempSync(join(tmpdir(), 'schema-upgrade-'));
  folders.push(folder);
  const path = join(folder, 'sessions.db');
  const db = new Database(path);
  db.function('idempotency_id', (_scope: unknown, _key: unknown) => null);
  // One transaction: each DDL statement on its own was a commit with its fsyncs (R46: 26 files took 19-37 s, past the 20 s timeout on a loaded machine).
  db.transaction(() => {
    for (const sql of migrations.slice(0, version)) db.exec(sql);
    db.pragma(`user_version = ${version}`);
    db.exec("INSERT INTO agents VALUES ('a', 'Ada', NULL, '{}', 0)");
    written(db);
  })();
  db.close();
  return path;
}

/** The file's version and schema, read without migrating it. */
function asStored(path: string) {
  const db = new Database(path, { readonly: true });
  try {
    return { version: db.pragma('user_version', { simple: true }), shape: schemaShape(db), agents: db.prepare('SELECT id FROM agents').pluck().all() };
  } finally {
    db.close();
  }
}

describe('a file written by an older build', () => {
  it('opens one whose migration 11 had dropped sessions_unmarked_expiry (194ce65 to 3ee1cc1, b7aedbf among them): it stopped at version 25, no such index', async () => {
    await withMigratedStore(11, (old) => old.exec('DROP INDEX sessions_unmarked_expiry'), async (store, path) => {
      const agent = await store.getAgent('a');
      expect(agent?.name).toBe('Ada');
      await store.close();
      expect(asStored(path).version).toBe(migrations.length);
      const stored = new Database(path, { readonly: true });
      const fresh = new Database(':memory:');
      fresh.function('idempotency_id', (_scope: unknown, _key: unknown) => null);
      for (const sql of migrations) fresh.exec(sql);
      expect(schemaShape(stored)).toEqual(schemaShape(fresh));
      stored.close();
      fresh.close();
    });
  });

  it('refuses one whose steps fail on it, naming the version and the failure, and leaves it as it was (5e6db0c wrote migration 16 otherwise)', () => {
    // At 12: steps 13 to 15 go well, 16 fails; none of them stays.
    const path = fileAt(12, (db) => db.exec('ALTER TABLE sessions ADD COLUMN first_event_id INTEGER'));
    const before = asStored(path);
    expect(() => openSqliteStore(path)).toThrow(
      /^database schema version 12 cannot be brought to 27 \(duplicate column name: first_event_id\); nothing was changed\. Its schema is not the one this version had as built: .*Keep the file, and start this server on a new one \(or restore a backup\)$/,
    );
    expect(asStored(path)).toEqual(before);
  });

  it('refuses one whose steps succeed but do not end in this schema, naming the differences, and leaves it as it was (01156a6 wrote a migration 26 later withdrawn)', () => {
    const path = fileAt(26, (db) => db.exec('ALTER TABLE event_log RENAME COLUMN occurred_at TO recorded_at; CREATE INDEX sessions_unmarked_expiry ON sessions (expires_at)'));
    const before = asStored(path);
    expect(() => openSqliteStore(path)).toThrow(
      /^database schema version 26 does not become this server's schema 27: index sessions_unmarked_expiry \(not in this server's schema\), table event_log \(differs\); nothing was changed\./,
    );
    expect(asStored(path)).toEqual(before);
  });

  it("tells apart what the SQL of a table, index or trigger says beyond its columns' names: STRICT, WITHOUT ROWID, UNIQUE, an index's WHERE and order, a foreign key's action, a generated column, a trigger's body", () => {
    /** `table` made again from its SQL changed by `edit`, with its indexes. */
    const rebuilt = (table: string, edit: (sql: string) => string) => (db: Database.Database) => {
      const sql = db.prepare('SELECT sql FROM sqlite_master WHERE name = ?').pluck().get(table) as string;
      const indexes = db.prepare("SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL").pluck().all(table) as string[];
      db.exec(`DROP TABLE ${table}`);
      db.exec(edit(sql));
      for (const index of indexes) db.exec(index);
    };
    const cases: Array<[string, (db: Database.Database) => void]> = [
      ['table health_probe', rebuilt('health_probe', (sql) => sql.replace(/\)\s*STRICT\s*$/, ')'))],
      ['table session_counts', rebuilt('session_counts', (sql) => sql.replace(/,\s*WITHOUT ROWID\s*$/, ''))],
      ['table webhook_deliveries', rebuilt('webhook_deliveries', (sql) => sql.replace('ON DELETE CASCADE', ''))],
      ['table agents', (db) => db.exec('ALTER TABLE agents ADD COLUMN label TEXT GENERATED ALWAYS AS (name) VIRTUAL')],
      ['index api_keys_live_name', (db) => db.exec('DROP INDEX api_keys_live_name; CREATE INDEX api_keys_live_name ON api_keys (name) WHERE revoked_at IS NULL')],
      ['index webhooks_by_key', (db) => db.exec('DROP INDEX webhooks_by_key; CREATE INDEX webhooks_by_key ON webhooks (created_by_key)')],
      ['index sessions_by_expiry', (db) => db.exec('DROP INDEX sessions_by_expiry; CREATE INDEX sessions_by_expiry ON sessions (expires_at DESC)')],
      ['trigger due_announcements_insert', (db) => {
        const sql = db.prepare("SELECT sql FROM sqlite_master WHERE name = 'due_announcements_insert'").pluck().get() as string;
        db.exec(`DROP TRIGGER due_announcements_insert; ${sql.replace('INSERT OR IGNORE', 'INSERT OR REPLACE')}`);
      }],
    ];
    const base = fileAt(26, () => undefined);
    for (const [i, [object, written]] of cases.entries()) {
      const path = `${base}.${i}`;
      copyFileSync(base, path);
      const db = new Database(path);
      written(db);
      db.close();
      expect(() => openSqliteStore(path), object).toThrow(` ${object} (differs)`);
    }
  });

  it('names a missing object, and opens a file at every earlier version as this server built it', async () => {
    const path = fileAt(26, (db) => db.exec('DROP INDEX sessions_by_user_created'));
    expect(() => openSqliteStore(path)).toThrow(/: index sessions_by_user_created \(missing\); nothing was changed/);
    for (let version = 1; version < migrations.length; version += 1) {
      const store = openSqliteStore(fileAt(version, () => undefined));
      expect((await store.getAgent('a'))?.name, `version ${version}`).toBe('Ada');
      await store.close();
    }
  });
});

it.each([
  ['a UNIQUE column constraint (its sqlite_autoindex)', 'key_hash TEXT NOT NULL', 'admin INTEGER NOT NULL CHECK (admin IN (0, 1))', 'agent_ids TEXT NOT NULL'],
  ['a CHECK constraint', 'key_hash TEXT NOT NULL UNIQUE', 'admin INTEGER NOT NULL', 'agent_ids TEXT NOT NULL'],
  ['a column collation', 'key_hash TEXT NOT NULL UNIQUE', 'admin INTEGER NOT NULL CHECK (admin IN (0, 1))', 'agent_ids TEXT NOT NULL COLLATE NOCASE'],
])('refuses a file at 26 whose api_keys table lacks or changes %s (R46)', (_what, keyHash, admin, agentIds) => {
  const path = fileAt(26, (db) =>
    db.exec(`
      DROP INDEX api_keys_live_name;
      DROP TABLE api_keys;
      CREATE TABLE api_keys ( id TEXT PRIMARY KEY, name TEXT NOT NULL, ${keyHash}, ${admin}, ${agentIds}, created_at INTEGER NOT NULL, revoked_at INTEGER ) STRICT;
      CREATE UNIQUE INDEX api_keys_live_name ON api_keys (name) WHERE revoked_at IS NULL;
    `),
  );
  expect(() => openSqliteStore(path)).toThrow(/does not become this server's schema 27: .*table api_keys \(differs\)/);
});

describe('PostgreSQL: a role that may create tables but owns nothing (README)', () => {
  /** A database at version 10 made by its owner, and a role with GRANT CREATE on the schema and the read/write grants; `prepare` runs as the owner first. */
  async function asAppRole(prepare: (owner: pg.Client) => Promise<unknown>, use: (url: string) => Promise<void>): Promise<void> {
    const database = await createTestDatabase();
    const role = `app_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
    try {
      await withClient(database.url, async (owner) => {
        await migrateTo(owner, 10);
        await prepare(owner);
        await owner.query(`CREATE ROLE ${role} LOGIN PASSWORD 'pw'`);
        await owner.query(`GRANT CREATE, USAGE ON SCHEMA public TO ${role}`);
        await owner.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${role}`);
        await owner.query(`GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO ${role}`);
      });
      const url = new URL(database.url);
      url.username = role;
      url.password = 'pw';
      await use(url.toString());
    } finally {
      await database.drop();
      await withClient(database.url.replace(/\/[^/?]+(\?|$)/, '/postgres$1'), (admin) => admin.query(`DROP ROLE IF EXISTS ${role}`)).catch(() => undefined);
    }
  }

  it('upgrades a database at version 10 that this server made (migration 11 changes nothing there) (R46)', async () => {
    await asAppRole(async () => undefined, async (url) => {
      const store = await openPostgresStore({ url, poolSize: 2 });
      await store.close();
    });
  });

  it("refuses, naming the owner's part, one whose function migration 11 must replace (ad2351c), nothing changed", async () => {
    const skipping = /IF (coalesce.*) THEN/.exec(SESSION_BUCKETS_INSERTED_AGAIN)![1]!;
    const oldFunction = /\$create\$([\s\S]*)\$create\$/.exec(SESSION_BUCKETS_INSERTED_AGAIN)![1]!.replace(skipping, 'false');
    await asAppRole((owner) => owner.query(oldFunction), async (url) => {
      await expect(openPostgresStore({ url, poolSize: 2 })).rejects.toThrow(
        /^migration 11 of this server's schema cannot run: must be owner of function session_buckets_inserted; this upgrade changes an object of the schema, which only its owner may: run this version's first start as the role that made the schema; nothing was changed$/,
      );
    });
  });
});

it('PostgreSQL: counts once the sessions a batch of creates stores on a database whose migration 5 made the insert trigger count them too (ad2351c; migration 11)', async () => {
  const database = await createTestDatabase();
  try {
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      for (const sql of postgresMigrations.slice(0, 10)) await client.query(sql);
      await client.query('CREATE TABLE schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
      await client.query('INSERT INTO schema_migrations (version) SELECT generate_series(1, 10)');
      // ad2351c's function: no skip, so a statement that counted its sessions itself had them counted again.
      const skipping = /IF (coalesce.*) THEN/.exec(SESSION_BUCKETS_INSERTED_AGAIN)![1]!;
      await client.query(/\$create\$([\s\S]*)\$create\$/.exec(SESSION_BUCKETS_INSERTED_AGAIN)![1]!.replace(skipping, 'false'));
    } finally {
      await client.end();
    }
    const store = await openPostgresStore({ url: database.url, poolSize: 4 });
    try {
      const agent = agentRecord();
      await store.insertAgent(agent);
      const sessions = Array.from({ length: 5 }, () => sessionRecord(agent.id));
      await Promise.all(sessions.map((session) => store.insertSession(session)));
      const counts = await store.countSessions({ now: sessions[0]!.createdAt, purgeCutoff: sessions[0]!.createdAt - 1 });
      expect(counts.total).toBe(5);
      expect(counts.active).toBe(5);
    } finally {
      await store.close();
    }
  } finally {
    await database.drop();
  }
});

it('keeps every released migration, SQLite and PostgreSQL, as it was released: append a new one instead of changing one', () => {
  const digests = (list: readonly string[]) => list.map((sql) => createHash('sha256').update(sql).digest('hex').slice(0, 16));
  expect(digests(migrations)).toEqual(RELEASED.sqlite);
  // PostgreSQL's migration 5 is built from session-buckets.ts: a change there changes it too (2949ad4 did).
  expect(digests(postgresMigrations)).toEqual(RELEASED.postgres);
});

/** SHA-256 (first 16 hex digits) of each migration's text, as released; a new migration adds its own. */
const RELEASED = {
  sqlite: [
    '45dccf3eb8f01263', '104f41324a9505da', '642d094c8839e2c2', '5bbc07b4f3df6faf', 'f80397e9190437cf', '7a9da41eb43d2cfe', '3c60690107b4ecbb',
    '6f57ffe2ad69dc55', '7915878f22778219', '754c0fc2aec9f98f', '1f0f87afbec2fb89', '26d458cfa8c5c799', '83de876613f5d292', '496bd5e3b51f13dd',
    '1d2eeae72f472c80', '2768c7ffadbb427d', '7faab34cdd76532e', '543d22d80251537f', 'eb0be24880caaa56', 'b39d06886ebf20a6', '17db4fd369edb924',
    'b0c17058b30d530c', '2cb4b75817d1d8f5', 'a2aba0ccfb236596', '0894955033248cbd', '4e49175e1c345b50', 'e1096d531f8e03a6',
  ],
  postgres: [
    '63cbf09d0d924e17', 'aca20510868e4081', 'e0973caaca43c5c8', '820cfba4c6497ae7', '75ae6b2d3663b992', 'cf1bacd2e54fe52c', '496bd5e3b51f13dd',
    '1ed666ca0d2a4ff9', 'b0a10f3a35f445c8', '09d8e74d39c5dff5', '9340b3b69b1cddb9',
  ],
};

it("says SQLite's own words when a new file's first migrations fail: no older build's schema to blame (J16 M3)", () => {
  const folder = mkdtempSync(join(tmpdir(), 'schema-upgrade-'));
  folders.push(folder);
  const path = join(folder, 'sessions.db');
  // No table, so not refused as another application's file; the view is in migration 1's way.
  const db = new Database(path);
  db.exec('CREATE VIEW agents AS SELECT 1 AS id');
  db.close();
  expect(() => openSqliteStore(path)).toThrow(/^view agents already exists$/);
});

describe('the word before an upgrade (it may take minutes on a large file)', () => {
  afterEach(cleanUpServerProcesses);

  it("is said once for an older file, with its version and this server's, before the upgrade commits; not for a new or a current one", async () => {
    const path = fileAt(20, () => undefined);
    const told: Array<[number, number, unknown]> = [];
    const store = openSqliteStore(path, { onUpgrade: (from, to) => told.push([from, to, asStored(path).version]) });
    await store.close();
    expect(told).toEqual([[20, migrations.length, 20]]);
    const first = fileAt(1, () => undefined);
    await openSqliteStore(first, { onUpgrade: (from, to) => told.push([from, to, asStored(first).version]) }).close();
    expect(told.splice(1)).toEqual([[1, migrations.length, 1]]);
    const again = openSqliteStore(path, { onUpgrade: (from, to) => told.push([from, to, null]) });
    await again.close();
    const folder = mkdtempSync(join(tmpdir(), 'schema-upgrade-'));
    folders.push(folder);
    const fresh = openSqliteStore(join(folder, 'new.db'), { onUpgrade: (from, to) => told.push([from, to, null]) });
    await fresh.close();
    expect(told).toHaveLength(1);
  });

  it("names the likely holder when another process holds the write lock longer than opening waits (its own upgrade under way)", async () => {
    const path = fileAt(20, () => undefined);
    const other = new Database(path);
    try {
      other.exec('BEGIN IMMEDIATE');
      // A file not yet in WAL mode (as an older build left it after a clean stop): refused at once.
      expect(() => openSqliteStore(path, { openLockWaitMs: 100 })).toThrow(/^another process holds the database's write lock \(another server upgrading its schema\? its stderr says "upgrading the database schema"\); this one gave up after 0\.\d s: start it once that is done$/);
      expect(asStored(path).version).toBe(20);
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    const store = openSqliteStore(path, { openLockWaitMs: 100 });
    await store.close();
    expect(asStored(path).version).toBe(migrations.length);
  });

  it("waits that long for the lock of a file in WAL mode (every file a server has opened), then says so", () => {
    const path = fileAt(20, () => undefined);
    const other = new Database(path);
    try {
      other.pragma('journal_mode = WAL');
      other.exec('BEGIN IMMEDIATE');
      const started = performance.now();
      expect(() => openSqliteStore(path, { openLockWaitMs: 300 })).toThrow(/^another process holds the database's write lock .*; this one gave up after 0\.[3-9] s: /);
      const waited = performance.now() - started;
      expect(waited).toBeGreaterThanOrEqual(250);
      expect(waited).toBeLessThan(5_000);
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
  });

  it('is a line on stderr from the keys command too (it opens and upgrades the file as npm start does)', () => {
    const upgraded = spawnSync(process.execPath, [builtFile('keys-cli.js'), 'list'], { env: { ...process.env, DATABASE_PATH: fileAt(20, () => undefined) }, encoding: 'utf8', timeout: 30_000 });
    expect(upgraded.status).toBe(0);
    expect(upgraded.stderr).toMatch(new RegExp(`^sessions-api: upgrading the database schema from version 20 to ${migrations.length}, in one transaction `, 'm'));
  });

  it('is a line on stderr from npm start before it listens', async () => {
    const server = startServer({ DATABASE_PATH: fileAt(20, () => undefined) });
    await server.listening;
    const { stderr } = server.output();
    expect(stderr).toMatch(new RegExp(`^sessions-api: upgrading the database schema from version 20 to ${migrations.length}, in one transaction .*\\nSessions API listening on `, 'm'));
    expect(stderr.match(/upgrading the database schema/g)).toHaveLength(1);
  });
});
