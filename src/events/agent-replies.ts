// Messages waiting for their agent's reply (sendSessionMessage with transport http or
// sse), without a poll per waiter: one reader of the event log serves every waiter. It
// reads the `message.created` events after its cursor whenever a commit of this process
// wrote events (and once a second, for writes of another process on the same database)
// and hands each one to the waiters of its session, found in a map by session id.
// The reader runs only while someone waits.
import type { EventRecord, Store } from '../storage/store.js';

const POLL_MS = 1000;
const PAGE = 500;

export interface ReplyWait {
  /**
   * Names the user's message once it is stored: the reply is the first message of the
   * session's agent recorded after it in the log.
   */
  expect(messageId: string): void;
  /** The user's message event; undefined if the wait ended before the log had it. */
  readonly own: Promise<EventRecord | undefined>;
  /** The agent's reply; undefined after the timeout or `release()`. */
  readonly reply: Promise<EventRecord | undefined>;
  /** Ends the wait (the client went away, or the write failed). */
  release(): void;
}

export interface AgentReplies {
  /**
   * Starts waiting on the session, before the user's message is written (so the reader
   * cannot have passed it). Resolves once the reader is following the log.
   */
  wait(sessionId: string, timeoutMs: number): Promise<ReplyWait>;
  /** Waits open. */
  size(): number;
  closeAll(): void;
}

interface Waiter {
  see(event: EventRecord): void;
  release(): void;
}

const isAgentMessage = (event: EventRecord) => (event.data as { isAgent?: unknown }).isAgent === true;
const messageIdOf = (event: EventRecord) => (event.data as { id?: unknown }).id;

export function createAgentReplies(store: Store, { pollMs = POLL_MS, onError = (_error: unknown) => {} } = {}): AgentReplies {
  const bySession = new Map<string, Set<Waiter>>();
  let count = 0;
  // The reader: armed while someone waits; `generation` tells a read that it was disarmed meanwhile.
  let generation = 0;
  let armed = false;
  let arming: Promise<void> | undefined;
  let cursor = '0';
  let stop = () => {};
  let reading = false;
  let again = false;

  async function arm(): Promise<void> {
    const last = await store.lastEventId();
    cursor = last ?? '0';
    const unsubscribe = store.onEventsWritten(() => void read());
    const poll = setInterval(() => void read(), pollMs);
    poll.unref();
    stop = () => {
      unsubscribe();
      clearInterval(poll);
    };
    armed = true;
  }

  function disarm(): void {
    if (!armed) return;
    stop();
    armed = false;
    arming = undefined;
    generation += 1;
  }

  async function read(): Promise<void> {
    if (reading) {
      again = true; // one more pass once this one ends: the log grew meanwhile
      return;
    }
    reading = true;
    const mine = generation;
    try {
      do {
        again = false;
        for (;;) {
          const events = await store.listEvents({ after: cursor, types: ['message.created'], limit: PAGE });
          if (mine !== generation) return;
          for (const event of events) {
            cursor = event.id;
            const waiters = event.sessionId === undefined ? undefined : bySession.get(event.sessionId);
            if (waiters) for (const waiter of [...waiters]) waiter.see(event);
          }
          if (events.length < PAGE) break;
        }
      } while (again && armed);
    } catch (error) {
      onError(error); // the next commit or poll reads again from the same cursor
    } finally {
      reading = false;
    }
  }

  function add(sessionId: string, waiter: Waiter): void {
    let waiters = bySession.get(sessionId);
    if (!waiters) bySession.set(sessionId, (waiters = new Set()));
    waiters.add(waiter);
    count += 1;
  }

  function remove(sessionId: string, waiter: Waiter): void {
    const waiters = bySession.get(sessionId);
    if (!waiters?.delete(waiter)) return;
    if (waiters.size === 0) bySession.delete(sessionId);
    count -= 1;
    if (count === 0) disarm();
  }

  return {
    async wait(sessionId, timeoutMs) {
      while (!armed) {
        arming ??= arm();
        await arming;
      }
      // From here on, synchronously: the reader is armed and its cursor is before the user's message.
      let ownId: string | undefined;
      let own: EventRecord | undefined;
      let settled = false;
      const early: EventRecord[] = []; // events seen before the user's message was named
      let resolveOwn!: (event: EventRecord | undefined) => void;
      let resolveReply!: (event: EventRecord | undefined) => void;
      const ownPromise = new Promise<EventRecord | undefined>((resolve) => (resolveOwn = resolve));
      const replyPromise = new Promise<EventRecord | undefined>((resolve) => (resolveReply = resolve));

      const settle = (reply: EventRecord | undefined) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        remove(sessionId, waiter);
        resolveOwn(own);
        resolveReply(reply);
      };
      const waiter: Waiter = {
        see(event) {
          if (settled) return;
          if (ownId === undefined) {
            early.push(event);
          } else if (!own) {
            if (messageIdOf(event) === ownId) {
              own = event;
              resolveOwn(event);
            }
          } else if (isAgentMessage(event)) {
            settle(event);
          }
        },
        release: () => settle(undefined),
      };
      const timer = setTimeout(() => settle(undefined), timeoutMs);
      add(sessionId, waiter);

      return {
        expect(messageId) {
          ownId = messageId;
          for (const event of early.splice(0)) waiter.see(event);
        },
        own: ownPromise,
        reply: replyPromise,
        release: waiter.release,
      };
    },
    size: () => count,
    closeAll() {
      for (const waiters of [...bySession.values()]) for (const waiter of [...waiters]) waiter.release();
    },
  };
}
