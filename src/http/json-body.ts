// Request bodies: JSON in UTF-8, parsed strictly. What the body's bytes say is what is
// stored, or the request is refused naming why: no byte decoded into U+FFFD, no number
// turned into null or rounded, no compressed body read as text.
import { isUtf8 } from 'node:buffer';
import type { FastifyInstance, FastifyRequest, preValidationHookHandler } from 'fastify';
import { ApiError } from '../errors.js';
import { specOperations } from '../spec.js';
import { inexactNumberIn } from './inexact-numbers.js';
import { bodyField, pathSegment, walkJson } from './json-tokens.js';
import { clip } from './limits.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The JSON body as received (empty without one): what an idempotency fingerprint covers. */
    bodyText: string;
  }
}

/** `charset=…` of a content type, lower-cased; undefined without one. */
const CHARSET = /;\s*charset\s*=\s*"?([^";\s]*)/i;

/** Where a parsed JSON value holds a string or key, or a number, that `bad` refuses. */
function pathWhere(value: unknown, path: string, bad: (leaf: string | number) => boolean): string | undefined {
  if (typeof value === 'string' || typeof value === 'number') return bad(value) ? path : undefined;
  if (value === null || typeof value !== 'object') return undefined;
  for (const [key, item] of Object.entries(value)) {
    const itemPath = `${path}/${pathSegment(key)}`;
    if (bad(key)) return itemPath;
    const found = pathWhere(item, itemPath, bad);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** A string with a lone surrogate: no UTF-8 text can carry it (stored, it would come back as U+FFFD). */
const LONE_SURROGATE = /\p{Cs}/u; // with the u flag, a well-formed pair is one code point, not Cs
const hasLoneSurrogate = (leaf: string | number) => typeof leaf === 'string' && LONE_SURROGATE.test(leaf);
/** A number JSON.parse made Infinity (over about 1.8e308): stored, it would come back as null. */
const isInfinite = (leaf: string | number) => typeof leaf === 'number' && !Number.isFinite(leaf);
/** Text that may hold such a number: an exponent of three digits, or 309 digits in a row. */
const MAYBE_HUGE_NUMBER = /\d[eE]\+?\d{3}|\d{309}/;

/**
 * Deeper than this, a body is refused before it is parsed: no metadata or settings needs
 * it, and the recursion that stores or copies such a value (JSON.stringify, which gives up
 * between 3,000 and 5,000 levels on Node's default stack) would overflow somewhere (a
 * 500, now and then, on a loaded machine) instead of saying why.
 */
const MAX_JSON_DEPTH = 1024;

/** Whether JSON text nests arrays and objects deeper than `limit` (strings skipped); no text that short can. */
function nestedDeeperThan(text: string, limit: number): boolean {
  if (text.length <= 2 * limit) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i += 1) {
    const code = text.charCodeAt(i);
    if (inString) {
      if (code === 0x5c) i += 1; // a backslash: the next character is escaped
      else if (code === 0x22) inString = false;
    } else if (code === 0x22) inString = true;
    else if (code === 0x5b || code === 0x7b) {
      depth += 1;
      if (depth > limit) return true;
    } else if (code === 0x5d || code === 0x7d) depth -= 1;
  }
  return false;
}

/** How many keys JSON text writes: a colon outside strings ends each. */
function keysWritten(text: string): number {
  let count = 0;
  let inString = false;
  for (let i = 0; i < text.length; i += 1) {
    const code = text.charCodeAt(i);
    if (inString) {
      if (code === 0x5c) i += 1;
      else if (code === 0x22) inString = false;
    } else if (code === 0x22) inString = true;
    else if (code === 0x3a) count += 1;
  }
  return count;
}

/** How many keys a parsed value holds, at every depth (no arrays of keys built: a body may hold 60,000). */
function keysHeld(value: unknown): number {
  if (value === null || typeof value !== 'object') return 0;
  let count = 0;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i += 1) count += keysHeld(value[i]);
    return count;
  }
  const object = value as Record<string, unknown>;
  for (const key in object) count += 1 + keysHeld(object[key]);
  return count;
}

/**
 * Where a key is written twice in one object (JSON.parse keeps the last value: a proxy
 * that reads the first would see another request than the one stored); undefined when none is.
 */
function repeatedKeyIn(text: string, parsed: unknown): string | undefined {
  if (keysWritten(text) === keysHeld(parsed)) return undefined;
  let found: string | undefined;
  walkJson(text, {
    key(path, _key, repeated) {
      if (repeated) found = bodyField(path);
      return repeated;
    },
  });
  return found;
}

/** A body the server cannot read as it was sent: compressed (either coding), or in another charset. */
function unreadable(request: FastifyRequest): ApiError | undefined {
  // Node decodes `chunked` and passes any other transfer coding through undecoded.
  const transfer = request.headers['transfer-encoding'];
  if (transfer !== undefined && !/^\s*chunked\s*$/i.test(transfer)) {
    return new ApiError('UNSUPPORTED_MEDIA_TYPE', `transfer-encoding ${clip(transfer, 50)} is not supported; send the body uncompressed (chunked or with a Content-Length)`);
  }
  const encoding = request.headers['content-encoding'];
  if (encoding !== undefined && encoding.toLowerCase() !== 'identity') {
    return new ApiError('UNSUPPORTED_MEDIA_TYPE', `content-encoding ${clip(encoding, 50)} is not supported; send the body uncompressed`);
  }
  const charset = CHARSET.exec(request.headers['content-type'] ?? '')?.[1]?.toLowerCase();
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
    return new ApiError('UNSUPPORTED_MEDIA_TYPE', `content-type charset ${clip(charset, 50)} is not supported; send application/json in UTF-8`);
  }
  return undefined;
}

/**
 * A body of a type other than JSON: refused (415), unless it is empty, which is no body
 * (as `fetch(url, { method: 'POST', body: '' })` sends it, typed text/plain).
 */
function refuseUnlessEmpty(request: FastifyRequest, body: Buffer | string, done: (error: Error | null, body?: unknown) => void): void {
  // No route: the answer is 404, whatever the body.
  if (body.length === 0 || request.is404) return done(null, undefined);
  done(unsupportedType(request.headers['content-type']), undefined);
}

export const unsupportedType = (contentType: string | undefined) =>
  new ApiError('UNSUPPORTED_MEDIA_TYPE', `content-type ${clip(contentType ?? '(none)', 100)} is not supported; send application/json`);

export function installJsonBody(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.decorateRequest('bodyText', '');
  // An empty body parses as no body, so operations without a required body accept
  // `Content-Type: application/json` with nothing after it.
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, bytes, done) => {
    const buffer = bytes as Buffer;
    // No route: the answer is 404, whatever the body.
    if (buffer.length === 0 || request.is404) return done(null, undefined);
    const refused = unreadable(request);
    if (refused) return done(refused, undefined);
    if (!isUtf8(buffer)) return done(new ApiError('INVALID_REQUEST', 'body is not valid UTF-8'), undefined);
    const text = buffer.toString('utf8');
    request.bodyText = text;
    if (nestedDeeperThan(text, MAX_JSON_DEPTH)) {
      return done(new ApiError('INVALID_REQUEST', `body is nested too deeply (arrays and objects more than ${MAX_JSON_DEPTH} levels deep)`), undefined);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return done(new ApiError('INVALID_REQUEST', 'body is not valid JSON'), undefined);
    }
    const surrogate = /\\u[dD][89a-fA-F]/.test(text) ? pathWhere(parsed, 'body', hasLoneSurrogate) : undefined;
    if (surrogate !== undefined) {
      return done(new ApiError('INVALID_REQUEST', `${clip(surrogate, 200)} contains a lone surrogate (\\uD800-\\uDFFF outside a pair): not text`), undefined);
    }
    const huge = MAYBE_HUGE_NUMBER.test(text) ? pathWhere(parsed, 'body', isInfinite) : undefined;
    if (huge !== undefined) {
      return done(new ApiError('INVALID_REQUEST', `${clip(huge, 200)} is a number too large to store (over 1.7976931348623157e308)`), undefined);
    }
    const repeated = repeatedKeyIn(text, parsed);
    if (repeated !== undefined) return done(new ApiError('INVALID_REQUEST', `${clip(repeated, 200)} is given twice: a key may appear once in an object`), undefined);
    const inexact = inexactNumberIn(text);
    if (inexact !== undefined) {
      const { path, sent, stored } = inexact;
      return done(new ApiError('INVALID_REQUEST', `${clip(path, 200)} is ${clip(sent, 40)}, more exact than a number here can be (it would be stored as ${stored}): send it as a string`), undefined);
    }
    done(null, parsed);
  });
  app.addContentTypeParser('*', { parseAs: 'buffer' }, refuseUnlessEmpty);
  // `text/event-stream` is a response type only. Registered as a request "parser" that
  // refuses it (415, as any body that is not JSON; an empty one is no body), so the router
  // knows the type the spec names.
  app.addContentTypeParser('text/event-stream', { parseAs: 'buffer' }, refuseUnlessEmpty);

  // No body at all: refused where the spec requires one, an empty object where the body
  // is optional. (Fastify validates a body only under a content type it parsed, so a
  // request with neither would otherwise reach the handler unvalidated.)
  // A hook on each route with a body schema only, knowing whether it is required: the
  // routes without one (most reads) pay nothing.
  const bodyRequired = new Map(specOperations().map((op) => [op.operationId, op.bodyRequired]));
  app.addHook('onRoute', (route) => {
    const operationId = (route.schema as { operationId?: string } | undefined)?.operationId;
    if (operationId === undefined || !route.schema?.body) return;
    const required = bodyRequired.get(operationId) === true;
    const noBody: preValidationHookHandler = (request, _reply, done) => {
      if (request.body !== undefined) return done();
      if (required) return done(new ApiError('INVALID_REQUEST', 'body is required (application/json)'));
      request.body = {};
      done();
    };
    const existing = route.preValidation;
    route.preValidation = existing === undefined ? [noBody] : [noBody, ...(Array.isArray(existing) ? existing : [existing])];
  });
}
