// The requests Fastify itself neither times nor logs, timed and logged here as every
// other is: a response its client closed before it ended, on an operation that holds
// requests open (an event stream, a wait for an agent's reply: Node emits no 'finish',
// so no onResponse hook runs) or on any other (the client gave up while the handler
// worked: its write may have committed), a URL the router
// refused (no hook runs for its answer), and what Node answers before a request is read
// (a malformed request, headers over the limit, a timeout, CONNECT).
import type { ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler, onSendHookHandler } from 'fastify';
import { specOperations } from '../spec.js';
import type { Metrics } from './metrics.js';

/** The status counted for a request its client left before any answer was sent (nginx's "client closed request"). */
const CLIENT_CLOSED_STATUS = 499;

/** The histogram's operationId for an answer Node gave before a request was read. */
const UNREAD_LABEL = 'unread';

/** An answer written on the socket around Fastify: before any request was read, or to one whose body stopped arriving. */
export interface SocketAnswer {
  status: number;
  requestId: string;
  /** Node's error code, or CONNECT. */
  reason: string;
  /** The request whose body stopped arriving (a timeout): counted and logged as its own. */
  inFlight?: FastifyReply;
}

const kLabel = Symbol('operationId');
const kReply = Symbol('reply');
/** Set on a response answered on its socket around Fastify (answeredOnSocket): counted and logged there. */
const kAnsweredOnSocket = Symbol('answeredOnSocket');
type WatchedResponse = ServerResponse & { [kLabel]?: string; [kReply]?: FastifyReply; [kAnsweredOnSocket]?: true };

export interface UnseenAnswers {
  /** Hooks the routes that hold requests open so that a response its client closed early is counted and logged. */
  watchRoutes(app: FastifyInstance): void;
  routerRefused(request: FastifyRequest, reply: FastifyReply): void;
  answeredOnSocket(answer: SocketAnswer): void;
}

const operationIdOf = (request: FastifyRequest) => (request.routeOptions.schema as { operationId?: string } | undefined)?.operationId ?? 'other';

const hooksOf = <T>(hooks: T | T[] | undefined): T[] => (hooks === undefined ? [] : Array.isArray(hooks) ? hooks : [hooks]);

export function unseenAnswers(log: () => FastifyInstance['log'], metrics: Metrics | undefined): UnseenAnswers {
  return {
    watchRoutes(app) {
      // Nothing to count or log: no listener on every response.
      const logsInfo = (app.log as { isLevelEnabled?: (level: string) => boolean }).isLevelEnabled?.('info') ?? false;
      if (metrics === undefined && !logsInfo) return;
      // One listener function for every response (no closure, no `once` wrapper, per request): what it
      // needs rides on the response.
      function closed(this: WatchedResponse): void {
        // Ended by the server: Fastify's own onResponse counts it.
        if (this.writableEnded || this[kAnsweredOnSocket]) return;
        const reply = this[kReply]!;
        const status = this.headersSent ? this.statusCode : CLIENT_CLOSED_STATUS;
        metrics?.observeRequest(this[kLabel]!, status, reply.elapsedTime / 1000);
        reply.request.log.info({ res: { statusCode: status }, responseTime: reply.elapsedTime, closedByClient: true }, 'request completed');
      }
      // Any other: its answer is sent to a connection the client closed meanwhile, so Node
      // emits no 'finish'. Found as the answer is sent (a listener on every response cost
      // the quick reads a few per cent of their throughput).
      const sentToNobody: onSendHookHandler = (request, reply, payload, done) => {
        // The connection, not only the response: a pipelined answer queued behind one is never attached to it.
        if ((reply.raw.destroyed || request.raw.socket?.destroyed) && !reply.raw.writableEnded && !(reply.raw as WatchedResponse)[kAnsweredOnSocket]) {
          metrics?.observeRequest(operationIdOf(request), CLIENT_CLOSED_STATUS, reply.elapsedTime / 1000);
          request.log.info({ res: { statusCode: CLIENT_CLOSED_STATUS }, answer: reply.statusCode, responseTime: reply.elapsedTime, closedByClient: true }, 'request completed');
        }
        done(null, payload);
      };
      // Only the operations that hold a request open (a stream, a wait for the agent's reply)
      // listen for the close.
      const holding = new Set(specOperations().filter((operation) => operation.streams).map((operation) => operation.operationId));
      app.addHook('onRoute', (route) => {
        const label = (route.schema as { operationId?: string } | undefined)?.operationId ?? 'other';
        if (!holding.has(label)) {
          route.onSend = [...hooksOf(route.onSend), sentToNobody];
          return;
        }
        const watch: onRequestHookHandler = (_request, reply, done) => {
          const response = reply.raw as WatchedResponse;
          response[kLabel] = label;
          response[kReply] = reply;
          response.on('close', closed);
          done();
        };
        route.onRequest = [...hooksOf(route.onRequest), watch];
      });
    },
    routerRefused(request, reply) {
      metrics?.observeRequest('not_found', reply.statusCode, reply.elapsedTime / 1000);
      request.log.info({ res: reply, responseTime: reply.elapsedTime }, 'request completed');
    },
    answeredOnSocket({ status, requestId, reason, inFlight }) {
      if (inFlight) {
        (inFlight.raw as WatchedResponse)[kAnsweredOnSocket] = true;
        metrics?.observeRequest(operationIdOf(inFlight.request), status, inFlight.elapsedTime / 1000);
        inFlight.request.log.info({ res: { statusCode: status }, responseTime: inFlight.elapsedTime, reason }, 'request completed');
        return;
      }
      metrics?.observeRequest(UNREAD_LABEL, status, 0);
      log().info({ reqId: requestId, res: { statusCode: status }, reason }, 'request refused before it was read');
    },
  };
}
