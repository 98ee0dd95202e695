// Server-Sent Events from the event log. A stream keeps a cursor (the last id it sent)
// and, whenever the log may have grown, sends every matching event after it, read from
// the log itself: replay and live are the same read, so nothing is missed or repeated
// however writes interleave. "May have grown": a commit in this process wrote events,
// or a second passed (writes from another process on the same database).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../errors.js';
import { SECURITY_HEADERS } from '../http/security-headers.js';
import type { EventQuery, EventRecord, Store } from '../storage/store.js';
import { eventView } from './event-records.js';

export const KEEP_ALIVE_MS = 15_000;
const POLL_MS = 1000;
const PAGE = 500;

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
}

/** The open streams of an app, so that closing the app ends them. */
export interface EventStreams {
  open(request: FastifyRequest, reply: FastifyReply, store: Store, options: StreamOptions): void;
  closeAll(): void;
  size(): number;
}

/**
 * `text/event-stream` is a response type only. Registered as a request "parser" that
 * refuses it (415, as any body that is not JSON), so the router knows the type the spec names.
 */
export function refuseEventStreamBodies(app: FastifyInstance): void {
  app.addContentTypeParser('text/event-stream', (request, _payload, done) =>
    done(new ApiError('UNSUPPORTED_MEDIA_TYPE', 'content-type text/event-stream is not supported; send application/json'), undefined),
  );
}

export function frame(event: EventRecord): string {
  return `id: ${event.id}\nevent: ${event.type}\ndata: ${JSON.stringify(eventView(event))}\n\n`;
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
    'x-content-type-options': 'nosniff',
  });
  raw.write(': stream open\n\n');
  return raw;
}

export function createEventStreams({ keepAliveMs = KEEP_ALIVE_MS, pollMs = POLL_MS } = {}): EventStreams {
  const open = new Set<() => void>();

  return {
    open(request, reply, store, { filter, after, finished }) {
      const raw = startStream(reply);

      let cursor = after;
      let closed = false;
      let catchingUp = false;
      let again = false;

      const keepAlive = setInterval(() => raw.write(': keep-alive\n\n'), keepAliveMs);
      const poll = setInterval(() => void catchUp(), pollMs);
      const unsubscribe = store.onEventsWritten(() => void catchUp());
      const close = () => {
        if (closed) return;
        closed = true;
        clearInterval(keepAlive);
        clearInterval(poll);
        unsubscribe();
        open.delete(close);
        raw.end();
      };
      open.add(close);
      request.raw.on('close', close);
      raw.on('error', close);

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

      async function catchUp(): Promise<void> {
        if (catchingUp) {
          again = true; // one more pass once this one ends: the log grew meanwhile
          return;
        }
        catchingUp = true;
        try {
          do {
            again = false;
            // Read first: every event it depends on is in the log before it says so.
            const done = finished ? await finished() : false;
            for (;;) {
              const events = await store.listEvents({ ...filter, after: cursor, limit: PAGE });
              for (const event of events) {
                if (closed) return;
                cursor = event.id;
                if (!raw.write(frame(event))) await drained();
              }
              if (events.length < PAGE) break;
            }
            if (done) return close();
          } while (again && !closed);
        } catch (error) {
          request.log.error({ err: error }, 'event stream failed');
          close();
        } finally {
          catchingUp = false;
        }
      }

      void catchUp();
    },
    closeAll() {
      for (const close of [...open]) close();
    },
    size: () => open.size,
  };
}
