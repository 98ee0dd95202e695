// Errors Node's HTTP parser raises before Fastify sees a request (a malformed request
// line or header, headers over the size limit, a request that arrives too slowly),
// answered in the error envelope instead of Node's or Fastify's own bodies.
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { ApiError } from '../errors.js';

function apiErrorFor(error: NodeJS.ErrnoException): ApiError {
  switch (error.code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new ApiError('REQUEST_TIMEOUT', 'the request line, headers and body must arrive within the request timeout');
    case 'HPE_HEADER_OVERFLOW':
      return new ApiError('HEADERS_TOO_LARGE', 'the request line and headers must be at most 16 KB');
    default:
      return new ApiError('INVALID_REQUEST', `the request is not valid HTTP/1.1 (${error.code ?? 'parse error'})`);
  }
}

/** Fastify's `clientErrorHandler`: answers once, if nothing of a response was sent yet, then closes. */
export function answerClientError(error: NodeJS.ErrnoException, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const response = (socket as Socket & { _httpMessage?: { headersSent: boolean } })._httpMessage;
  if (socket.writable && !response?.headersSent) {
    const apiError = apiErrorFor(error);
    const body = JSON.stringify(apiError.toEnvelope());
    socket.write(
      `HTTP/1.1 ${apiError.status} ${STATUS_CODES[apiError.status]}\r\n` +
        `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}
