// How the HTTP server treats connections: timeouts, Node-level errors in the envelope,
// and a shutdown that finishes what is in flight and keeps no idle socket open.
import type { Server } from 'node:http';
import type { FastifyHttpOptions, FastifyInstance } from 'fastify';
import { DEFAULTS } from '../defaults.js';
import { ApiError } from '../errors.js';
import { type OnSocketAnswer, clientErrorHandler, connectHandler, headerLines } from './client-errors.js';
import { afterAnswerBefore } from './pipelining.js';

export interface HttpTimeouts {
  /** The request line, headers and body must all arrive within this (slow bodies get 408). */
  requestTimeoutMs: number;
  /** The request line and headers must arrive within this. */
  headersTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: number;
}

/** Seconds a client is asked to wait (`Retry-After`) after a 503. */
export const RETRY_AFTER_SECONDS = 1;

/** `onSocketAnswer`: told of each answer Node gives before a request is read. */
export function serverOptions(timeouts: HttpTimeouts = DEFAULTS.http, onSocketAnswer: OnSocketAnswer = () => undefined): FastifyHttpOptions<Server> {
  return {
    requestTimeout: timeouts.requestTimeoutMs,
    keepAliveTimeout: timeouts.keepAliveTimeoutMs,
    http: {
      // Node refuses a headers timeout longer than the request timeout.
      headersTimeout: Math.min(timeouts.headersTimeoutMs, timeouts.requestTimeoutMs),
      // How often Node looks for requests over their timeouts (its default is 30 s).
      connectionsCheckingInterval: Math.min(1000, timeouts.requestTimeoutMs),
      // Checked in onRequest instead, to answer in the envelope (Node's 400 has no body).
      requireHostHeader: false,
    },
    clientErrorHandler: clientErrorHandler(onSocketAnswer),
    // On close: idle keep-alive sockets are closed at once; see installServerLifecycle.
    forceCloseConnections: 'idle',
    return503OnClosing: false,
  };
}

/** RFC 3986's host (an IP literal in brackets, or a name or IPv4 address) and an optional port; empty is allowed (HTTP/1.0). */
const HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]*)(?::\d*)?$/;

export function installServerLifecycle(app: FastifyInstance, onSocketAnswer: OnSocketAnswer): void {
  app.server.on('connect', connectHandler(onSocketAnswer));
  // An Expect other than 100-continue: Node would answer a bare 417 outside the envelope.
  // RFC 9110 (10.1.1) lets a server ignore an expectation it does not know: the request is served.
  app.server.on('checkExpectation', (request, response) => app.server.emit('request', request, response));
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });

  // Callback-style hooks: they run on every request, and skip the promise an async hook costs.
  app.addHook('onRequest', (request, reply, done) => {
    // Node's parser takes a line without a version (HTTP/0.9) or with HTTP/2.0 and answers it as HTTP/1.1.
    if (request.raw.httpVersionMajor !== 1) return done(new ApiError('INVALID_REQUEST', `the request line must end in HTTP/1.1 or HTTP/1.0, not HTTP/${request.raw.httpVersion}`));
    if (request.raw.httpVersion === '1.1' && request.headers.host === undefined) {
      return done(new ApiError('INVALID_REQUEST', 'headers/host is required (HTTP/1.1)'));
    }
    // Node keeps the first of several Host lines; RFC 9112 (3.2) requires a 400.
    if (headerLines(request.raw.rawHeaders, 'host') > 1) return done(new ApiError('INVALID_REQUEST', 'headers/host must be sent once'));
    // Node keeps the first of several Content-Type lines too; an intermediary may read the last.
    if (headerLines(request.raw.rawHeaders, 'content-type') > 1) return done(new ApiError('INVALID_REQUEST', 'headers/content-type must be sent once'));
    // RFC 9112 (3.2): a Host that is no host[:port] (a space, user@) is a 400 too.
    const host = request.headers.host;
    if (host !== undefined && !HOST.test(host)) return done(new ApiError('INVALID_REQUEST', 'headers/host must be a host name or address, with an optional :port'));
    // A request that arrives on an open connection while the server stops. Health still
    // answers for itself: the store is open until the requests in flight are done.
    // `request.routeOptions` builds an object on each read: only read while stopping.
    if (closing && (request.routeOptions.schema as { operationId?: string } | undefined)?.operationId !== 'getSessionsHealth') {
      return done(new ApiError('SERVICE_UNAVAILABLE', 'the server is shutting down; retry on a new connection'));
    }
    afterAnswerBefore(request, reply, done);
  });

  // While stopping, every answer closes its connection: a keep-alive socket that was
  // busy when the close began would otherwise stay open until its keep-alive timeout.
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (closing) reply.header('connection', 'close');
    done(null, payload);
  });
}
