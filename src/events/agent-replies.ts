// Messages waiting for their agent's reply (sendSessionMessage with transport http or
// sse), without a poll per waiter: each waiter follows the app's shared reader of the
// event log (event-feed.ts) for its own session's `message.created` events.
import { ApiError } from '../errors.js';
import type { EventRecord } from '../storage/store.js';
import type { EventFeed } from './event-feed.js';

export interface ReplyWait {
  /**
   * Names the user's message once it is stored: the reply is the first message of the
   * session's agent recorded after it in the log, unless that message names another one
   * the wait knows of as the one it answers (`metadata.inReplyTo`).
   */
  expect(messageId: string): void;
  /** The user's message event; undefined if the wait ended before the log had it. */
  readonly own: Promise<EventRecord | undefined>;
  /** The agent's reply; undefined after the timeout or `release()`. */
  readonly reply: Promise<EventRecord | undefined>;
  /** Ends the wait (the client went away, or the write failed). */
  release(): void;
  /** Why the wait ended without a reply: undefined while it waits, or when the reply came. */
  readonly endedBy: WaitEnd | undefined;
}

/**
 * The timeout ran out; `release()` was called; the app is closing (`closeAll`); the
 * session ended (or went with its agent) or expired: no reply can come.
 */
export type WaitEnd = 'timeout' | 'released' | 'shutdown' | 'ended' | 'expired';

export interface AgentReplies {
  /**
   * Starts waiting on the session, before the user's message is written (so the reader
   * cannot have passed it). Resolves once the reader is following the log. Refused (429)
   * when the session has `maxOpenPerSession` waits open here already.
   */
  wait(sessionId: string, timeoutMs: number): Promise<ReplyWait>;
  /** Waits open. */
  size(): number;
  closeAll(): void;
}

/** Waits one session keeps open at once at an instance; one more is refused 429 before its message is stored. */
export const MAX_OPEN_PER_SESSION = 100;

const isAgentMessage = (event: EventRecord) => (event.data as { isAgent?: unknown }).isAgent === true;
const messageIdOf = (event: EventRecord) => (event.data as { id?: unknown }).id;

/**
 * What a session's waits at this instance share while one of them is open, so that one
 * wait costs the same however many the session has had (a copy per wait of what the
 * others knew made many waits in one session cost their square, in time and memory).
 */
interface SessionWaits {
  open: number;
  /** Counts sightings and answers, in the order they happened. */
  tick: number;
  /** The session's messages, by when a wait here first saw them (the log's order). */
  sightings: Map<string, number>;
  /** The waited-on messages answered, by when. */
  answered: Map<string, number>;
  /** When each wait joined, in that order (nondecreasing), and whether it has left; `head`: the oldest still open. */
  starts: Array<{ at: number; left: boolean }>;
  head: number;
}

/**
 * Waits on `reader`, the app's one reader of the event log. An agent message naming
 * (`metadata.inReplyTo`) a message the wait knows to be another's is not its reply: one
 * recorded after its own, one waited on here whose wait is open or ended without a reply
 * (the last `endedWaitsKept` of those), or one whose wait was answered while this one was
 * open. With two waits in one session (a user sending twice, two tabs), an answer to one
 * is not the other's; nor is a late answer to a message whose wait gave up (504) the
 * answer to the message sent after it. One naming its own message, or nothing, or an id
 * the wait does not know (elizaOS's agents name a UUID derived from the message's, not the
 * message's id), or a message answered before the wait began (an agent naming its
 * thread's first message in every reply), is. Each event of a session is seen by each of
 * its open waits, so a session keeps at most `maxOpenPerSession` open at once: a
 * conversation has a few, and a client sending thousands at once in one session made every
 * message cost thousands.
 */
export function createAgentReplies(
  reader: EventFeed,
  { endedWaitsKept = 10_000, maxOpenPerSession = MAX_OPEN_PER_SESSION }: { endedWaitsKept?: number; maxOpenPerSession?: number } = {},
): AgentReplies {
  const open = new Set<() => void>();
  /** Per session, the user's messages waited on at this instance: open waits', and the last `endedWaitsKept` unanswered ones'. */
  const waitedOn = new Map<string, Set<string>>();
  /** The messages of the waits that ended without a reply (with their sessions), oldest first. */
  const unanswered = new Map<string, string>();
  /** Per session with a wait open. */
  const shared = new Map<string, SessionWaits>();

  function remember(sessionId: string, messageId: string): void {
    const messages = waitedOn.get(sessionId) ?? new Set<string>();
    waitedOn.set(sessionId, messages.add(messageId));
  }
  function forget(sessionId: string, messageId: string): void {
    const messages = waitedOn.get(sessionId);
    if (messages?.delete(messageId) && messages.size === 0) waitedOn.delete(sessionId);
  }
  /** A wait ended: its message is forgotten once answered, else kept among the last `endedWaitsKept` unanswered. */
  function ended(sessionId: string, messageId: string, answered: boolean): void {
    if (answered) return forget(sessionId, messageId);
    unanswered.set(messageId, sessionId);
    if (unanswered.size <= endedWaitsKept) return;
    const [oldest, itsSession] = unanswered.entries().next().value!;
    unanswered.delete(oldest);
    forget(itsSession, oldest);
  }
  function join(sessionId: string): SessionWaits {
    let session = shared.get(sessionId);
    if (!session) shared.set(sessionId, (session = { open: 0, tick: 0, sightings: new Map(), answered: new Map(), starts: [], head: 0 }));
    session.open += 1;
    session.starts.push({ at: session.tick, left: false });
    return session;
  }
  /**
   * A wait left: the session's memory goes once its last wait is gone, and otherwise what
   * was seen or answered before the oldest open wait joined (no open wait can tell such an
   * entry from an absent one: its own message, and its start, come after).
   */
  function leaveSession(sessionId: string, session: SessionWaits, start: { left: boolean }): void {
    start.left = true;
    if ((session.open -= 1) === 0) return void shared.delete(sessionId);
    const { starts } = session;
    while (starts[session.head]!.left) session.head += 1;
    const floor = starts[session.head]!.at;
    for (const map of [session.sightings, session.answered]) {
      for (const [id, at] of map) {
        if (at >= floor) break;
        map.delete(id);
      }
    }
    if (session.head > 1024 && session.head * 2 > starts.length) session.head = (starts.splice(0, session.head), 0);
  }

  return {
    async wait(sessionId, timeoutMs) {
      if ((shared.get(sessionId)?.open ?? 0) >= maxOpenPerSession) {
        throw new ApiError('RATE_LIMITED', `session ${sessionId} has ${maxOpenPerSession} messages waiting for the agent's reply at this server, the most it keeps; send when one is answered, or without transport`);
      }
      const session = join(sessionId);
      const start = session.starts.at(-1)!;
      const startedAt = start.at;
      let ownId: string | undefined;
      let own: EventRecord | undefined;
      let settled = false;
      let endedBy: WaitEnd | undefined;
      const early: EventRecord[] = []; // events seen before the user's message was named
      let resolveOwn!: (event: EventRecord | undefined) => void;
      let resolveReply!: (event: EventRecord | undefined) => void;
      const ownPromise = new Promise<EventRecord | undefined>((resolve) => (resolveOwn = resolve));
      const replyPromise = new Promise<EventRecord | undefined>((resolve) => (resolveReply = resolve));

      const namesAnothers = (named: string) =>
        waitedOn.get(sessionId)?.has(named) ||
        (session.sightings.get(named) ?? -1) > session.sightings.get(ownId!)! ||
        (session.answered.get(named) ?? -1) >= startedAt;
      const answers = (event: EventRecord) => {
        const named = (event.data as { metadata?: { inReplyTo?: unknown } }).metadata?.inReplyTo;
        return named === ownId || typeof named !== 'string' || !namesAnothers(named);
      };

      let leave = () => {};
      let timer: NodeJS.Timeout | undefined;
      const settle = (reply: EventRecord | undefined, why?: WaitEnd) => {
        if (settled) return;
        settled = true;
        endedBy = why;
        clearTimeout(timer);
        if (ownId !== undefined) {
          if (reply) session.answered.set(ownId, session.tick++);
          ended(sessionId, ownId, reply !== undefined);
        }
        leave();
        leaveSession(sessionId, session, start);
        open.delete(shutDown);
        resolveOwn(own);
        resolveReply(reply);
      };
      const release = () => settle(undefined, 'released');
      const shutDown = () => settle(undefined, 'shutdown');
      const waiter = {
        sessionId,
        see(event: EventRecord) {
          if (settled) return;
          const ends = event.type === 'session.ended' || event.type === 'session.expired';
          if (!ends && event.type !== 'message.created') return;
          if (!ends) {
            const id = String(messageIdOf(event));
            if (!session.sightings.has(id)) session.sightings.set(id, session.tick++);
          }
          // Kept in order until the user's message is named: an end seen first must not hide it.
          if (ownId === undefined) {
            early.push(event);
          } else if (ends) {
            settle(undefined, event.type === 'session.ended' ? 'ended' : 'expired');
          } else if (!own) {
            if (messageIdOf(event) === ownId) {
              own = event;
              resolveOwn(event);
            }
          } else if (isAgentMessage(event) && answers(event)) {
            settle(event);
          }
        },
      };
      // Followed before the user's message is written, so the reader cannot have passed it.
      try {
        leave = await reader.follow(waiter);
      } catch (error) {
        leaveSession(sessionId, session, start);
        throw error;
      }
      open.add(shutDown);
      timer = setTimeout(() => settle(undefined, 'timeout'), timeoutMs);

      return {
        expect(messageId) {
          ownId = messageId;
          remember(sessionId, messageId);
          if (settled) ended(sessionId, messageId, false);
          for (const event of early.splice(0)) waiter.see(event);
        },
        own: ownPromise,
        reply: replyPromise,
        release,
        get endedBy() {
          return endedBy;
        },
      };
    },
    size: () => open.size,
    closeAll() {
      for (const shutDown of [...open]) shutDown();
    },
  };
}
