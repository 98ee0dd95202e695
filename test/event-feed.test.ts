// The shared reader of the event log behind every stream: one read per commit for all
// streams; the hand-over from a stream's own replay to the shared feed with writes
// racing it (nothing missed, nothing repeated); a slow reader that neither blocks the
// others nor queues without bound.
import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { agentEvent } from '../src/events/event-records.js';
import { canonicalId, createEventFeed, isAfter } from '../src/events/event-feed.js';
import { openPostgresStore } from '../src/storage/postgres/postgres-store.js';
import { createEventStreams, type StreamOptions } from '../src/events/event-stream.js';
import type { EventQuery, EventRecord, Store } from '../src/storage/store.js';
import { createSession, registerAgent } from './helpers/fixtures.js';
import { T0 } from './helpers/fake-clock.js';
import { createTestDatabase } from './helpers/postgres-database.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';
import { agentRecord } from './store/records.js';

let t: TestApp;
let agentId: string;

beforeEach(async () => {
  t = await startTestApp();
  agentId = await registerAgent(t);
});
afterEach(async () => {
  await t.close();
});

/** A socket that records writes; `full` makes every write report a full buffer until `drain()`. */
function fakeSocket() {
  const socket = Object.assign(new EventEmitter(), {
    frames: [] as string[],
    full: false,
    writeHead() {},
    end() {},
    write(text: string) {
      socket.frames.push(text);
      return !socket.full;
    },
    // A write carries one or more frames (a batch).
    ids: () => [...socket.frames.join('').matchAll(/^id: (\d+)$/gm)].map((match) => match[1]!),
    drain() {
      socket.full = false;
      socket.emit('drain');
    },
  });
  return socket;
}

function openOn(streams: ReturnType<typeof createEventStreams>, store: Store, options: StreamOptions) {
  const socket = fakeSocket();
  const request = { raw: new EventEmitter(), log: { error() {} } };
  streams.open(request as never, { raw: socket, hijack() {}, getHeaders: () => ({}) } as never, store, options);
  return socket;
}

/**
 * The store, with its reads of the log counted: `shared` those of the feed (no filter), `own`
 * the streams'; `handed` the commits whose events the store handed to the feed (`sharedCursor`:
 * the last event the feed read or was handed). `swallow` drops the next commit's word.
 */
function countingStore(onOwnRead: (query: EventQuery) => Promise<void> = async () => {}) {
  const reads = { shared: 0, own: 0, handed: 0, sharedCursor: '0', swallow: false };
  const store = new Proxy(t.store, {
    get(target, key) {
      if (key === 'onEventsWritten') {
        return (listener: (committed?: EventRecord[]) => void) =>
          target.onEventsWritten((committed) => {
            if (reads.swallow) return void (reads.swallow = false);
            if (committed) {
              reads.handed += 1;
              reads.sharedCursor = committed.at(-1)!.id;
            }
            listener(committed);
          });
      }
      if (key !== 'listEvents') return Reflect.get(target, key);
      return async (query: EventQuery): Promise<EventRecord[]> => {
        if (query.types === undefined && query.sessionId === undefined) {
          reads.shared += 1;
          const events = await target.listEvents(query);
          if (events.length > 0) reads.sharedCursor = events.at(-1)!.id;
          return events;
        }
        reads.own += 1;
        return onOwnRead(query).then(() => target.listEvents(query));
      };
    },
  });
  return { store, reads };
}

const created = async (after = '0') => (await t.store.listEvents({ after, types: ['session.created'], limit: 10_000 })).map((event) => event.id);
const createSessions = async (count: number) => {
  for (let i = 0; i < count; i += 1) await createSession(t, { agentId });
};

describe('the shared reader', () => {
  it('takes each commit of this process from the store, with no read, for all live streams, and hands each stream only what its filter matches', async () => {
    const { store, reads } = countingStore();
    const streams = createEventStreams({ feed: createEventFeed(store, { pollMs: 60_000 }) });
    const otherAgent = await registerAgent(t);
    const all = Array.from({ length: 10 }, () => openOn(streams, store, { filter: { types: ['session.created'] }, after: '0' }));
    const ofOther = openOn(streams, store, { filter: { agentId: otherAgent, types: ['session.created'] }, after: '0' });
    await expect.poll(() => reads.own).toBe(11); // each stream's replay: one read
    const readsBefore = reads.shared;
    const handedBefore = reads.handed;

    const { sessionId } = await createSession(t, { agentId });
    const log = await created();
    await expect.poll(() => all.every((socket) => socket.ids().join() === log.join())).toBe(true);
    expect(reads.own).toBe(11);
    expect(reads.shared - readsBefore).toBe(0);
    expect(reads.handed - handedBefore).toBe(1);
    expect(ofOther.ids()).toEqual([]);

    const session = openOn(streams, store, { filter: { sessionId }, after: '0' });
    await expect.poll(() => session.ids().length).toBe(1);
    streams.closeAll();
  });

  it('hands a stream over from its replay to the feed with no gap and no duplicate while writes race the join', async () => {
    await createSessions(3);
    // The replay's first read is raced: writes commit before it (the feed hands them over too:
    // duplicates) and after it (only the feed has them: a gap, without the hand-over).
    let raced = false;
    const { store, reads } = countingStore(async () => {
      if (raced) return;
      raced = true;
      await createSessions(4);
      await expect.poll(() => reads.sharedCursor).toBe((await t.store.lastEventId())!);
    });
    const raceAfter = async () => {
      await createSessions(4);
      await expect.poll(() => reads.sharedCursor).toBe((await t.store.lastEventId())!);
    };
    const streams = createEventStreams({ feed: createEventFeed(store, { pollMs: 60_000 }) });
    const original = store.listEvents.bind(store);
    let afterRead = false;
    const racedStore = new Proxy(store, {
      get: (target, key) =>
        key === 'listEvents'
          ? async (query: EventQuery) => {
              const events = await original(query);
              if (query.types !== undefined && !afterRead) {
                afterRead = true;
                await raceAfter();
              }
              return events;
            }
          : Reflect.get(target, key),
    });
    const resumeFrom = (await created())[1]!;
    const socket = openOn(streams, racedStore, { filter: { types: ['session.created'] }, after: resumeFrom });
    await expect.poll(() => socket.ids().length).toBe(1 + 4 + 4);
    await createSessions(2); // live, after the hand-over
    const expected = await created(resumeFrom);
    expect(expected).toHaveLength(1 + 4 + 4 + 2);
    await expect.poll(() => socket.ids().length).toBe(expected.length);
    expect(socket.ids()).toEqual(expected);
    streams.closeAll();
  });

  it('reads the log when a commit handed over does not follow its cursor (another process wrote between): no gap', async () => {
    const { store, reads } = countingStore();
    const streams = createEventStreams({ feed: createEventFeed(store, { pollMs: 60_000 }) });
    const socket = openOn(streams, store, { filter: { types: ['session.created'] }, after: '0' });
    await expect.poll(() => reads.own).toBe(1);
    await createSessions(1);
    await expect.poll(() => socket.ids().length).toBe(1);
    const readsBefore = reads.shared;

    reads.swallow = true; // as if written by another process: no word of it (the next poll would read it)
    await createSessions(1);
    await createSessions(1); // its events follow one the feed has not seen
    const log = await created();
    await expect.poll(() => socket.ids().length).toBe(3);
    expect(socket.ids()).toEqual(log);
    expect(reads.shared - readsBefore).toBe(1);
    streams.closeAll();
  });

  it('hands each event once when this process commits while a read of the log is under way (the read has it too)', async () => {
    let hold: Promise<void> | undefined;
    let held = false;
    const store = new Proxy(t.store, {
      get: (target, key) =>
        key === 'listEvents'
          ? async (query: EventQuery) => {
              if (hold) {
                held = true;
                await hold;
              }
              return target.listEvents(query);
            }
          : Reflect.get(target, key),
    });
    const feed = createEventFeed(store, { pollMs: 10 }); // the poll starts the reads held here
    const seen: string[] = [];
    const leave = await feed.follow({ see: (event) => void seen.push(event.id) });
    let release!: () => void;
    hold = new Promise<void>((resolve) => (release = resolve));
    await expect.poll(() => held).toBe(true);
    await createSessions(1); // committed right after the feed's cursor, while its read waits
    hold = undefined;
    release();
    const log = (await t.store.listEvents({ after: '0', limit: 10_000 })).map((event) => event.id);
    await expect.poll(() => seen.length).toBeGreaterThanOrEqual(1);
    await new Promise((resolve) => setTimeout(resolve, 50)); // a few more polls
    expect(seen).toEqual(log.slice(-seen.length));
    expect(new Set(seen).size).toBe(seen.length);
    leave();
  });

  it('reads on past a full page of 500 events: a follower gets all of a large write by another process at once, not at the next poll', async () => {
    let muted = false;
    const store = new Proxy(t.store, {
      get: (target, key) =>
        key === 'onEventsWritten'
          ? (listener: (committed?: EventRecord[]) => void) => target.onEventsWritten((committed) => (muted ? undefined : listener(committed)))
          : Reflect.get(target, key),
    });
    const feed = createEventFeed(store, { pollMs: 60_000 });
    const seen: string[] = [];
    const leave = await feed.follow({ see: (event) => void seen.push(event.id) });
    const insert = (events: number) => {
      const agent = agentRecord();
      return t.store.insertAgent(agent, { events: (written) => Array.from({ length: events }, () => agentEvent('agent.created', written, T0)) });
    };
    muted = true; // as if another process wrote them: no word to the feed
    await insert(600);
    muted = false;
    await insert(1); // its events do not follow the feed's cursor: the log is read
    const log = (await t.store.listEvents({ after: '0', limit: 10_000 })).map((event) => event.id);
    await expect.poll(() => seen.length, { timeout: 5000 }).toBe(601);
    expect(seen).toEqual(log.slice(-601));
    leave();
  });

  it('stops reading the log once its last follower leaves, and follows again from the newest event', async () => {
    let reads = 0;
    const store = new Proxy(t.store, {
      get: (target, key) => (key === 'listEvents' ? (query: EventQuery) => ((reads += 1), target.listEvents(query)) : Reflect.get(target, key)),
    });
    const feed = createEventFeed(store, { pollMs: 10 });
    const leave = await feed.follow({ see: () => {} });
    await expect.poll(() => reads).toBeGreaterThan(0); // the poll reads while someone follows
    leave();
    expect(feed.size()).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 30)); // a read under way ends
    const readsAfter = reads;
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(reads).toBe(readsAfter);
    await createSessions(1);
    const seen: string[] = [];
    const again = await feed.follow({ see: (event) => void seen.push(event.id) });
    await createSessions(1);
    const log = (await t.store.listEvents({ after: '0', limit: 10_000 })).map((event) => event.id);
    await expect.poll(() => seen.length).toBeGreaterThan(0);
    expect(seen).toEqual(log.slice(-seen.length)); // nothing from before it followed again, nothing twice
    expect(seen.length).toBeLessThanOrEqual(2);
    again();
  });

  // A session.created event's data is about 500 characters: 2,000 hold about four of them.
  it.each([
    { bound: 'events', limits: { queueLimit: 5 } },
    { bound: "characters of the events' data", limits: { queueCharsLimit: 2000 } },
  ])('lets a slow reader fall behind without blocking the others, then catch up from the log with a queue bounded in $bound', async ({ limits }) => {
    const { store, reads } = countingStore();
    const streams = createEventStreams({ feed: createEventFeed(store, { pollMs: 60_000 }), ...limits });
    const filter = { types: ['session.created' as const] };
    const slow = openOn(streams, store, { filter, after: '0' });
    const fast = openOn(streams, store, { filter, after: '0' });
    await expect.poll(() => reads.own).toBe(2);

    slow.full = true;
    await createSessions(1); // the slow socket takes it, and is full from then on
    await expect.poll(() => slow.ids().length).toBe(1);
    await createSessions(12); // more than its queue holds
    const log = await created();
    await expect.poll(() => fast.ids().length).toBe(13);
    expect(slow.ids()).toHaveLength(1);
    expect(reads.own).toBe(2); // it queued, then dropped the queue: no read yet

    slow.drain();
    await expect.poll(() => slow.ids().length).toBe(13);
    expect(reads.own).toBe(3); // it caught up by reading the log itself
    expect(slow.ids()).toEqual(log);
    expect(fast.ids()).toEqual(log);

    await createSessions(2); // and it is live again
    const all = await created();
    await expect.poll(() => slow.ids().length).toBe(15);
    expect(slow.ids()).toEqual(all);
    expect(reads.own).toBe(3);
    streams.closeAll();
  });

  it('holds queueLimit events for a slow reader, and drops the queue at one more', async () => {
    const { store, reads } = countingStore();
    const streams = createEventStreams({ feed: createEventFeed(store, { pollMs: 60_000 }), queueLimit: 5 });
    const filter = { types: ['session.created' as const] };
    const slow = openOn(streams, store, { filter, after: '0' });
    await expect.poll(() => reads.own).toBe(1);
    slow.full = true;
    await createSessions(1);
    await expect.poll(() => slow.ids().length).toBe(1);
    await createSessions(5); // as many as its queue holds: sent from the queue, no read
    slow.drain();
    await expect.poll(() => slow.ids().length).toBe(6);
    expect(reads.own).toBe(1);
    slow.full = true;
    await createSessions(1);
    await expect.poll(() => slow.ids().length).toBe(7);
    await createSessions(6); // one more than it holds: the queue goes, the log is read
    slow.drain();
    await expect.poll(() => slow.ids().length).toBe(13);
    expect(reads.own).toBe(2);
    expect(slow.ids()).toEqual(await created());
    streams.closeAll();
  });
});

describe('on PostgreSQL', () => {
  it("wakes the shared reader of every instance through LISTEN/NOTIFY: a stream on one gets the other's writes, in log order", async () => {
    const database = await createTestDatabase();
    const [a, b] = [await openPostgresStore({ url: database.url, poolSize: 2 }), await openPostgresStore({ url: database.url, poolSize: 2 })];
    try {
      const insertAgent = () => {
        const agent = agentRecord();
        return a.insertAgent(agent, { events: (written) => [agentEvent('agent.created', written, T0)] });
      };
      await insertAgent();
      const first = (await b.lastEventId())!;
      const streams = createEventStreams({ feed: createEventFeed(b, { pollMs: 60_000 }) }); // no poll: only the notifications wake it
      const socket = openOn(streams, b, { filter: {}, after: first });
      await Promise.all(Array.from({ length: 6 }, insertAgent)); // racing the stream's join
      await Promise.all(Array.from({ length: 6 }, insertAgent));
      const log = (await b.listEvents({ after: first, limit: 100 })).map((event) => event.id);
      expect(log).toHaveLength(12);
      await expect.poll(() => socket.ids().length).toBe(12);
      expect(socket.ids()).toEqual(log);
      streams.closeAll();
    } finally {
      await a.close();
      await b.close();
      await database.drop();
    }
  });
  it('replays the whole log to a stream resumed after event 0 (Last-Event-ID: 0 or 000)', async () => {
    const database = await createTestDatabase();
    const store = await openPostgresStore({ url: database.url, poolSize: 2 });
    try {
      for (let i = 0; i < 3; i += 1) {
        const agent = agentRecord();
        await store.insertAgent(agent, { events: (written) => [agentEvent('agent.created', written, T0)] });
      }
      const log = (await store.listEvents({ after: '0', limit: 100 })).map((event) => event.id);
      expect(log).toHaveLength(3);
      const streams = createEventStreams({ feed: createEventFeed(store, { pollMs: 60_000 }) });
      const sockets = ['0', '000'].map((after) => openOn(streams, store, { filter: {}, after }));
      for (const socket of sockets) await expect.poll(() => socket.ids()).toEqual(log);
      streams.closeAll();
    } finally {
      await store.close();
      await database.drop();
    }
  });
});

describe('event ids', () => {
  it('orders decimal ids by value, not as text', () => {
    expect(isAfter('10', '9')).toBe(true);
    expect(isAfter('9', '10')).toBe(false);
    expect(isAfter('12', '12')).toBe(false);
    expect(isAfter('13', '12')).toBe(true);
  });

  it('reads an id without its leading zeros, and all zeros as 0', () => {
    expect(canonicalId('007')).toBe('7');
    expect(canonicalId('0')).toBe('0');
    expect(canonicalId('000')).toBe('0');
  });
});
