// What a key bound to agents may see: those agents and their sessions. Anything else
// answers 404 as if it did not exist (not 403: a key learns nothing of others' ids).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { notFound } from '../errors.js';
import type { Store } from '../storage/store.js';

/** The agents the caller may use; undefined: all of them. */
export function agentScope(request: FastifyRequest): readonly string[] | undefined {
  return request.principal?.agentIds ?? undefined;
}

/** After validation: the session, agent or body agent a request names must be in the caller's scope. */
export function installAccessScope(app: FastifyInstance, { store }: { store: Store }): void {
  // Keys bound to agents are rare: other requests pass without the promise an async hook costs.
  app.addHook('preHandler', (request, _reply, done) => {
    const scope = agentScope(request);
    if (!scope) return done();
    checkScope(store, request, scope).then(() => done(), done);
  });
}

async function checkScope(store: Store, request: FastifyRequest, scope: readonly string[]): Promise<void> {
  const params = (request.params ?? {}) as Record<string, unknown>;
  if (typeof params.sessionId === 'string') {
    const session = await store.getSession(params.sessionId);
    if (session && !scope.includes(session.agentId)) {
      throw notFound('SESSION_NOT_FOUND', 'params/sessionId', params.sessionId);
    }
  }
  if (typeof params.agentId === 'string' && !scope.includes(params.agentId)) {
    throw notFound('AGENT_NOT_FOUND', 'params/agentId', params.agentId);
  }
  const body = request.body as { agentId?: unknown } | undefined;
  if (body && typeof body === 'object' && typeof body.agentId === 'string' && !scope.includes(body.agentId)) {
    throw notFound('AGENT_NOT_FOUND', 'body/agentId', body.agentId);
  }
}
