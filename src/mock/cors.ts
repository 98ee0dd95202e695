// Mock mode is for building a front end against the contract, most often served from
// another origin (a dev server on :5173): every origin may call it, preflights included.
// A mock holds no data and checks no credentials: there is nothing for CORS to protect.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

const ANY_ORIGIN = { 'access-control-allow-origin': '*', 'access-control-expose-headers': '*' };

/** What every answer to a request with an Origin carries (the router's refusals, which no hook sees, too). */
export function withMockCors(reply: FastifyReply, origin: string | undefined): FastifyReply {
  return origin === undefined ? reply : reply.headers(ANY_ORIGIN);
}

/** Answers a preflight (204, whatever method and headers it asks for: a Prefer header, a key); false for any other request. */
export function answerPreflight(request: FastifyRequest, reply: FastifyReply): boolean {
  const { origin, 'access-control-request-method': method, 'access-control-request-headers': headers } = request.headers;
  if (request.method !== 'OPTIONS' || origin === undefined || method === undefined) return false;
  void withMockCors(reply, origin)
    .code(204)
    .headers({ 'access-control-allow-methods': method, ...(headers ? { 'access-control-allow-headers': headers } : {}), 'access-control-max-age': '600' })
    .send();
  return true;
}

export function installMockCors(app: FastifyInstance): void {
  app.addHook('onRequest', async (request, reply) => {
    if (answerPreflight(request, reply)) return reply;
    withMockCors(reply, request.headers.origin);
  });
}
