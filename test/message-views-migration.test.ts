// Messages written before their views were stored get them from the migration (SQLite 12,
// PostgreSQL 2), in the very form the server writes: a page of them is what messageView
// makes of the same rows.
import pg from 'pg';
import { expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { messageJson, messageView } from '../src/views.js';
import { migrations as postgresMigrations } from '../src/storage/postgres/migrations.js';
import { openPostgresStore } from '../src/storage/postgres/postgres-store.js';
import type { Store } from '../src/storage/store.js';
import { withMigratedStore } from './helpers/old-sqlite-database.js';
import { createTestDatabase } from './helpers/postgres-database.js';

const session = (autoRenew: string) => `INSERT INTO sessions (id, agent_id, user_id, created_at, last_activity, anchor_at, expires_at, warns_at,
  timeout_minutes, auto_renew, max_duration_minutes, warning_threshold_minutes, renewal_count, status, metadata, announced, due_at)
  VALUES ('s', 'a', 'u', 0, 0, 0, 9000000000000, 8000000000000, 30, ${autoRenew}, 720, 5, 0, 'active', '{}', 'nothing', NULL)`;

/** (position, id, created_at, is_agent, content, attachments, metadata): odd milliseconds, quotes, emoji, U+0000, key order. */
const MESSAGES: Array<[number, string, number, boolean, string, string, string]> = [
  [10, 'm1', 5, false, 'first', '[]', '{}'],
  [20, 'm2', 1764151234567, true, 'say "hi" 🙂 a\u0000b', '[{"type":"image","url":"https://a.example/x.png"}]', '{"z":1,"a":{"k":"\\u0000"}}'],
  [30, 'm3', 1764151234007, false, 'third', '[]', '{"n":[1,2]}'],
];

/** The stored views, newest first, are messageView's of MESSAGES, keys in its order. */
async function expectViewsOfRecords(store: Store): Promise<void> {
  const records = [...MESSAGES].reverse().map(([position, id, createdAt, isAgent, content, attachments, metadata]) =>
    ({ id, sessionId: 's', position, createdAt, authorId: 'u', isAgent, content, attachments: JSON.parse(attachments), metadata: JSON.parse(metadata) }));
  const views = await store.listMessageViews({ sessionId: 's', limit: 10 });
  expect(views.messages.map((view) => view.position)).toEqual([30, 20, 10]);
  expect(views.messages.map((view) => JSON.parse(view.json))).toEqual(records.map(messageView));
  for (const view of views.messages) expect(Object.keys(JSON.parse(view.json))).toEqual(Object.keys(messageView(records[0]!)));
  expect(Object.keys(JSON.parse(views.messages[1]!.json).metadata)).toEqual(['z', 'a']);
}

/** Session 's' and MESSAGES as an older schema stored them: in columns, with the view beside them from migration 12 on. */
function storeOld(old: Database.Database, withViews: boolean): void {
  old.exec(session('1'));
  const columns = ['session_id', 'position', 'id', 'created_at', 'author_id', 'is_agent', 'content', 'attachments', 'metadata', ...(withViews ? ['view'] : [])];
  const insert = old.prepare(`INSERT INTO messages (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`);
  for (const [position, id, createdAt, isAgent, content, attachments, metadata] of MESSAGES) {
    const record = { id, sessionId: 's', position, createdAt, authorId: 'u', isAgent, content, attachments: JSON.parse(attachments), metadata: JSON.parse(metadata) };
    insert.run('s', position, id, createdAt, 'u', isAgent ? 1 : 0, content, attachments, metadata, ...(withViews ? [messageJson(record)] : []));
  }
}

it('SQLite: migration 12 writes the views of the messages already stored', () =>
  withMigratedStore(
    11,
    (old) => storeOld(old, false),
    expectViewsOfRecords,
  ));

it('SQLite: migration 27 keeps a message as its view alone, the views as they were; a message of 450 characters then takes no page of its own', () =>
  withMigratedStore(
    26,
    (old) => storeOld(old, true),
    async (store, path) => {
      await expectViewsOfRecords(store);
      for (let position = 100; position < 300; position += 1) {
        await store.appendMessage('s', (current) => ({ session: current!, message: { id: `long-${position}`, sessionId: 's', position, createdAt: position, authorId: 'u', isAgent: false, content: 'z'.repeat(450), attachments: [], metadata: {} } }));
      }
      const db = new Database(path, { readonly: true });
      try {
        expect(db.prepare("SELECT name FROM pragma_table_info('messages')").pluck().all()).toEqual(['session_id', 'position', 'view']);
        // Its primary key is the table (no rowid, no second b-tree of the keys beside it), as before the migration.
        expect(db.prepare("SELECT wr, strict FROM pragma_table_list WHERE name = 'messages'").get()).toEqual({ wr: 1, strict: 1 });
        // Its content twice (columns and view), each such message had a 4 KB overflow page: 4.7 KB a message.
        const { bytes, overflow } = db.prepare("SELECT sum(pgsize) AS bytes, sum(pagetype = 'overflow') AS overflow FROM dbstat WHERE name = 'messages'").get() as { bytes: number; overflow: number };
        expect(overflow).toBe(0);
        expect(bytes / 203).toBeLessThan(1024);
      } finally {
        db.close();
      }
    },
  ));

/** A PostgreSQL database at schema version 1 with agent 'a' and its session 's': the client left open to fill it. */
async function versionOne(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(postgresMigrations[0]!);
  await client.query('CREATE TABLE schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
  await client.query('INSERT INTO schema_migrations (version) VALUES (1)');
  await client.query(`INSERT INTO agents (id, name, bio, settings, created_at) VALUES ('a', '"Ada"', NULL, '{}', 0)`);
  await client.query(session('true'));
  return client;
}

it('PostgreSQL: a migration is not bound by the statement timeout of requests (a large database took longer, and the server could never start)', async () => {
  const database = await createTestDatabase();
  try {
    const client = await versionOne(database.url);
    try {
      // Migration 2 writes a view for each of them: far longer than 20 ms.
      await client.query(
        `INSERT INTO messages (session_id, position, id, created_at, author_id, is_agent, content, attachments, metadata)
         SELECT 's', i, 'm' || i, i, 'u', false, '"hello"', '[]', '{}' FROM generate_series(1, 20000) AS i`,
      );
    } finally {
      await client.end();
    }
    const store = await openPostgresStore({ url: database.url, poolSize: 2, statementTimeoutMs: 20 });
    try {
      expect((await store.listMessageViews({ sessionId: 's', limit: 1 })).messages).toHaveLength(1);
    } finally {
      await store.close();
    }
  } finally {
    await database.drop();
  }
});

it('PostgreSQL: migration 2 writes the views of the messages already stored', async () => {
  const database = await createTestDatabase();
  try {
    const client = await versionOne(database.url);
    try {
      for (const [position, id, createdAt, isAgent, content, attachments, metadata] of MESSAGES) {
        await client.query(
          'INSERT INTO messages (session_id, position, id, created_at, author_id, is_agent, content, attachments, metadata) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)',
          ['s', position, id, createdAt, 'u', isAgent, JSON.stringify(content), attachments, metadata],
        );
      }
    } finally {
      await client.end();
    }
    const store = await openPostgresStore({ url: database.url, poolSize: 2 });
    try {
      await expectViewsOfRecords(store);
    } finally {
      await store.close();
    }
  } finally {
    await database.drop();
  }
});
