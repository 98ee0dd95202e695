// Messages a write sends to PostgreSQL. A write to a session holds its row lock from its
// first message to its COMMIT: every message in between is a round trip to this process
// under that lock, which every other writer of the session (on any instance) waits out.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { announce } from '../src/events/due-events.js';
import { sessionEvent, withEvents } from '../src/events/event-records.js';
import { openPostgresStore } from '../src/storage/postgres/postgres-store.js';
import type { MessageRecord, SessionRecord, Store } from '../src/storage/store.js';
import { MINUTE, T0 } from './helpers/fake-clock.js';
import { createTestDatabase, type TestDatabase } from './helpers/postgres-database.js';
import { storedMessages } from './helpers/stored-messages.js';
import { agentRecord, messageRecord, sessionRecord } from './store/records.js';

describe('messages a write sends to PostgreSQL', { timeout: 30_000 }, () => {
  let database: TestDatabase;
  let store: Store;
  beforeAll(async () => {
    database = await createTestDatabase();
    store = await openPostgresStore({ url: database.url });
  });
  afterAll(async () => {
    await store.close();
    await database.drop();
  });

  /**
   * What `write` sent on the pool's connections (each message's first line; not the
   * listening connection's LISTEN, nor the SET of statement_timeout that opens each new
   * connection of the pool), and what it returned.
   */
  async function sentBy<T>(write: () => Promise<T>): Promise<{ messages: string[]; result: T }> {
    const query = vi.spyOn(pg.Client.prototype, 'query');
    try {
      const result = await write();
      const fromPool = query.mock.calls.filter((_, i) => (query.mock.contexts[i] as { connectionParameters: { application_name?: string } }).connectionParameters.application_name === 'sessions-api');
      const messages = fromPool.map(([text]) => String(typeof text === 'string' ? text : (text as { text: string }).text).split('\n')[0]!);
      return { messages: messages.filter((message) => !message.startsWith('SET statement_timeout = ')), result };
    } finally {
      query.mockRestore();
    }
  }

  it('BEGIN with the lock, then the changes with the COMMIT: two for a heartbeat, a message and an end; one for a create', async () => {
    const agent = agentRecord();
    await store.insertAgent(agent);
    const session = sessionRecord(agent.id);
    const created = await sentBy(() => store.insertSession(session, withEvents(undefined, (written) => [sessionEvent('session.created', written, T0)])));
    expect(created.messages).toHaveLength(1);
    expect(created.result).toBe(true);

    const renewed = await sentBy(() =>
      store.modifySession(session.id, (current) => ({ ...current!, renewalCount: current!.renewalCount + 1 }), withEvents(undefined, (written) => [sessionEvent('session.renewed', written, T0)])),
    );
    expect(renewed.messages).toEqual([expect.stringMatching(/^BEGIN;/), expect.stringMatching(/^UPDATE sessions/)]);
    expect((await store.getSession(session.id))?.renewalCount).toBe(1);

    const appended = await sentBy(() =>
      store.appendMessage(session.id, (current, last) => ({ session: current!, message: messageRecord(session, (last ?? -1) + 1) }), undefined),
    );
    expect(appended.messages).toHaveLength(2);
    expect(appended.result.message.position).toBe(0);
    const second = await store.appendMessage(session.id, (current, last) => ({ session: current!, message: messageRecord(session, (last ?? -1) + 1) }), undefined);
    expect(second.message.position).toBe(1);
    expect((await storedMessages(store, { sessionId: session.id, limit: 10 })).positions).toEqual([1, 0]);

    const ended = await sentBy(() => store.deleteSession(session.id, (current) => current!));
    expect(ended.messages).toEqual([expect.stringMatching(/^BEGIN;/), expect.stringMatching(/^DELETE FROM sessions/)]);
    expect(await store.getSession(session.id)).toBeUndefined();
  });

  it('creates arriving together: one message for up to 100 of them; a batch that fails, one message more for each create, alone', async () => {
    const agent = agentRecord();
    await store.insertAgent(agent);
    const created = (written: SessionRecord) => [sessionEvent('session.created', written, T0)];
    const sessions = Array.from({ length: 150 }, () => sessionRecord(agent.id));
    const together = await sentBy(() => Promise.all(sessions.map((session) => store.insertSession(session, { events: created }))));
    expect(together.result).toEqual(sessions.map(() => true));
    expect(together.messages).toEqual([expect.stringMatching(/^WITH agent AS/), expect.stringMatching(/^WITH agent AS/)]);
    const events = await store.listEvents({ sessionId: sessions[149]!.id, limit: 10 });
    expect(events.map((e) => e.type)).toEqual(['session.created']);

    // One for an agent never stored: the batch fails on the foreign key; each is then tried alone.
    const mixed = [sessionRecord(agent.id), sessionRecord('00000000-0000-4000-8000-00000000000a'), sessionRecord(agent.id)];
    const failed = await sentBy(() => Promise.all(mixed.map((session) => store.insertSession(session, { events: created }))));
    expect(failed.result).toEqual([true, false, true]);
    // The one refused is rolled back: its COMMIT's message failed.
    expect([...failed.messages].sort()).toEqual(['BEGIN;', 'BEGIN;', 'BEGIN;', 'ROLLBACK', 'WITH agent AS MATERIALIZED (']);
    expect(failed.messages[0]).toMatch(/^WITH agent AS/);
  });

  it('reads by id (or by key hash) arriving together: one message', async () => {
    const agent = agentRecord();
    await store.insertAgent(agent);
    const sessions = [sessionRecord(agent.id), sessionRecord(agent.id), sessionRecord(agent.id)];
    for (const session of sessions) await store.insertSession(session);
    const ids = [...sessions.map((s) => s.id), sessions[0]!.id, '00000000-0000-4000-8000-00000000000b', `${sessions[1]!.id}\u0000`];
    const read = await sentBy(() => Promise.all(ids.map((id) => store.getSession(id))));
    expect(read.messages).toEqual(['SELECT * FROM sessions WHERE id = ANY($1::text[])']);
    expect(read.result).toEqual([...sessions, sessions[0], undefined, undefined]);

    const key = { id: 'key-rt', name: 'rt', keyHash: 'hash-rt', admin: true, agentIds: [], createdAt: T0 };
    await store.insertApiKey(key);
    const keys = await sentBy(() => Promise.all(['hash-rt', 'hash-none', 'hash-rt'].map((hash) => store.findApiKey(hash))));
    expect(keys.messages).toEqual(['SELECT * FROM api_keys WHERE key_hash = ANY($1::text[])']);
    expect(keys.result).toEqual([key, undefined, key]);
  });

  it('writes to one session arriving together: one transaction of two messages, each write built on the one before', async () => {
    const agent = agentRecord();
    await store.insertAgent(agent);
    const session = sessionRecord(agent.id);
    await store.insertSession(session);
    const appended = await sentBy(() =>
      Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          i % 5 === 4
            ? store.modifySession(session.id, (current) => ({ ...current!, renewalCount: current!.renewalCount + 1 }), withEvents(undefined, (written) => [sessionEvent('session.renewed', written, T0)]))
            : store.appendMessage(session.id, (current, last) => ({ session: current!, message: messageRecord(session, (last ?? -1) + 1) }), withEvents(undefined, ({ message }: { message: MessageRecord }) => [{ type: 'message.created' as const, occurredAt: T0, agentId: agent.id, sessionId: session.id, data: { position: message.position } as never }])),
        ),
      ),
    );
    expect(appended.messages).toEqual([expect.stringMatching(/^BEGIN;/), expect.stringMatching(/^UPDATE sessions/)]);
    expect((await storedMessages(store, { sessionId: session.id, limit: 50 })).positions).toEqual(Array.from({ length: 16 }, (_, i) => 15 - i));
    expect((await store.getSession(session.id))?.renewalCount).toBe(4);
    const events = await store.listEvents({ sessionId: session.id, limit: 50 });
    expect(events.map((e) => (e.type === 'session.renewed' ? 'renewed' : (e.data as unknown as { position: number }).position))).toEqual(
      [0, 1, 2, 3, 'renewed', 4, 5, 6, 7, 'renewed', 8, 9, 10, 11, 'renewed', 12, 13, 14, 15, 'renewed'],
    );
  });

  it('a keyed create: two (the insert of its record needs an answer, and takes the BEGIN with it)', async () => {
    const agent = agentRecord();
    await store.insertAgent(agent);
    const session = sessionRecord(agent.id);
    const record = { scope: 'anonymous', key: `key-${session.id}`, fingerprint: 'f', status: 201, body: '{}', createdAt: T0, expiresAt: T0 + 24 * 60 * MINUTE };
    const { messages, result } = await sentBy(() => store.insertSession(session, { idempotency: () => record }));
    expect(messages).toEqual([expect.stringMatching(/^BEGIN;/), expect.stringMatching(/^INSERT INTO sessions/)]);
    expect(result).toBe(true);
    expect(await store.getIdempotencyRecord(record.scope, record.key, T0)).toEqual(record);
  });

  it('the due-event pump: a batch is two messages, its read with the BEGIN, then every update with the events and the COMMIT', async () => {
    const agent = agentRecord();
    await store.insertAgent(agent);
    // Later than the other tests' sessions, whose announcements are all made first.
    const created = T0 + 24 * 60 * MINUTE;
    const at = created + 26 * MINUTE;
    while ((await store.announceDue(at, 100, announce)) > 0);
    const sessions = [sessionRecord(agent.id, {}, created), sessionRecord(agent.id, {}, created), sessionRecord(agent.id, {}, created)];
    for (const session of sessions) await store.insertSession(session);
    // Warnings fall due 25 minutes in: two in a batch of two, then the third and nothing more.
    const { messages, result } = await sentBy(() => store.announceDue(at, 2, announce));
    expect(result).toBe(2);
    expect(messages).toEqual([expect.stringMatching(/^BEGIN;/), expect.stringMatching(/^UPDATE sessions/)]);
    const rest = await sentBy(() => store.announceDue(at, 10, announce));
    expect(rest.result).toBe(1);
    expect(rest.messages).toHaveLength(2);
    expect(await store.announceDue(at, 10, announce)).toBe(0);
    for (const session of sessions) expect((await store.getSession(session.id))?.announced).toBe('warning');
  });

  it('a write whose change throws sends its lock and a ROLLBACK, and changes nothing', async () => {
    const agent = agentRecord();
    await store.insertAgent(agent);
    const session = sessionRecord(agent.id);
    await store.insertSession(session);
    const refused = new Error('refused by the change');
    const { messages } = await sentBy(() =>
      store
        .modifySession(session.id, () => {
          throw refused;
        })
        .catch((error: unknown) => error),
    );
    expect(messages).toEqual([expect.stringMatching(/^BEGIN;/), 'ROLLBACK']);
    expect(await store.getSession(session.id)).toEqual(session);

    // Beside writes that succeed, in one transaction: it fails alone, the others build on each other.
    const bump = (current: SessionRecord | undefined) => ({ ...current!, renewalCount: current!.renewalCount + 1 });
    const together = await sentBy(() =>
      Promise.allSettled([
        store.modifySession(session.id, bump),
        store.modifySession(session.id, () => {
          throw refused;
        }),
        store.modifySession(session.id, bump),
      ]),
    );
    expect(together.messages).toEqual([expect.stringMatching(/^BEGIN;/), expect.stringMatching(/^UPDATE sessions/)]);
    expect(together.result.map((r) => (r.status === 'fulfilled' ? r.value.renewalCount : r.reason))).toEqual([1, refused, 2]);
    expect((await store.getSession(session.id))?.renewalCount).toBe(2);
  });
});
