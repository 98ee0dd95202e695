// The requests Fastify itself neither times nor logs, timed and logged here as every
// other is: a response its client closed before it ended (an event stream, a wait for an
// agent's reply: Node emits no 'finish', so no onResponse hook runs), a URL the router
// refused (no hook runs for its answer), and what Node answers before a request is read
// (a malformed request, headers over the limit, a timeout, CONNECT).
import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import type { Metrics } from './metrics.js';

/** The status counted for a request its client left before any answer was sent (nginx's "client closed request"). */
export const CLIENT_CLOSED_STATUS = 499;

/** The histogram's operationId for an answer Node gave before a request was read. */
export const UNREAD_LABEL = 'unread';

/** An answer written on the socket before any request was read. */
export interface SocketAnswer {
  status: number;
  requestId: string;
  /** Node's error code, or CONNECT. */
  reason: string;
}

export interface UnseenAnswers {
  /** Hooks each route so that a response its client closed early is counted and logged. */
  watchRoutes(app: FastifyInstance): void;
  routerRefused(request: FastifyRequest, reply: FastifyReply): void;
  answeredOnSocket(answer: SocketAnswer): void;
}

export function unseenAnswers(log: () => FastifyInstance['log'], metrics: Metrics | undefined): UnseenAnswers {
  return {
    watchRoutes(app) {
      // Nothing to count or log: no listener on every response.
      const logsInfo = (app.log as { isLevelEnabled?: (level: string) => boolean }).isLevelEnabled?.('info') ?? false;
      if (metrics === undefined && !logsInfo) return;
      app.addHook('onRoute', (route) => {
        const label = (route.schema as { operationId?: string } | undefined)?.operationId ?? 'other';
        const watch: onRequestHookHandler = (request, reply, done) => {
          const response = reply.raw;
          response.once('close', () => {
            // Ended by the server: Fastify's own onResponse counts it.
            if (response.writableEnded) return;
            const status = response.headersSent ? response.statusCode : CLIENT_CLOSED_STATUS;
            metrics?.observeRequest(label, status, reply.elapsedTime / 1000);
            request.log.info({ res: { statusCode: status }, responseTime: reply.elapsedTime, closedByClient: true }, 'request completed');
          });
          done();
        };
        const existing = route.onRequest;
        route.onRequest = existing === undefined ? [watch] : [...(Array.isArray(existing) ? existing : [existing]), watch];
      });
    },
    routerRefused(request, reply) {
      metrics?.observeRequest('not_found', reply.statusCode, reply.elapsedTime / 1000);
      request.log.info({ res: reply, responseTime: reply.elapsedTime }, 'request completed');
    },
    answeredOnSocket({ status, requestId, reason }) {
      metrics?.observeRequest(UNREAD_LABEL, status, 0);
      log().info({ reqId: requestId, res: { statusCode: status }, reason }, 'request refused before it was read');
    },
  };
}
