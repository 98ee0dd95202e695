// How the SQLite log stores events' data (src/storage/sqlite/event-data.ts): a session
// event's SessionInfo as an array, other data as its JSON text; read back, every event is
// what was written, byte for byte in JSON, whichever way it was stored.
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { agentEvent, eventJson, loggedEvent, messageEvent, sessionEvent } from '../src/events/event-records.js';
import { eventFromRow, storedSessionInfo } from '../src/storage/sqlite/event-data.js';
import { openSqliteStore } from '../src/storage/sqlite/sqlite-store.js';
import type { EventRecord, EventType } from '../src/storage/store.js';
import { arbitrarySession, instant } from './helpers/arbitrary-session.js';
import { T0 } from './helpers/fake-clock.js';
import { withMigratedStore } from './helpers/old-sqlite-database.js';
import { tempDatabaseEachTest } from './helpers/temp-database.js';
import { agentRecord, messageRecord, sessionRecord } from './store/records.js';

const SESSION_TYPES: EventType[] = ['session.created', 'session.renewed', 'session.activity', 'session.timeout_updated', 'session.warning', 'session.expired', 'session.ended'];

it('reads a stored SessionInfo back as the event written: the same JSON, for any session, instant and session event type', () => {
  fc.assert(
    fc.property(arbitrarySession, instant, fc.constantFrom(...SESSION_TYPES), (record, at, type) => {
      const written = loggedEvent('7', sessionEvent(type, record, at));
      const row = { id: 7, type, occurred_at: at, agent_id: record.agentId, session_id: record.id, user_id: record.userId, data: storedSessionInfo(sessionEvent(type, record, at).data as never) };
      const read = eventFromRow(row);
      expect(eventJson(read)).toBe(eventJson(written));
      // As JSON text storage gave it back: numbers JSON cannot write (Infinity, NaN) read as null.
      expect(read.data).toEqual(JSON.parse(JSON.stringify(written.data)));
    }),
    { numRuns: 1000, seed: 21 },
  );
});

it('refuses stored data of a form it does not know', () => {
  const row = { id: 3, type: 'session.created' as const, occurred_at: T0, agent_id: 'a', session_id: 's', user_id: 'u', data: '[2,"x"]' };
  expect(() => eventFromRow(row)).toThrow('event 3: its data is stored in an unknown form (2)');
});

describe('SQLite', () => {
  const database = tempDatabaseEachTest('event-data-');

  it("stores a session event's SessionInfo as an array and other data as JSON; reads every event back as it was handed to the listeners", async () => {
    const store = openSqliteStore(database.path);
    const live: EventRecord[] = [];
    const unsubscribe = store.onEventsWritten((committed) => live.push(...(committed ?? [])));
    try {
      const agent = agentRecord();
      await store.insertAgent(agent, { events: (a) => [agentEvent('agent.created', a, T0)] });
      const chat = sessionRecord(agent.id, { metadata: { platform: 'discord', quote: '"hi"\n', nested: { list: [1, null, 'é'] } } });
      await store.insertSession(chat, { events: (s) => [sessionEvent('session.created', s, T0)] });
      const message = messageRecord(chat, 1);
      await store.appendMessage(chat.id, (current) => ({ session: current!, message }), {
        events: (written) => [messageEvent(written.session, written.message), sessionEvent('session.renewed', written.session, T0 + 1)],
      });

      const read = await store.listEvents({ limit: 10 });
      expect(read.map((event) => event.type)).toEqual(['agent.created', 'session.created', 'message.created', 'session.renewed']);
      expect(read.map(eventJson)).toEqual(live.map(eventJson));
      expect(read).toEqual(live);

      const raw = new Database(database.path, { readonly: true });
      const stored = raw.prepare('SELECT type, data FROM events ORDER BY id').all() as Array<{ type: string; data: string }>;
      raw.close();
      for (const [index, row] of stored.entries()) {
        const json = JSON.stringify(read[index]!.data);
        if (row.type.startsWith('session.')) {
          expect(row.data.startsWith('[1,')).toBe(true);
          expect(row.data.length).toBeLessThan(json.length / 2);
        } else {
          expect(row.data).toBe(json);
        }
      }
    } finally {
      unsubscribe();
      await store.close();
    }
  });

  it('migration 21: reads the session events stored before it (their JSON text) as they were', () => {
    const before = sessionEvent('session.warning', sessionRecord('a', { metadata: { platform: 'web' } }), T0);
    const data = JSON.stringify(before.data);
    return withMigratedStore(
      20,
      (old) => {
        old.prepare('INSERT INTO events (type, occurred_at, agent_id, session_id, user_id, data) VALUES (?, ?, ?, ?, ?, ?)').run(before.type, before.occurredAt, 'a', before.sessionId, before.userId, data);
      },
      async (store) => {
        const [read] = await store.listEvents({ limit: 10 });
        expect(read).toEqual({ id: '1', ...before });
        expect(eventJson(read!)).toBe(eventJson(loggedEvent('1', before, data)));
      },
    );
  });
});
