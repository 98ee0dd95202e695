// The one catalogue of API errors: every failure the server answers goes through it.
import type { components } from '../generated/api.js';

export type ErrorCode = components['schemas']['ErrorCode'];
export type ErrorEnvelope = components['schemas']['ErrorEnvelope'];

const errorCatalogue: Record<ErrorCode, { status: number; message: string }> = {
  INVALID_REQUEST: { status: 400, message: 'Invalid request' },
  UNAUTHORIZED: { status: 401, message: 'Unauthorized' },
  FORBIDDEN: { status: 403, message: 'Forbidden' },
  AGENT_NOT_FOUND: { status: 404, message: 'Agent not found' },
  SESSION_NOT_FOUND: { status: 404, message: 'Session not found' },
  WEBHOOK_NOT_FOUND: { status: 404, message: 'Webhook not found' },
  NOT_FOUND: { status: 404, message: 'Route not found' },
  AGENT_ALREADY_EXISTS: { status: 409, message: 'Agent already exists' },
  AGENT_HAS_ACTIVE_SESSIONS: { status: 409, message: 'Agent has active sessions' },
  IDEMPOTENCY_KEY_IN_USE: { status: 409, message: 'A request with this idempotency key is still running' },
  SESSION_EXPIRED: { status: 410, message: 'Session has expired' },
  PAYLOAD_TOO_LARGE: { status: 413, message: 'Request body is too large' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'Unsupported media type' },
  MAX_DURATION_REACHED: { status: 422, message: 'Session has reached its maximum duration' },
  IDEMPOTENCY_KEY_REUSED: { status: 422, message: 'Idempotency key was used with a different request' },
  RATE_LIMITED: { status: 429, message: 'Too many requests' },
  INTERNAL_ERROR: { status: 500, message: 'Internal server error' },
  NOT_IMPLEMENTED: { status: 501, message: 'Not implemented' },
  SERVICE_UNAVAILABLE: { status: 503, message: 'Service unavailable' },
  STORAGE_UNAVAILABLE: { status: 503, message: 'Storage is unavailable' },
  REQUEST_TIMEOUT: { status: 408, message: 'Request timed out' },
  HEADERS_TOO_LARGE: { status: 431, message: 'Request headers are too large' },
  AGENT_REPLY_TIMEOUT: { status: 504, message: 'The agent did not reply in time' },
};

/** A failure with a catalogued code; `details` is what the client needs to fix it. */
export class ApiError extends Error {
  readonly status: number;

  constructor(
    readonly code: ErrorCode,
    readonly details: string,
  ) {
    super(errorCatalogue[code].message);
    this.name = 'ApiError';
    this.status = errorCatalogue[code].status;
  }

  toEnvelope(): ErrorEnvelope {
    return { success: false, error: { code: this.code, message: this.message, details: this.details } };
  }
}

/** `field` (`params/sessionId`, `body/agentId`, …) names nothing that exists, or nothing the caller may see. */
export const notFound = (code: 'SESSION_NOT_FOUND' | 'AGENT_NOT_FOUND' | 'WEBHOOK_NOT_FOUND', field: string, id: string) => new ApiError(code, `${field} ${id} does not exist`);
