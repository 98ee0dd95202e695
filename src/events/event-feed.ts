// One reader of the event log per app, shared by everything that follows the log live
// (SSE streams, waiters for an agent's reply): one read per commit for all of them,
// however many there are. It reads the events after its cursor whenever a commit wrote
// events (in this process; on PostgreSQL, in any instance, through LISTEN/NOTIFY) and
// once a second (writes of another process on the same SQLite file); the events a commit
// of this process recorded right after its cursor it takes from the store without reading
// them back (see take). It hands each
// event to its followers in log order: to those of the event's session, found in a map,
// and to those of every session. The reader runs only while someone follows.
import type { EventRecord, Store } from '../storage/store.js';

const POLL_MS = 1000;
const PAGE = 500;

export interface FeedFollower {
  /** Only this session's events (and those of no session: agent events); every event without it. */
  sessionId?: string;
  /** Called synchronously for each event, in log order. */
  see(event: EventRecord): void;
}

export interface EventFeed {
  /**
   * Resolves once the reader follows the log with `follower` among its followers: from
   * then on, the follower sees every event recorded later (and perhaps some earlier
   * ones, read meanwhile). Returns the function that stops following.
   */
  follow(follower: FeedFollower): Promise<() => void>;
  /** Followers now. */
  size(): number;
}

/** True when event id `id` comes after `cursor` (both decimal, without leading zeros). */
export function isAfter(id: string, cursor: string): boolean {
  return id.length === cursor.length ? id > cursor : id.length > cursor.length;
}

/** The decimal id without leading zeros ('007' → '7'), as the log writes it. */
export function canonicalId(id: string): string {
  return id.replace(/^0+(?=\d)/, '');
}

export function createEventFeed(store: Store, { pollMs = POLL_MS, onError = (_error: unknown) => {}, onSuccess = () => {} } = {}): EventFeed {
  const bySession = new Map<string, Set<FeedFollower>>();
  const ofEverySession = new Set<FeedFollower>();
  let count = 0;
  // Armed while someone follows; `generation` tells a read that it was disarmed meanwhile.
  let generation = 0;
  let armed = false;
  let arming: Promise<void> | undefined;
  let cursor = '0';
  let stop = () => {};
  let reading = false;
  let again = false;

  async function arm(): Promise<void> {
    cursor = (await store.lastEventId()) ?? '0';
    const unsubscribe = store.onEventsWritten((committed) => (committed ? take(committed) : void read()));
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

  function hand(event: EventRecord): void {
    if (event.sessionId === undefined) {
      for (const followers of bySession.values()) for (const follower of followers) follower.see(event);
    } else {
      const followers = bySession.get(event.sessionId);
      if (followers) for (const follower of followers) follower.see(event);
    }
    for (const follower of ofEverySession) follower.see(event);
  }

  /**
   * Events a commit of this process recorded, handed over by the store as the log holds
   * them: taken as they are when they follow the cursor at once (nothing can sit between),
   * read from the log otherwise (another process wrote meanwhile, or a read is under way).
   */
  function take(committed: EventRecord[]): void {
    if (reading || Number(committed[0]!.id) !== Number(cursor) + 1) return void read();
    for (const event of committed) {
      cursor = event.id;
      hand(event);
    }
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
          const events = await store.listEvents({ after: cursor, limit: PAGE });
          if (mine !== generation) return;
          for (const event of events) {
            cursor = event.id;
            hand(event);
          }
          if (events.length < PAGE) break;
        }
      } while (again && armed);
      onSuccess();
    } catch (error) {
      onError(error); // the next commit or poll reads again from the same cursor
    } finally {
      reading = false;
      // A read of a disarmed generation may have swallowed a wake-up meant for the armed one.
      if (again && armed) void read();
    }
  }

  function add(follower: FeedFollower): void {
    if (follower.sessionId === undefined) {
      ofEverySession.add(follower);
    } else {
      let followers = bySession.get(follower.sessionId);
      if (!followers) bySession.set(follower.sessionId, (followers = new Set()));
      followers.add(follower);
    }
    count += 1;
  }

  function remove(follower: FeedFollower): void {
    if (follower.sessionId === undefined) {
      if (!ofEverySession.delete(follower)) return;
    } else {
      const followers = bySession.get(follower.sessionId);
      if (!followers?.delete(follower)) return;
      if (followers.size === 0) bySession.delete(follower.sessionId);
    }
    count -= 1;
    if (count === 0) disarm();
  }

  return {
    async follow(follower) {
      while (!armed) {
        arming ??= arm().catch((error: unknown) => {
          arming = undefined; // the next follower tries again
          throw error;
        });
        await arming;
      }
      // From here on, synchronously: the reader is armed, and every later event reaches the follower.
      add(follower);
      return () => remove(follower);
    },
    size: () => count,
  };
}
