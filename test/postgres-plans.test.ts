// Query plans of the PostgreSQL store that must not depend on fresh statistics: a page of
// a conversation, or of an agent's sessions, that grew after the last ANALYZE is still read
// from an index in order, never by visiting every message or session and sorting them.
import pg from 'pg';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { openPostgresStore } from '../src/storage/postgres/postgres-store.js';
import { IN_INDEX_ORDER } from '../src/storage/postgres/queries.js';
import type { Store } from '../src/storage/store.js';
import { createTestDatabase, type TestDatabase } from './helpers/postgres-database.js';
import { agentRecord, messageRecord, sessionRecord } from './store/records.js';

let database: TestDatabase;
let store: Store;
let admin: pg.Client;
beforeAll(async () => {
  database = await createTestDatabase();
  store = await openPostgresStore({ url: database.url });
  admin = new pg.Client({ connectionString: database.url });
  await admin.connect();
});
afterAll(async () => {
  await admin.end();
  await store.close();
  await database.drop();
});

/** The statement and values the store sends for `read` (the last pool query). */
async function statementOf(read: () => Promise<unknown>): Promise<{ text: string; values: unknown[] }> {
  const query = vi.spyOn(pg.Pool.prototype, 'query');
  try {
    await read();
    const [text, values] = query.mock.calls.at(-1)! as unknown as [string, unknown[]];
    return { text, values };
  } finally {
    query.mockRestore();
  }
}

it('a page of messages: an index scan in key order, after the conversation outgrew its statistics', { timeout: 30_000 }, async () => {
  const agent = agentRecord();
  await store.insertAgent(agent);
  const long = sessionRecord(agent.id);
  await store.insertSession(long);
  for (let position = 0; position < 3; position++) await store.appendMessage(long.id, (current) => ({ session: current!, message: messageRecord(long, position) }));
  // Many short conversations beside it, then the statistics.
  await admin.query(
    `INSERT INTO sessions (id, agent_id, user_id, created_at, last_activity, anchor_at, expires_at, warns_at, timeout_minutes, auto_renew,
       max_duration_minutes, warning_threshold_minutes, renewal_count, status, metadata, announced, due_at)
     SELECT 's-' || n, $1, 'u', 0, 0, 0, 9000000000000, 8000000000000, 30, true, 720, 5, 0, 'active', '{}', 'nothing', NULL FROM generate_series(0, 1999) AS n`,
    [agent.id],
  );
  await admin.query(
    `INSERT INTO messages (session_id, position, id, created_at, author_id, is_agent, content, attachments, metadata, view)
     SELECT 's-' || (p / 3), p % 3, 'short-' || p, 0, 'u', false, '"x"', '[]', '{}', '{}' FROM generate_series(0, 5999) AS p`,
  );
  await admin.query('ANALYZE messages');
  // One conversation grows to 20,000 messages; the statistics still say 3 a session.
  await admin.query(
    `INSERT INTO messages (session_id, position, id, created_at, author_id, is_agent, content, attachments, metadata, view)
     SELECT $1, p, 'm-' || p, 0, 'u', false, '"x"', '[]', '{}', '{}' FROM generate_series(3, 20002) AS p`,
    [long.id],
  );
  for (const query of [{ limit: 50 }, { limit: 50, before: 10_000 }, { limit: 50, after: 10_000 }]) {
    const { text, values } = await statementOf(() => store.listMessageViews({ sessionId: long.id, ...query }));
    const plan = (await admin.query(`EXPLAIN ${text}`, values)).rows.map((row: { 'QUERY PLAN': string }) => row['QUERY PLAN']).join('\n');
    expect(plan).toMatch(/Index Scan( Backward)? using messages_pkey/);
    expect(plan).not.toMatch(/Sort|Bitmap/);
  }
  const page = await store.listMessageViews({ sessionId: long.id, limit: 3, before: 10_000 });
  expect(page.messages.map((m) => m.position)).toEqual([9999, 9998, 9997]);
});

it('a page of an agent\'s sessions: its created index in order, after the agent outgrew the statistics', { timeout: 30_000 }, async () => {
  const insertSessions = (agentId: string, count: number, prefix: string) =>
    admin.query(
      `INSERT INTO sessions (id, agent_id, user_id, created_at, last_activity, anchor_at, expires_at, warns_at, timeout_minutes, auto_renew,
         max_duration_minutes, warning_threshold_minutes, renewal_count, status, metadata, announced, due_at)
       SELECT $2 || n, $1, 'u', n, n, n, 9000000000000, 8000000000000, 30, true, 720, 5, 0, 'active', '{}', 'nothing', NULL FROM generate_series(1, $3) AS n`,
      [agentId, prefix, count],
    );
  // Many agents with a few sessions each, then the statistics.
  const others = Array.from({ length: 100 }, () => agentRecord());
  for (const [i, other] of others.entries()) {
    await store.insertAgent(other);
    await insertSessions(other.id, 20, `other-${i}-`);
  }
  await admin.query('ANALYZE sessions');
  // One agent gets 20,000; the statistics still say 20 an agent.
  const busy = agentRecord();
  await store.insertAgent(busy);
  await insertSessions(busy.id, 20_000, 'busy-');

  // The message the store sends for the page, and the page's statement in it.
  const sent = vi.spyOn(pg.Client.prototype, 'query');
  let page;
  let message: string;
  try {
    page = await store.listSessions({ now: 1_000_000, purgeCutoff: 0, agentId: busy.id, status: 'active', limit: 20, offset: 0 });
    message = sent.mock.calls.map(([text]) => text).find((text): text is string => typeof text === 'string' && text.includes('json_agg'))!;
  } finally {
    sent.mockRestore();
  }
  expect(page.sessions.map((session) => session.id)).toEqual(Array.from({ length: 20 }, (_, i) => `busy-${20_000 - i}`));
  expect(page.total).toBe(20_000);
  const statements = message.split(';\n');
  expect(statements.slice(0, IN_INDEX_ORDER.length)).toEqual(IN_INDEX_ORDER);
  const pageStatement = statements.find((statement) => statement.includes('json_agg'))!;
  const results = (await admin.query([...IN_INDEX_ORDER, `EXPLAIN ${pageStatement}`].join(';\n'))) as unknown as pg.QueryResult[];
  const plan = results.at(-1)!.rows.map((row: { 'QUERY PLAN': string }) => row['QUERY PLAN']).join('\n');
  expect(plan).toMatch(/Index Scan Backward using sessions_by_agent_created/);
  expect(plan).not.toMatch(/Sort|Bitmap/);
});
