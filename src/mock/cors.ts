// Mock mode is for building a front end against the contract, most often served from
// another origin (a dev server on :5173): every origin may call it, preflights included.
// A mock holds no data and checks no credentials: there is nothing for CORS to protect.
import type { FastifyInstance, FastifyReply } from 'fastify';

const ANY_ORIGIN = { 'access-control-allow-origin': '*', 'access-control-expose-headers': '*' };

/** What every answer to a request with an Origin carries (the router's refusals, which no hook sees, too). */
export function withMockCors(reply: FastifyReply, origin: string | undefined): FastifyReply {
  return origin === undefined ? reply : reply.headers(ANY_ORIGIN);
}

export function installMockCors(app: FastifyInstance): void {
  app.addHook('onRequest', async (request, reply) => {
    const { origin, 'access-control-request-method': method, 'access-control-request-headers': headers } = request.headers;
    withMockCors(reply, origin);
    if (request.method !== 'OPTIONS' || origin === undefined || method === undefined) return;
    // A preflight: whatever method and headers it asks for (a Prefer header, a key).
    return reply
      .code(204)
      .headers({ 'access-control-allow-methods': method, ...(headers ? { 'access-control-allow-headers': headers } : {}), 'access-control-max-age': '600' })
      .send();
  });
}
