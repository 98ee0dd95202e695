// How the SQLite log stores events' data (src/storage/sqlite/event-data.ts): a session
// event's SessionInfo as an array, other data as its JSON text; read back, every event is
// what was written, byte for byte in JSON, whichever way it was stored.
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { agentEvent, eventJson, loggedEvent, messageEvent, sessionEvent } from '../src/events/event-records.js';
import { eventFromStored, eventsOfRow, storedEvent, storedEventData, type StoredEvent } from '../src/storage/sqlite/event-data.js';
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
      const event = sessionEvent(type, record, at);
      const written = loggedEvent('7', event);
      const read = eventFromStored(7, eventsOfRow(`[${storedEvent(event, storedEventData(event), undefined)}]`)[0]!);
      expect(eventJson(read)).toBe(eventJson(written));
      // As JSON text storage gave it back: numbers JSON cannot write (Infinity, NaN) read as null.
      expect(read.data).toEqual(JSON.parse(JSON.stringify(written.data)));
    }),
    { numRuns: 1000, seed: 21 },
  );
});

it('refuses stored data of a form it does not know', () => {
  const stored: StoredEvent = ['session.created', T0, 'a', 's', 'u', [2, 'x']];
  expect(() => eventFromStored(3, stored)).toThrow('event 3: its data is stored in an unknown form (2)');
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
      const rows = raw.prepare('SELECT events FROM event_log ORDER BY id').pluck().all() as string[];
      raw.close();
      const stored = rows.flatMap(eventsOfRow);
      // The session's activity after its message leaves out the ids the message's event gave.
      expect(rows.map((row) => (JSON.parse(row) as unknown[][]).map((event) => event.length))).toEqual([[6], [6], [6, 3]]);
      expect(stored).toHaveLength(read.length);
      for (const [index, [type, , , , , data]] of stored.entries()) {
        const json = JSON.stringify(read[index]!.data);
        if (type.startsWith('session.')) {
          expect(JSON.stringify(data).startsWith('[1,')).toBe(true);
          expect(JSON.stringify(data).length).toBeLessThan(json.length / 2);
        } else {
          expect(JSON.stringify(data)).toBe(json);
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
