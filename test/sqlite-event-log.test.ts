// SQLite's event log keeps a row per transaction (src/storage/sqlite/event-log.ts): the
// events of one group commit share a row, their ids consecutive from the row's; a write
// rolled back takes its events with it; reads resume inside a row and filter its events;
// migration 22 keeps every id.
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { agentEvent, sessionEvent } from '../src/events/event-records.js';
import { EVENT_IDS_SKIPPED_BY_A_COPY, EVENTS_PER_ROW, skipEventIds } from '../src/storage/sqlite/event-log.js';
import { openSqliteStore } from '../src/storage/sqlite/sqlite-store.js';
import type { EventInput, EventRecord, Store } from '../src/storage/store.js';
import { T0 } from './helpers/fake-clock.js';
import { withMigratedStore } from './helpers/old-sqlite-database.js';
import { tempDatabaseEachTest } from './helpers/temp-database.js';
import { agentRecord, sessionRecord } from './store/records.js';

const created = (at = T0) => ({ events: (s: Parameters<typeof sessionEvent>[1]) => [sessionEvent('session.created', s, at)] });

describe('the SQLite event log', () => {
  const database = tempDatabaseEachTest('sqlite-event-log-');
  let store: Store;
  const rows = () => {
    const raw = new Database(database.path, { readonly: true });
    try {
      return raw.prepare('SELECT id, n FROM event_log ORDER BY id').all() as Array<{ id: number; n: number }>;
    } finally {
      raw.close();
    }
  };
  const log = (after?: string) => store.listEvents({ limit: 10_000, ...(after === undefined ? {} : { after }) });

  beforeEach(() => {
    store = openSqliteStore(database.path, { eventScanWindow: 4 });
  });
  afterEach(() => store.close());

  it('writes the events of one group commit in one row, their ids consecutive, as handed to the listeners', async () => {
    const agent = agentRecord();
    await store.insertAgent(agent, { events: (a) => [agentEvent('agent.created', a, T0)] });
    const handed: EventRecord[] = [];
    const unsubscribe = store.onEventsWritten((committed) => handed.push(...(committed ?? [])));
    await Promise.all(Array.from({ length: 5 }, () => store.insertSession(sessionRecord(agent.id), created())));
    unsubscribe();
    expect(rows()).toEqual([
      { id: 1, n: 1 },
      { id: 2, n: 5 },
    ]);
    const read = await log('1');
    expect(read.map((event) => event.id)).toEqual(['2', '3', '4', '5', '6']);
    expect(read).toEqual(handed);
  });

  it('leaves out the events of a write that fails within the batch; the others keep consecutive ids', async () => {
    const agent = agentRecord();
    await store.insertAgent(agent);
    const failing = {
      ...created(),
      idempotency: () => {
        throw new Error('refused after its events were recorded');
      },
    };
    const [first, second, third] = [sessionRecord(agent.id), sessionRecord(agent.id), sessionRecord(agent.id)];
    const outcomes = await Promise.allSettled([store.insertSession(first, created()), store.insertSession(second, failing), store.insertSession(third, created())]);
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    const read = await log();
    expect(read.map((event) => [event.id, event.sessionId])).toEqual([
      ['1', first.id],
      ['2', third.id],
    ]);
    expect(rows()).toEqual([{ id: 1, n: 2 }]);
  });

  it(`splits a transaction of more than ${EVENTS_PER_ROW} events into rows; a read resumes from any of them`, async () => {
    const agent = agentRecord();
    const count = 2 * EVENTS_PER_ROW + 10;
    const events: EventInput[] = Array.from({ length: count }, (_, i) => agentEvent('agent.created', { ...agent, name: `Agent ${i}` }, T0 + i));
    await store.insertAgent(agent, { events: () => events });
    expect(rows()).toEqual([
      { id: 1, n: EVENTS_PER_ROW },
      { id: EVENTS_PER_ROW + 1, n: EVENTS_PER_ROW },
      { id: 2 * EVENTS_PER_ROW + 1, n: 10 },
    ]);
    const all = await log();
    expect(all.map((event) => event.data)).toEqual(events.map((event) => event.data));
    expect(all.map((event) => Number(event.id))).toEqual(Array.from({ length: count }, (_, i) => i + 1));
    for (let after = 0; after <= count; after += 1) {
      const page = await store.listEvents({ after: String(after), limit: 3 });
      expect(page.map((event) => Number(event.id))).toEqual([after + 1, after + 2, after + 3].filter((id) => id <= count));
    }
  });

  it('reads no more rows than a page needs: a page of 3 from rows of many events parses one row, not three', async () => {
    const agent = agentRecord();
    for (let round = 0; round < 3; round += 1) {
      const events = Array.from({ length: 100 }, (_, i) => agentEvent('agent.created', { ...agent, name: `Agent ${round}-${i}` }, T0 + i));
      await store.insertAgent(round === 0 ? agent : agentRecord(), { events: () => events });
    }
    expect(rows().map((row) => row.n)).toEqual([100, 100, 100]);
    // The default scan window (10,000 ids) holds all three rows.
    store.close();
    store = openSqliteStore(database.path);
    const parse = vi.spyOn(JSON, 'parse');
    try {
      const page = await store.listEvents({ after: '0', limit: 3 });
      expect(page.map((event) => event.id)).toEqual(['1', '2', '3']);
      // Each row parsed is a JSON array of its 100 events; the rows after the first were parsed and thrown away.
      expect(parse.mock.calls.filter(([text]) => typeof text === 'string' && text.startsWith('[')).length).toBe(1);
    } finally {
      parse.mockRestore();
    }
  });

  it('filters the events of rows that hold other sessions, agents and types', async () => {
    const [ada, bob] = [agentRecord(), agentRecord()];
    await Promise.all([store.insertAgent(ada, { events: (a) => [agentEvent('agent.created', a, T0)] }), store.insertAgent(bob, { events: (a) => [agentEvent('agent.created', a, T0)] })]);
    const sessions = [sessionRecord(ada.id), sessionRecord(bob.id), sessionRecord(ada.id)];
    for (let round = 0; round < 3; round += 1) {
      await Promise.all(sessions.map((session) => (round === 0 ? store.insertSession(session, created()) : store.modifySession(session.id, (current) => current!, { events: (s) => [sessionEvent('session.activity', s, T0 + round)] }))));
    }
    const all = await log();
    expect(rows().map((row) => row.n)).toEqual([2, 3, 3, 3]);
    const ids = (events: EventRecord[]) => events.map((event) => event.id);
    for (const session of sessions) {
      expect(ids(await store.listEvents({ sessionId: session.id, limit: 10 }))).toEqual(ids(all.filter((event) => event.sessionId === session.id)));
      expect(ids(await store.listEvents({ userId: session.userId, limit: 10 }))).toEqual(ids(all.filter((event) => event.userId === session.userId)));
    }
    expect(ids(await store.listEvents({ agentId: bob.id, limit: 10 }))).toEqual(ids(all.filter((event) => event.agentId === bob.id)));
    expect(ids(await store.listEvents({ agentIds: [ada.id], types: ['session.activity'], limit: 10 }))).toEqual(
      ids(all.filter((event) => event.agentId === ada.id && event.type === 'session.activity')),
    );
    // A page that ends inside a row, then the rest of it.
    const firstTwo = await store.listEvents({ agentId: ada.id, limit: 2 });
    expect(ids(firstTwo)).toEqual(ids(all.filter((event) => event.agentId === ada.id)).slice(0, 2));
    expect(ids(await store.listEvents({ agentId: ada.id, after: firstTwo[1]!.id, limit: 10 }))).toEqual(ids(all.filter((event) => event.agentId === ada.id)).slice(2));
  });

  it('reads on past a page of rows that hold none of the events it wants', async () => {
    const [ada, bob] = [agentRecord(), agentRecord()];
    // Row 1 holds Bob's id and an agent.created, but not Bob's agent.created.
    await store.insertAgent(ada, { events: () => [agentEvent('agent.created', ada, T0), agentEvent('agent.deleted', bob, T0)] });
    await store.insertAgent(bob, { events: (a) => [agentEvent('agent.created', a, T0)] });
    await store.insertAgent(agentRecord(), { events: () => [agentEvent('agent.created', bob, T0 + 1)] });
    const read = await store.listEvents({ agentId: bob.id, types: ['agent.created'], limit: 2 });
    expect(read.map((event) => [event.id, event.occurredAt])).toEqual([
      ['3', T0],
      ['4', T0 + 1],
    ]);
  });

  it("passes over the ids a backup's copy skips: the next event's id is that far on, and a read goes straight across the gap", async () => {
    const agent = agentRecord();
    await store.insertAgent(agent, { events: (a) => [agentEvent('agent.created', a, T0)] });
    const raw = new Database(database.path);
    skipEventIds(raw, EVENT_IDS_SKIPPED_BY_A_COPY);
    raw.close();
    expect(await store.lastEventId()).toBe('1');
    await store.insertSession(sessionRecord(agent.id), created());
    // It would have been 2.
    const next = String(2 + EVENT_IDS_SKIPPED_BY_A_COPY);
    // With a window of 4 ids, walking the gap id by id would take 2.5 × 10^11 reads.
    expect((await log()).map((event) => event.id)).toEqual(['1', next]);
    expect((await log('1')).map((event) => event.id)).toEqual([next]);
    expect((await log('5')).map((event) => event.id)).toEqual([next]);
    expect(await store.lastEventId()).toBe(next);
  });

  it("keeps one row of no events at the log's end when copies are copied again (a trim reads past one): the trim goes on", async () => {
    const agent = agentRecord();
    await store.insertAgent(agent, { events: (a) => [agentEvent('agent.created', a, T0)] });
    expect(await store.purgeEvents(T0 + 1, 10)).toBe(1);
    const raw = new Database(database.path);
    for (let copy = 0; copy < 3; copy += 1) skipEventIds(raw, 1000);
    raw.close();
    expect(rows()).toEqual([{ id: 3001, n: 0 }]);
    await store.insertSession(sessionRecord(agent.id), created());
    await store.insertSession(sessionRecord(agent.id), created());
    expect(await store.lastEventId()).toBe('3003');
    expect(await store.purgeEvents(T0 + 1, 1)).toBe(1);
    expect(await store.purgeEvents(T0 + 1, 1)).toBe(1);
  });

  it('skips fewer ids near 2^53, the most a JavaScript number holds exactly: ids stay exact and distinct', async () => {
    const agent = agentRecord();
    await store.insertAgent(agent, { events: (a) => [agentEvent('agent.created', a, T0)] });
    const raw = new Database(database.path);
    skipEventIds(raw, Number.MAX_SAFE_INTEGER - 100);
    skipEventIds(raw, EVENT_IDS_SKIPPED_BY_A_COPY);
    raw.close();
    for (let i = 0; i < 5; i += 1) await store.insertSession(sessionRecord(agent.id), created());
    const ids = (await log()).map((event) => BigInt(event.id));
    expect(ids).toHaveLength(6);
    expect(new Set(ids).size).toBe(6);
    expect(ids.every((id) => id <= BigInt(Number.MAX_SAFE_INTEGER))).toBe(true);
  });
});

describe('SQLite migration 22', () => {
  const insertEvent = (old: Database.Database, occurredAt: number, data: string) =>
    old.prepare("INSERT INTO events (type, occurred_at, agent_id, session_id, user_id, data) VALUES ('agent.created', ?, 'a', NULL, NULL, ?)").run(occurredAt, data);

  it('keeps every event under its id, and ids go on after the last one given', () =>
    withMigratedStore(
      21,
      (old) => {
        for (let i = 1; i <= 5; i += 1) insertEvent(old, T0 + i, JSON.stringify({ id: 'a', name: `Ada ${i}` }));
        old.exec('DELETE FROM events WHERE id IN (2, 5)');
      },
      async (store) => {
        const read = await store.listEvents({ limit: 10 });
        expect(read.map((event) => [event.id, event.occurredAt, event.data])).toEqual([
          ['1', T0 + 1, { id: 'a', name: 'Ada 1' }],
          ['3', T0 + 3, { id: 'a', name: 'Ada 3' }],
          ['4', T0 + 4, { id: 'a', name: 'Ada 4' }],
        ]);
        expect(await store.lastEventId()).toBe('4');
        await store.insertAgent(agentRecord(), { events: (a) => [agentEvent('agent.created', a, T0)] });
        expect((await store.listEvents({ after: '4', limit: 10 })).map((event) => event.id)).toEqual(['6']);
      },
    ));

  it('keeps the ids of a log trimmed to nothing from being given again', () =>
    withMigratedStore(
      21,
      (old) => {
        for (let i = 1; i <= 3; i += 1) insertEvent(old, T0 + i, '{}');
        old.exec('DELETE FROM events');
      },
      async (store) => {
        expect(await store.lastEventId()).toBeUndefined();
        await store.insertAgent(agentRecord(), { events: (a) => [agentEvent('agent.created', a, T0)] });
        expect((await store.listEvents({ limit: 10 })).map((event) => event.id)).toEqual(['4']);
      },
    ));

  it("keeps the ids a backup's copy skipped before the log (a copy of version 21)", () =>
    withMigratedStore(
      21,
      (old) => {
        for (let i = 1; i <= 3; i += 1) insertEvent(old, T0 + i, '{}');
        skipEventIds(old, 1000);
      },
      async (store) => {
        expect(await store.lastEventId()).toBe('3');
        await store.insertAgent(agentRecord(), { events: (a) => [agentEvent('agent.created', a, T0)] });
        expect((await store.listEvents({ after: '3', limit: 10 })).map((event) => event.id)).toEqual(['1004']);
      },
    ));
});
