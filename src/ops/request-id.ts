// Request ids: the client's X-Request-Id when it is a sane token, else a new UUID. Fastify
// puts the id on every log line of the request (as `reqId`); it is echoed back.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply } from 'fastify';

export const REQUEST_ID_HEADER = 'x-request-id';
const ACCEPTED = /^[\x21-\x7e]{1,200}$/;

export const requestIdOptions = {
  requestIdHeader: false,
  genReqId: (request: IncomingMessage): string => {
    const given = request.headers[REQUEST_ID_HEADER];
    return typeof given === 'string' && ACCEPTED.test(given) ? given : randomUUID();
  },
} as const;

const kReply = Symbol('reply');

/**
 * The reply of a response Fastify has started, for an answer written on its socket around
 * Fastify (a body that stopped arriving: client-errors.ts), which keeps the request's id.
 */
export const replyOf = (response: ServerResponse): FastifyReply | undefined => (response as ServerResponse & { [kReply]?: FastifyReply })[kReply];

export function echoRequestId(app: FastifyInstance): void {
  // A callback hook: an async one costs a promise on every request.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header(REQUEST_ID_HEADER, request.id);
    (reply.raw as ServerResponse & { [kReply]?: FastifyReply })[kReply] = reply;
    done();
  });
}
