// Every answer timed into the request-duration histogram, by operationId and status.
import type { FastifyInstance, onResponseHookHandler } from 'fastify';
import type { Metrics } from './metrics.js';

export function timeRequests(app: FastifyInstance, metrics: Metrics): void {
  // Each route gets a hook that knows its label: reading `request.routeOptions` builds a
  // new object on every request. Callback hooks, not async ones: no promise per request.
  app.addHook('onRoute', (route) => {
    const label = (route.schema as { operationId?: string } | undefined)?.operationId ?? 'other';
    const timeRoute: onResponseHookHandler = (_request, reply, done) => {
      metrics.observeRequest(label, reply.statusCode, reply.elapsedTime / 1000);
      done();
    };
    const existing = route.onResponse;
    route.onResponse = existing === undefined ? [timeRoute] : [...(Array.isArray(existing) ? existing : [existing]), timeRoute];
  });
  // A request no route matched: the not-found handler has no route hooks.
  app.addHook('onResponse', (request, reply, done) => {
    if (request.is404) metrics.observeRequest('not_found', reply.statusCode, reply.elapsedTime / 1000);
    done();
  });
}
