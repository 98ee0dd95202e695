// Every answer timed into the request-duration histogram, by operationId and status.
import type { FastifyInstance } from 'fastify';
import type { Metrics } from './metrics.js';

export function timeRequests(app: FastifyInstance, metrics: Metrics): void {
  app.addHook('onResponse', async (request, reply) => {
    const operationId = (request.routeOptions.schema as { operationId?: string } | undefined)?.operationId;
    const label = operationId ?? (request.routeOptions.url === undefined ? 'not_found' : 'other');
    metrics.observeRequest(label, reply.statusCode, reply.elapsedTime / 1000);
  });
}
