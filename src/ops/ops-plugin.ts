// The operational routes, outside the API plugin: the spec itself as YAML and as JSON,
// the interactive docs (/docs, every asset served from here), and /metrics. They are
// the spec's `x-operational: true` operations; startup refuses one without a route.
import { readFileSync } from 'node:fs';
import type { FastifyPluginAsync, RouteHandlerMethod } from 'fastify';
import type { Clock } from '../domain/clock.js';
import { purgeCutoff } from '../domain/timeout-policy.js';
import { ApiError } from '../errors.js';
import { bearerMatches } from '../http/auth.js';
import { answerInEnvelope } from '../http/error-handling.js';
import type { OperationalOperationId } from '../http/operation-types.js';
import { specDocument, specOperations, specPath } from '../spec.js';
import type { Store } from '../storage/store.js';
import { registerDocs } from './docs.js';
import type { Metrics } from './metrics.js';

export interface OpsOptions {
  store: Store;
  clock: Clock;
  retentionMs: number;
  /** Absent: metrics are off and /metrics answers 404. */
  metrics?: Metrics;
  /** When set, /metrics wants `Authorization: Bearer <token>`. */
  metricsToken?: string;
}

export const opsPlugin: FastifyPluginAsync<OpsOptions> = async (app, { store, clock, retentionMs, metrics, metricsToken }) => {
  app.setErrorHandler(answerInEnvelope);
  const specBytes = readFileSync(specPath);
  const specJson = JSON.stringify(specDocument());

  metrics?.countSessionsWith(() => {
    const now = clock.now();
    return store.countSessions({ now, purgeCutoff: purgeCutoff(now, retentionMs) });
  });

  const routes: Record<OperationalOperationId, RouteHandlerMethod> = {
    getOpenApiYaml: async (_request, reply) => reply.type('application/yaml').send(specBytes),
    getOpenApiJson: async (_request, reply) => reply.type('application/json; charset=utf-8').send(specJson),
    getMetrics: async (request, reply) => {
      if (!metrics) throw new ApiError('NOT_FOUND', 'metrics are off on this server (METRICS_ENABLED=false)');
      if (metricsToken !== undefined && !bearerMatches(request, metricsToken)) {
        reply.header('www-authenticate', 'Bearer realm="sessions-api-metrics"');
        throw new ApiError('UNAUTHORIZED', 'header authorization must be Bearer <METRICS_TOKEN>');
      }
      return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
    },
  };
  for (const operation of specOperations().filter((op) => op.operational)) {
    const handler = routes[operation.operationId as OperationalOperationId];
    if (!handler) throw new Error(`No operational route for operationId '${operation.operationId}' (${operation.method} ${operation.path})`);
    app.route({ method: operation.method as 'GET', url: operation.path, schema: { operationId: operation.operationId } as object, handler });
  }

  await registerDocs(app);
};
