// Every failure, on every route, answers in the error envelope of the catalogue.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, preValidationHookHandler } from 'fastify';
import { ApiError } from '../errors.js';
import { IdempotencyKeyTaken } from '../storage/store.js';
import { REQUEST_ID_HEADER } from '../ops/request-id.js';
import { specOperations } from '../spec.js';
import { StorageFault } from '../storage/store.js';
import { BODY_LIMIT_BYTES, clip } from './limits.js';
import { RETRY_AFTER_SECONDS } from './server-options.js';
import { describeValidation } from './validation.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The JSON body as received (empty without one): what an idempotency fingerprint covers. */
    bodyText: string;
  }
}

/**
 * Errors the router raises before any route is chosen: a malformed percent-encoding
 * (400) and a path parameter over the router's length limit (404: no such resource).
 */
export function answerFrameworkError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const apiError =
    error.code === 'FST_ERR_MAX_PARAM_LENGTH'
      ? new ApiError('NOT_FOUND', 'a path parameter is too long to name anything here')
      : new ApiError('INVALID_REQUEST', 'the URL is not valid (malformed percent-encoding)');
  // No hook runs for these answers: the request id is echoed here.
  void reply.header(REQUEST_ID_HEADER, request.id).code(apiError.status).send(apiError.toEnvelope());
}

function toApiError(error: FastifyError, contentType: string | undefined): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof StorageFault) return new ApiError('STORAGE_UNAVAILABLE', `${error.message}; nothing was changed, retry later`);
  if (error instanceof IdempotencyKeyTaken) return new ApiError('IDEMPOTENCY_KEY_IN_USE', 'headers/idempotency-key was taken by a concurrent request');
  if (error.validation) return new ApiError('INVALID_REQUEST', describeValidation(error.validationContext ?? 'request', error.validation));
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError('PAYLOAD_TOO_LARGE', `body must be at most ${BODY_LIMIT_BYTES} bytes`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError(
        'UNSUPPORTED_MEDIA_TYPE',
        `content-type ${clip(contentType ?? '(none)', 100)} is not supported; send application/json`,
      );
  }
  const status = error.statusCode ?? 500;
  if (status >= 400 && status < 500) return new ApiError('INVALID_REQUEST', clip(error.message));
  return new ApiError('INTERNAL_ERROR', 'The error was logged on the server.');
}

/**
 * Where a parsed JSON value holds a string (or key) with a lone surrogate, which no
 * UTF-8 text can carry: stored, it would come back as U+FFFD. Undefined when none does.
 */
const LONE_SURROGATE = /\p{Cs}/u; // with the u flag, a well-formed pair is one code point, not Cs

function pathOfLoneSurrogate(value: unknown, path: string): string | undefined {
  if (typeof value === 'string') return LONE_SURROGATE.test(value) ? path : undefined;
  if (typeof value !== 'object' || value === null) return undefined;
  for (const [key, item] of Object.entries(value)) {
    const itemPath = `${path}/${key}`;
    if (LONE_SURROGATE.test(key)) return itemPath;
    const found = pathOfLoneSurrogate(item, itemPath);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** The error handler: any failure as the catalogue's envelope. */
export function answerInEnvelope(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  const apiError = toApiError(error, request.headers['content-type']);
  if (apiError.status >= 500) request.log.error({ err: error }, 'request failed');
  if (apiError.status === 503) reply.header('retry-after', RETRY_AFTER_SECONDS);
  return reply.code(apiError.status).send(apiError.toEnvelope());
}

export function installErrorHandling(app: FastifyInstance): void {
  // JSON only. An empty body parses as no body, so operations without a required body
  // accept `Content-Type: application/json` with nothing after it.
  app.removeAllContentTypeParsers();
  app.decorateRequest('bodyText', '');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    request.bodyText = body as string;
    if (body === '') return done(null, undefined);
    let parsed: unknown;
    try {
      parsed = JSON.parse(body as string);
    } catch {
      return done(new ApiError('INVALID_REQUEST', 'body is not valid JSON'), undefined);
    }
    const malformed = /\\u[dD][89a-fA-F]/.test(body as string) ? pathOfLoneSurrogate(parsed, 'body') : undefined;
    if (malformed !== undefined) {
      return done(new ApiError('INVALID_REQUEST', `${clip(malformed, 200)} contains a lone surrogate (\\uD800-\\uDFFF outside a pair): not text`), undefined);
    }
    done(null, parsed);
  });

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

  app.setErrorHandler(answerInEnvelope);

  app.setNotFoundHandler((request, reply) => {
    const apiError = new ApiError('NOT_FOUND', `${request.method} ${clip(request.url.split('?')[0] ?? '', 200)} does not exist`);
    return reply.code(apiError.status).send(apiError.toEnvelope());
  });
}
