// The stack floor (`node --import tsx --import ./bench/floor-preload.ts dist/main.js`):
// the server as `npm start` runs it, except that once it gets SIGWINCH (the bench's set-up
// done), each route answers a request it has answered since (same method, URL and body)
// with that first answer, without running its handler again. Parsing, validation, every
// hook, the serializer and the socket still run; the handler's own work (the store, the
// timeout policy, building the view) is what is left out. Its req/s is the most any
// handler could reach through this server: the bench sets each scenario beside it.
//
// It hooks in through Fastify's `fastify.initialization` diagnostics channel, published
// when an instance is made: before any route is added, so every route passes its onRoute
// hook. Subscribing to that channel alone adds nothing per request.
import { subscribe } from 'node:diagnostics_channel';
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteHandlerMethod } from 'fastify';

interface FirstAnswer {
  status: number;
  /** What the handler returned, or (`sent`) what it passed to reply.send itself, as the content type it set. */
  payload: unknown;
  sent?: { contentType: string };
}

let keeping = false;
process.on('SIGWINCH', () => (keeping = true));

function answeringFirstAnswers(fastify: FastifyInstance): void {
  fastify.addHook('onRoute', (route) => {
    const handler = route.handler as (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply) => unknown;
    const answers = new Map<string, FirstAnswer>();
    route.handler = async function (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply) {
      if (!keeping) return handler.call(this, request, reply);
      const key = `${request.method} ${request.url}\n${(request as { bodyText?: string }).bodyText ?? ''}`;
      const first = answers.get(key);
      if (first) {
        reply.code(first.status);
        return first.sent ? reply.type(first.sent.contentType).send(first.payload) : first.payload;
      }
      let sent: { payload: unknown } | undefined;
      const send = reply.send;
      reply.send = function (this: FastifyReply, payload?: unknown) {
        sent = { payload };
        return send.call(this, payload);
      };
      let result: unknown;
      try {
        result = await handler.call(this, request, reply);
      } finally {
        reply.send = send;
      }
      // Errors thrown are not kept: only answers.
      if (sent) answers.set(key, { status: reply.statusCode, payload: sent.payload, sent: { contentType: String(reply.getHeader('content-type')) } });
      else answers.set(key, { status: reply.statusCode, payload: result });
      return result;
    } as RouteHandlerMethod;
  });
}

subscribe('fastify.initialization', (message) => answeringFirstAnswers((message as { fastify: FastifyInstance }).fastify));
