// The HTTP application: the API plugin (the spec's operations routed by operationId to
// their handlers) and the operational routes (the spec, /docs, /metrics).
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { apiPlugin } from './http/api-plugin.js';
import { requestForLog } from './http/client-address.js';
import { corsHeadersFor } from './http/security-headers.js';
import { answerFrameworkError, answerInEnvelope, installStorageFaultLog } from './http/error-handling.js';
import { createEventStreams } from './events/event-stream.js';
import { createAgentReplies } from './events/agent-replies.js';
import { createEventFeed } from './events/event-feed.js';
import { DEFAULTS } from './defaults.js';
import { steadyClock } from './domain/clock.js';
import type { AppDeps } from './http/handler-deps.js';
import { BODY_LIMIT_BYTES, MAX_PARAM_LENGTH } from './http/limits.js';
import { buildCachedSerializer } from './http/serializers.js';
import { type HttpTimeouts, installServerLifecycle, serverOptions } from './http/server-options.js';
import { type AccessOptions, installSecurity } from './http/security.js';
import type { Metrics } from './ops/metrics.js';
import { opsPlugin } from './ops/ops-plugin.js';
import { timeRequests } from './ops/request-timing.js';
import { unseenAnswers } from './ops/unseen-answers.js';
import { echoRequestId, requestIdOptions } from './ops/request-id.js';
import { throttledErrors } from './ops/throttled-errors.js';

export interface AppOptions {
  logger?: FastifyServerOptions['logger'];
  timeouts?: HttpTimeouts;
  access?: AccessOptions;
  /** Absent: metrics are off (/metrics answers 404). */
  metrics?: Metrics;
  metricsToken?: string;
  /** Event streams open at once (EVENT_STREAMS_MAX). */
  maxEventStreams?: number;
  /** Event streams one API key bound to agents keeps open at once (EVENT_STREAMS_PER_KEY_MAX). */
  maxEventStreamsPerKey?: number;
  /** The reverse proxies whose X-Forwarded-For names the client (TRUST_PROXY): the address rate limits and logs use. */
  trustProxy?: string[];
}

/** Logger options whose request lines name the client as rate limits count it (not X-Forwarded-For as written). */
function withClientAddress(logger: AppOptions['logger']): AppOptions['logger'] {
  if (!logger) return false;
  const given = logger === true ? {} : logger;
  return { ...given, serializers: { req: requestForLog, ...given.serializers } };
}

/**
 * Builds the app without starting it: call `ready()` or `listen()`. The app owns the
 * store and the sweeper, and stops both on `close()`.
 */
export function buildApp(given: AppDeps, options: AppOptions = {}): FastifyInstance {
  const deps = { agentReplyTimeoutMs: DEFAULTS.agentReplyTimeoutMs, webhookPrivateAddresses: DEFAULTS.webhookPrivateAddresses, webhooksPerKeyMax: DEFAULTS.webhooksPerKeyMax, ...given, clock: steadyClock(given.clock) };
  const unseen = unseenAnswers(() => app.log, options.metrics);
  const corsHeaders = corsHeadersFor(options.access?.corsOrigins ?? []);
  const app: FastifyInstance = Fastify({
    ...serverOptions(options.timeouts, unseen.answeredOnSocket),
    logger: withClientAddress(options.logger),
    trustProxy: options.trustProxy?.length ? options.trustProxy : false,
    bodyLimit: BODY_LIMIT_BYTES,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    frameworkErrors: (error, request, reply) => {
      answerFrameworkError(error, request, reply, corsHeaders(request.headers.origin));
      unseen.routerRefused(request, reply);
    },
    schemaController: { compilersFactory: { buildSerializer: buildCachedSerializer } },
    ...requestIdOptions,
  });
  // First: the answers the lifecycle's own hook gives (no Host, shutting down) carry it too.
  echoRequestId(app);
  // The routes outside the two plugins (the CORS preflight) answer failures in the envelope too.
  app.setErrorHandler(answerInEnvelope);
  installStorageFaultLog(app);
  installServerLifecycle(app, unseen.answeredOnSocket);
  if (options.metrics) timeRequests(app, options.metrics);
  unseen.watchRoutes(app);
  // Before the routes: the rate limit hooks itself onto each route.
  installSecurity(app, deps, { ...options.access, metricsToken: options.metricsToken });
  // One reader of the event log for every stream and every waiter of the app.
  const readFailed = throttledErrors((error, heldBack) => app.log.error({ err: error, heldBack }, 'reading the event log failed'), {
    recovered: (failures) => app.log.warn({ failures }, 'reading the event log works again'),
  });
  const feed = createEventFeed(deps.store, { onError: readFailed, onSuccess: readFailed.succeeded });
  const streams = createEventStreams({
    feed,
    ...(options.maxEventStreams === undefined ? {} : { maxOpen: options.maxEventStreams }),
    ...(options.maxEventStreamsPerKey === undefined ? {} : { maxOpenPerKey: options.maxEventStreamsPerKey }),
  });
  options.metrics?.countStreamsWith(() => streams.size());
  const replies = deps.replies ?? createAgentReplies(feed);
  app.register(apiPlugin, { ...deps, streams, replies });
  app.register(opsPlugin, { ...deps, metrics: options.metrics, metricsToken: options.metricsToken });
  app.addHook('preClose', async () => {
    streams.closeAll();
    replies.closeAll();
  });
  app.addHook('onClose', async () => {
    await deps.sweeper.stop();
    await deps.store.close();
  });
  return app;
}
