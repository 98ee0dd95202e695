// Errors Node's HTTP parser raises before Fastify sees a request (a malformed request
// line or header, headers over the size limit, a request that arrives too slowly), and
// what it lets through that HTTP refuses (CONNECT; a header on several lines, which Node
// joins or drops), answered in the error envelope instead of Node's or Fastify's own bodies.
import { randomUUID } from 'node:crypto';
import { maxHeaderSize, STATUS_CODES, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyReply } from 'fastify';
import { ApiError } from '../errors.js';
import { replyOf } from '../ops/request-id.js';
import type { SocketAnswer } from '../ops/unseen-answers.js';
import { SECURITY_HEADERS } from './security-headers.js';

const SECURITY_HEADER_LINES = Object.entries(SECURITY_HEADERS).map(([name, value]) => `${name}: ${value}\r\n`).join('');

export type OnSocketAnswer = (answer: SocketAnswer) => void;

function apiErrorFor(error: NodeJS.ErrnoException): ApiError {
  switch (error.code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      // Node raises this code for both timeouts: the details name both.
      return new ApiError('REQUEST_TIMEOUT', 'the request line and headers must arrive within HTTP_HEADERS_TIMEOUT_SECONDS, and the whole request within HTTP_REQUEST_TIMEOUT_SECONDS');
    case 'HPE_HEADER_OVERFLOW':
      // Node's limit (16 KiB unless --max-http-header-size says otherwise).
      return new ApiError('HEADERS_TOO_LARGE', `the request line and headers must be at most ${maxHeaderSize / 1024} KB`);
    default:
      return new ApiError('INVALID_REQUEST', `the request is not valid HTTP/1.1 (${error.code ?? 'parse error'})`);
  }
}

/**
 * Writes `apiError` on a socket no response was started on, with `Connection: close` (the
 * caller closes it), and an X-Request-Id, as every answer has: the id of `inFlight`, the
 * request whose body stopped arriving, or a new one (a request that could not be read,
 * whose client's id, if it sent one, is not known).
 */
function answerOnSocket(socket: Socket, apiError: ApiError, reason: string, onAnswer: OnSocketAnswer, inFlight?: FastifyReply): void {
  const body = JSON.stringify(apiError.toEnvelope());
  const requestId = inFlight?.request.id ?? randomUUID();
  socket.write(
    `HTTP/1.1 ${apiError.status} ${STATUS_CODES[apiError.status]}\r\n` +
      `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nX-Request-Id: ${requestId}\r\n` +
      SECURITY_HEADER_LINES +
      `Connection: close\r\n\r\n${body}`,
  );
  onAnswer({ status: apiError.status, requestId, reason, ...(inFlight ? { inFlight } : {}) });
}

type Answering = Socket & { _httpMessage?: ServerResponse | null };

/**
 * Runs `then` once the answers to the requests read before on the connection are written,
 * in order (RFC 9112, 9.3.2): a write they made must not be answered only with what
 * follows, or a client retrying would make it twice. Node hands the connection to the next
 * waiting answer as one finishes. An answer to a request not wholly read (a body too
 * slow: the timeout) is the error's own, not waited for.
 */
function afterAnswersBefore(socket: Socket, then: () => void): void {
  if (socket.destroyed) return;
  const answering = (socket as Answering)._httpMessage;
  if (answering && !answering.writableFinished && answering.req.complete) {
    answering.once('finish', () => afterAnswersBefore(socket, then));
    return;
  }
  then();
}

/**
 * Fastify's `clientErrorHandler`: answers after the requests before, then closes. Bytes
 * after a request that asked to close the connection are not a request at all: nothing is
 * answered to them.
 */
export function clientErrorHandler(onAnswer: OnSocketAnswer): (error: NodeJS.ErrnoException, socket: Socket) => void {
  return (error, socket) => {
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    afterAnswersBefore(socket, () => {
      const answering = (socket as Answering)._httpMessage;
      const inFlight = answering && !answering.req.complete ? replyOf(answering) : undefined;
      if (socket.writable && !answering?.headersSent && error.code !== 'HPE_CLOSED_CONNECTION') answerOnSocket(socket, apiErrorFor(error), error.code ?? 'parse error', onAnswer, inFlight);
      socket.destroy(error);
    });
  };
}

/** Answers a CONNECT request (a proxy tunnel), which Node would close without a word, after the requests before it. */
export function connectHandler(onAnswer: OnSocketAnswer): (request: unknown, socket: Socket) => void {
  return (_request, socket) => {
    socket.on('error', () => undefined);
    afterAnswersBefore(socket, () => {
      answerOnSocket(socket, new ApiError('NOT_FOUND', 'CONNECT is not supported: this is not a proxy'), 'CONNECT', onAnswer);
      socket.end();
    });
  };
}

/** How many times the raw headers (name, value, name, value…) carry the header `name` (lower case). */
export function headerLines(rawHeaders: string[], name: string): number {
  let lines = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i]!.length === name.length && rawHeaders[i]!.toLowerCase() === name) lines += 1;
  return lines;
}
