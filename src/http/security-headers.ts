// Headers for a JSON API that no browser should render, frame, sniff or cache, and
// CORS (off unless CORS_ORIGINS names the origins allowed to call from a browser).
import cors from '@fastify/cors';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../errors.js';
import { clip } from './limits.js';

export const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-store',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};

/** The /docs page and its script: a browser must run them, so no `default-src 'none'`; nothing may frame them. */
const PAGE_HEADERS = { ...SECURITY_HEADERS, 'content-security-policy': "frame-ancestors 'none'" };

const PAGE_TYPES = /^(text\/html|text\/css|text\/javascript|application\/javascript)/;

export function installSecurityHeaders(app: FastifyInstance): void {
  app.addHook('onSend', (_request, reply, payload, done) => {
    reply.headers(PAGE_TYPES.test(String(reply.getHeader('content-type') ?? '')) ? PAGE_HEADERS : SECURITY_HEADERS);
    done(null, payload);
  });
}

const EXPOSED_HEADERS = ['idempotent-replayed', 'retry-after', 'ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset', 'www-authenticate', 'x-request-id'];

/**
 * The CORS headers @fastify/cors gives an allowed origin's request, for the answers no
 * hook sees (the router's refusals): without them a browser shows its caller a CORS
 * failure instead of the envelope. Undefined for an origin not allowed (or CORS off).
 */
export function corsHeadersFor(origins: readonly string[]): (origin: string | undefined) => Record<string, string> | undefined {
  const exposed = { 'access-control-expose-headers': EXPOSED_HEADERS.join(', ') };
  if (origins.includes('*')) return () => ({ 'access-control-allow-origin': '*', ...exposed });
  return (origin) => (origin !== undefined && origins.includes(origin) ? { 'access-control-allow-origin': origin, vary: 'Origin', ...exposed } : undefined);
}

const CORS_METHODS = ['GET', 'HEAD', 'POST', 'PATCH', 'DELETE'];
// X-Request-Id: a browser app's own id for its logs; Last-Event-ID: an event stream resumed by fetch.
const CORS_ALLOWED_HEADERS = ['content-type', 'x-api-key', 'authorization', 'idempotency-key', 'x-request-id', 'last-event-id'];
const CORS_MAX_AGE_SECONDS = 600;

/** A CORS preflight: an OPTIONS with Origin and Access-Control-Request-Method. */
export const isPreflight = (request: FastifyRequest) =>
  request.method === 'OPTIONS' && request.headers.origin !== undefined && request.headers['access-control-request-method'] !== undefined;

/** What a preflight from an allowed origin is answered with beside that origin's headers (as @fastify/cors answers it). */
export const PREFLIGHT_HEADERS = {
  'access-control-allow-methods': CORS_METHODS.join(', '),
  'access-control-allow-headers': CORS_ALLOWED_HEADERS.join(', '),
  'access-control-max-age': String(CORS_MAX_AGE_SECONDS),
};

export function installCors(app: FastifyInstance, { origins }: { origins: readonly string[] }): void {
  if (origins.length === 0) return;
  // An OPTIONS that is no preflight finds no route, as with CORS off (@fastify/cors would
  // answer it a text/plain 400, outside the envelope).
  app.addHook('onRequest', (request, _reply, done) => {
    if (request.method !== 'OPTIONS' || isPreflight(request)) return done();
    done(new ApiError('NOT_FOUND', `OPTIONS ${clip(request.url.split('?')[0] ?? '', 200)} does not exist (a CORS preflight sends Origin and Access-Control-Request-Method)`));
  });
  void app.register(cors, {
    origin: origins.includes('*') ? '*' : [...origins],
    methods: CORS_METHODS,
    allowedHeaders: CORS_ALLOWED_HEADERS,
    exposedHeaders: EXPOSED_HEADERS,
    maxAge: CORS_MAX_AGE_SECONDS,
  });
}
