// Server-Sent Events from the event log. A stream keeps a cursor (the last id it sent).
// It first reads the log itself from where the client resumes (the replay), while it
// already follows the app's shared reader (event-feed.ts), which queues the live events
// meanwhile; then it sends the queued events after its cursor and goes on live: nothing
// is missed (every event the feed has not handed over was committed before the replay's
// reads) and nothing repeated (the cursor). A stream whose queue outgrows `queueLimit`
// events or `queueCharsLimit` characters of their data (a slow reader, a burst larger than
// its socket takes at once, or a long replay under many writes) drops the queue and reads the log
// itself again from its cursor, as at the start: a slow reader costs the others nothing,
// and its memory stays bounded.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { DEFAULTS } from '../defaults.js';
import { ApiError } from '../errors.js';
import { SECURITY_HEADERS } from '../http/security-headers.js';
import type { EventQuery, EventRecord, Store } from '../storage/store.js';
import { dataJson, eventJson } from './event-records.js';
import { canonicalId, type EventFeed, isAfter } from './event-feed.js';

export const KEEP_ALIVE_MS = 15_000;
/** A stream opened with an API key ends within this long of the key's revocation. */
export const REAUTHORIZE_MS = 1000;
/**
 * Events a stream holds for its client before it falls back to reading the log itself. At
 * 1,000, a burst of due warnings (batches of up to 1,000 events, while the socket waited to
 * drain) overflowed it in about half the runs, and the stream then read back from the log,
 * 500 events a task, what it had dropped: a third more CPU and 20-30 ms tasks.
 */
const QUEUE_LIMIT = 10_000;
/** And characters of their data (the events are shared by the streams, but one held only here is this stream's memory). */
const QUEUE_CHARS_LIMIT = 8 * 1024 * 1024;
/** Events a read of the log takes at most… */
const PAGE = 500;
/**
 * …and about how many characters: a page is sent whole before the stream waits for its
 * socket, so a page is the memory a replay holds. 500 events of messages at their
 * documented maxima (about 62,000 characters each) were 31 M characters a replay, and 50
 * replays at once ran a 4 GB heap out (X19).
 */
const PAGE_CHARS = 1024 * 1024;
/** A stream's last comment when the server ends it. */
const STREAM_FAILED = 'the stream failed on the server (logged there); reconnect with Last-Event-ID';
const SERVER_CLOSING = 'the server is shutting down; reconnect with Last-Event-ID';
export const KEY_REVOKED = 'the API key that opened this stream was revoked';
/** About how many characters of frames a stream writes as one chunk. */
const CHUNK_CHARS = 32 * 1024;

export interface StreamOptions {
  /** The filters of the stream (the cursor and page size are its own). */
  filter: Omit<EventQuery, 'after' | 'limit'>;
  /** Where to start: after this event id. */
  after: string;
  /**
   * Read before each catch-up: true when nothing can follow the events recorded so far
   * (the session expired or ended); the stream then sends them and closes.
   */
  finished?: () => Promise<boolean>;
  /** Events after which `finished` may have become true (they need not match the filter). */
  closesOn?: (event: EventRecord) => boolean;
}

/** The open streams of an app, so that closing the app ends them. */
export interface EventStreams {
  open(request: FastifyRequest, reply: FastifyReply, store: Store, options: StreamOptions): void;
  closeAll(): void;
  size(): number;
}

// One text per event, however many streams send it: the feed hands an event to every
// stream before the next, so the last event's text is the one to keep. (A WeakMap of every
// event's text cost a map entry per event, and its garbage: in a burst of 10^5 warnings to
// one stream, nothing was ever read back from it.)
let lastFramed: EventRecord | undefined;
let lastFrame = '';

export function frame(event: EventRecord): string {
  if (event !== lastFramed) {
    lastFrame = `id: ${event.id}\nevent: ${event.type}\ndata: ${eventJson(event)}\n\n`;
    lastFramed = event;
  }
  return lastFrame;
}

/** The filters of an EventQuery, applied to one event (as the store's read applies them). */
export function matches(filter: StreamOptions['filter'], event: EventRecord): boolean {
  return (
    (filter.sessionId === undefined || event.sessionId === filter.sessionId) &&
    (filter.agentId === undefined || event.agentId === filter.agentId) &&
    (filter.agentIds === undefined || filter.agentIds.includes(event.agentId)) &&
    (filter.userId === undefined || event.userId === filter.userId) &&
    (filter.types === undefined || filter.types.includes(event.type))
  );
}

/**
 * Takes the reply over from Fastify and opens a stream of Server-Sent Events on it;
 * returns the raw response. A hijacked reply skips the onSend hooks, so the headers
 * they add (security) are added here, with those the hooks before set (CORS, rate limit, request id).
 */
export function startStream(reply: FastifyReply, status = 200): FastifyReply['raw'] {
  const raw = reply.raw;
  const earlier = reply.getHeaders() as Record<string, string | number | string[]>;
  reply.hijack();
  raw.writeHead(status, {
    ...earlier,
    ...SECURITY_HEADERS,
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  raw.write(': stream open\n\n');
  return raw;
}

export interface EventStreamsOptions {
  keepAliveMs?: number;
  /** How often a stream opened with an API key checks that the key is not revoked. */
  reauthorizeMs?: number;
  queueLimit?: number;
  queueCharsLimit?: number;
  /** Streams open at once (EVENT_STREAMS_MAX); one more is refused 503 until one closes. Each may hold up to queueCharsLimit for a slow reader. */
  maxOpen?: number;
  /**
   * Streams one API key bound to agents keeps open at once (EVENT_STREAMS_PER_KEY_MAX); one
   * more is refused 429, so that one tenant cannot take the instance's every stream.
   */
  maxOpenPerKey?: number;
  /** The app's shared reader of the event log: every stream's live events. */
  feed: EventFeed;
}

/**
 * Where a stream resumes: after `given` (Last-Event-ID), or after `otherwise` without one.
 * An id beyond the newest event (the client's from a database since recreated) resumes
 * from the newest: otherwise the stream would send nothing until the log reached it, and
 * then skip everything recorded before.
 */
export async function resumePoint(store: Store, given: string | undefined, otherwise: 'start' | 'now'): Promise<string> {
  if (given === undefined && otherwise === 'start') return '0';
  const newest = (await store.lastEventId()) ?? '0';
  return given === undefined || isAfter(canonicalId(given), newest) ? newest : given;
}

export function createEventStreams({
  keepAliveMs = KEEP_ALIVE_MS,
  reauthorizeMs = REAUTHORIZE_MS,
  queueLimit = QUEUE_LIMIT,
  queueCharsLimit = QUEUE_CHARS_LIMIT,
  maxOpen = DEFAULTS.eventStreamsMax,
  maxOpenPerKey = DEFAULTS.eventStreamsPerKeyMax,
  feed,
}: EventStreamsOptions): EventStreams {
  const open = new Set<(why?: string) => void>();
  /** Streams open by each key bound to agents. */
  const openByKey = new Map<string, number>();
  const countOf = (key: string, change: 1 | -1) => {
    const count = (openByKey.get(key) ?? 0) + change;
    if (count === 0) openByKey.delete(key);
    else openByKey.set(key, count);
  };

  return {
    open(request, reply, store, { filter, after, finished, closesOn }) {
      // The client left while the handler read the store: its 'close' has come and gone.
      if (reply.raw.destroyed) return void reply.hijack();
      if (open.size >= maxOpen) throw new ApiError('SERVICE_UNAVAILABLE', `the most event streams this server keeps open (EVENT_STREAMS_MAX=${maxOpen}) are open; retry later`);
      const holder = request.principal?.admin === false ? request.principal.id : undefined;
      if (holder !== undefined && (openByKey.get(holder) ?? 0) >= maxOpenPerKey) {
        throw new ApiError('RATE_LIMITED', `this API key has the most event streams a key may keep open (EVENT_STREAMS_PER_KEY_MAX=${maxOpenPerKey}) open; close one, or retry when one closes`);
      }
      const raw = startStream(reply);
      // HEAD: the stream's status and headers, and no stream.
      if (request.method === 'HEAD') return void raw.end();

      let cursor = canonicalId(after);
      let closed = false;
      let leave = () => {};
      // The stream's work: `behind` asks for a read of the log from the cursor (the replay,
      // or after the queue overflowed); `queue` holds live events while a read or a full
      // socket is under way. Only one `pump` runs at a time.
      let behind = true;
      let pumping = true; // until the stream follows the feed
      const queue: EventRecord[] = [];
      let queuedChars = 0;
      const dropQueue = () => {
        queue.length = 0;
        queuedChars = 0;
      };

      const keepAlive = setInterval(() => raw.write(': keep-alive\n\n'), keepAliveMs);
      // The key that opened the stream is checked again every REAUTHORIZE_MS: revoked, it ends
      // the stream. One check at a time: a store that does not answer (an outage) is not
      // asked again and again by every stream.
      const stillAuthorized = request.stillAuthorized;
      let checking = false;
      const recheck = () => {
        if (checking || !stillAuthorized) return;
        checking = true;
        void stillAuthorized()
          .then((yes) => yes || close(KEY_REVOKED), () => undefined)
          .finally(() => (checking = false));
      };
      const authorized = stillAuthorized && setInterval(recheck, reauthorizeMs);
      /** Ends the stream; `why`, when given, goes to the client as its last comment. */
      const close = (why?: string) => {
        if (closed) return;
        closed = true;
        if (why !== undefined && !raw.destroyed) raw.write(`: ${why}\n\n`);
        clearInterval(keepAlive);
        clearInterval(authorized ?? undefined);
        leave();
        dropQueue();
        open.delete(close);
        if (holder !== undefined) countOf(holder, -1);
        // A client already gone: ending the response would emit 'finish' on an HTTP/1.0 connection
        // (nginx's default proxy_pass), and Fastify would count and log it a second time.
        if (!raw.destroyed) raw.end();
      };
      open.add(close);
      if (holder !== undefined) countOf(holder, +1);
      request.raw.on('close', () => close());
      raw.on('close', () => close());
      raw.on('error', () => close());

      // Whichever comes first; the other listener goes too (a slow reader drains many times).
      const drained = () =>
        new Promise<void>((resolve) => {
          const done = () => {
            raw.off('drain', done);
            raw.off('close', done);
            resolve();
          };
          raw.once('drain', done);
          raw.once('close', done);
        });

      // Frames go out in a few writes per batch (a page of the log, the events the feed
      // hands over in one read): `send` adds the frame, `flush` writes what was added. A
      // batch's text is cut into chunks of about CHUNK_CHARS: one string of a whole batch
      // (~230 KB for a batch of 350 warnings) made the write cost about twice as much CPU a
      // frame as chunks do (a string that large is flattened from its hundreds of parts,
      // outside the young generation). Not corked: on Node 22 a response whose corked writes
      // said "full" never emits 'drain' once uncorked (its socket never was), and the stream
      // waited for ever after its first full page.
      let pending = '';
      const chunks: string[] = [];
      let flushing = false;
      // Every path sends through here, and nothing at or before the cursor goes out: a client
      // never gets an event twice, whichever way (the log's read, the feed) it came.
      const send = (event: EventRecord): void => {
        if (!isAfter(event.id, cursor)) return;
        cursor = event.id;
        pending += frame(event);
        if (pending.length >= CHUNK_CHARS) {
          chunks.push(pending);
          pending = '';
        }
      };
      /** Writes the frames sent; false when the socket is full (wait for `drained`). */
      const flush = (): boolean => {
        if (closed) return true;
        if (pending !== '') chunks.push(pending);
        pending = '';
        if (chunks.length === 0) return true;
        let room = true;
        for (const chunk of chunks) room = raw.write(chunk);
        chunks.length = 0;
        return room;
      };
      const flushSoon = () => {
        if (flushing) return;
        flushing = true;
        queueMicrotask(() => {
          flushing = false;
          if (!flush() && !pumping) void pump(true);
        });
      };

      async function readLog(): Promise<void> {
        // Read first: every event it depends on is in the log before it says so.
        const done = finished ? await finished() : false;
        for (;;) {
          const events = await store.listEvents({ ...filter, after: cursor, limit: PAGE, maxChars: PAGE_CHARS });
          if (closed) return;
          for (const event of events) send(event);
          const room = flush();
          if (!room) await drained();
          // An empty page ends it whatever the store says: the cursor would not move.
          if (events.length === 0 || (events.length < PAGE && !events.cutShort)) break;
          // A reader that keeps up never fills its socket: the next page waits its turn behind other requests.
          if (room) {
            await new Promise(setImmediate);
            if (closed) return;
          }
        }
        if (done) close();
      }

      async function pump(drainFirst = false): Promise<void> {
        pumping = true;
        try {
          if (drainFirst) await drained();
          for (;;) {
            if (closed) return;
            if (behind) {
              // Every queued event was committed before this read starts: the read covers it.
              behind = false;
              dropQueue();
              await readLog();
              continue;
            }
            if (queue.length === 0) return;
            const queued = queue.splice(0);
            queuedChars = 0;
            for (const event of queued) send(event);
            if (!flush()) await drained();
          }
        } catch (error) {
          request.log.error({ err: error }, 'event stream failed');
          close(STREAM_FAILED);
        } finally {
          pumping = false;
        }
      }

      const follower = {
        ...(filter.sessionId === undefined ? {} : { sessionId: filter.sessionId }),
        see(event: EventRecord) {
          if (closed) return;
          if (closesOn?.(event)) {
            behind = true; // the read that follows sends it, and asks `finished`
            if (!pumping) void pump();
            return;
          }
          if (!matches(filter, event)) return;
          if (pumping || behind) {
            queue.push(event);
            queuedChars += dataJson(event).length;
            if (queue.length > queueLimit || queuedChars > queueCharsLimit) {
              dropQueue();
              behind = true;
            }
            return;
          }
          send(event);
          flushSoon();
        },
      };
      feed
        .follow(follower)
        .then(
          (stop) => {
            leave = stop;
            if (closed) return stop();
            void pump();
          },
          (error: unknown) => {
            request.log.error({ err: error }, 'event stream failed');
            close(STREAM_FAILED);
          },
        );
    },
    closeAll() {
      for (const close of [...open]) close(SERVER_CLOSING);
    },
    size: () => open.size,
  };
}
