// Every failure, on every route, answers in the error envelope of the catalogue.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../errors.js';
import { IdempotencyKeyTaken } from '../storage/store.js';
import { REQUEST_ID_HEADER } from '../ops/request-id.js';
import { StorageFault } from '../storage/store.js';
import { BODY_LIMIT_BYTES, clip } from './limits.js';
import { RETRY_AFTER_SECONDS } from './server-options.js';
import { isPreflight, PREFLIGHT_HEADERS, SECURITY_HEADERS } from './security-headers.js';
import { throttledErrors } from '../ops/throttled-errors.js';
import { describeValidation } from './validation.js';
import { unsupportedType } from './json-body.js';

/**
 * Errors the router raises before any route is chosen: a malformed percent-encoding
 * (400) and a path parameter over the router's length limit (404: no such resource).
 */
export function answerFrameworkError(error: FastifyError, request: FastifyRequest, reply: FastifyReply, cors?: Record<string, string>): void {
  const apiError =
    error.code === 'FST_ERR_MAX_PARAM_LENGTH'
      ? new ApiError('NOT_FOUND', 'a path parameter is too long to name anything here')
      : new ApiError('INVALID_REQUEST', 'the URL is not valid (malformed percent-encoding)');
  // No hook runs for these answers: the request id, the security headers and CORS (an allowed origin) are set here.
  void reply.headers({ ...SECURITY_HEADERS, ...cors }).header(REQUEST_ID_HEADER, request.id);
  // A browser sends a preflight before the request itself (any with a key does): refused,
  // the page would see no answer at all, not the envelope the request then gets.
  if (cors && isPreflight(request)) return void reply.headers(PREFLIGHT_HEADERS).code(204).send();
  void reply.code(apiError.status).send(apiError.toEnvelope());
}

/** What a client may do after a storage fault: a write whose COMMIT may have been applied is not simply retried. */
function afterStorageFault(fault: StorageFault, method: string): string {
  if (!fault.outcomeUnknown || method === 'GET' || method === 'HEAD') return 'nothing was changed, retry later';
  return 'the write may have been applied: retry with the same Idempotency-Key, or read before retrying';
}

const noSuchRoute = (request: FastifyRequest) => new ApiError('NOT_FOUND', `${request.method} ${clip(request.url.split('?')[0] ?? '', 200)} does not exist`);

function toApiError(error: FastifyError, request: FastifyRequest): ApiError {
  if (error instanceof ApiError) return error;
  // No route, whatever the body: one over the size limit (read by Fastify before any parser) too.
  if (request.is404 && error.code?.startsWith('FST_ERR_CTP_')) return noSuchRoute(request);
  if (error instanceof StorageFault) return new ApiError('STORAGE_UNAVAILABLE', `${error.message}; ${afterStorageFault(error, request.method)}`);
  if (error instanceof IdempotencyKeyTaken) return new ApiError('IDEMPOTENCY_KEY_IN_USE', 'headers/idempotency-key was taken by a concurrent request');
  if (error.validation) return new ApiError('INVALID_REQUEST', describeValidation(error.validationContext ?? 'request', error.validation));
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError('PAYLOAD_TOO_LARGE', `body must be at most ${BODY_LIMIT_BYTES} bytes`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return unsupportedType(request.headers['content-type']);
  }
  const status = error.statusCode ?? 500;
  if (status >= 400 && status < 500) return new ApiError('INVALID_REQUEST', clip(error.message));
  return new ApiError('INTERNAL_ERROR', 'The error was logged on the server.');
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Logs a request's storage fault (installStorageFaultLog); absent, each is a line of its own. */
    logStorageFault?: (request: FastifyRequest, fault: StorageFault) => void;
  }
}

/**
 * Requests' storage faults: the first logged, then at most one a minute with how many
 * were held back. An outage fails every request: a line with its stack each wrote
 * megabytes a minute under load, as background work did before it was throttled.
 */
export function installStorageFaultLog(app: FastifyInstance): void {
  const report = throttledErrors((failed, heldBack) => {
    const { fault, reqId } = failed as { fault: StorageFault; reqId: string };
    app.log.error({ err: fault, reqId, heldBack }, 'request failed: storage unavailable (503)');
  });
  app.decorate('logStorageFault', (request: FastifyRequest, fault: StorageFault) => report({ fault, reqId: request.id }));
}

/** The error handler: any failure as the catalogue's envelope. */
export function answerInEnvelope(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  const apiError = toApiError(error, request);
  if (apiError.status >= 500) {
    if (error instanceof StorageFault && request.server.logStorageFault) request.server.logStorageFault(request, error);
    // An answer the server chose (the agent did not reply in time, shutting down) is no failure of its own: no stack, below `warn`.
    else if (error instanceof ApiError) request.log.info({ code: error.code, details: error.details }, `request answered ${error.status} ${error.code}`);
    else request.log.error({ err: error }, 'request failed');
  }
  // A 429 of the rate limit has its own; one of a limit on what is open (streams, waits) is over when one closes.
  if (apiError.status === 503 || (apiError.status === 429 && !reply.hasHeader('retry-after'))) reply.header('retry-after', RETRY_AFTER_SECONDS);
  return reply.code(apiError.status).send(apiError.toEnvelope());
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler(answerInEnvelope);

  app.setNotFoundHandler((request, reply) => {
    const apiError = noSuchRoute(request);
    return reply.code(apiError.status).send(apiError.toEnvelope());
  });
}
