// The HTTP application: the spec's operations, routed by operationId to their handlers.
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import openapiGlue from 'fastify-openapi-glue';
import { createEventStreams, refuseEventStreamBodies } from './events/event-stream.js';
import { answerFrameworkError, installErrorHandling } from './http/error-handling.js';
import type { HandlerDeps } from './http/handler-deps.js';
import { createHandlers } from './http/handlers/index.js';
import { BODY_LIMIT_BYTES, MAX_PARAM_LENGTH } from './http/limits.js';
import type { ServiceHandlers } from './http/operation-types.js';
import { type AccessOptions, installSecurity } from './http/security.js';
import { installValidators } from './http/validation.js';
import { specPath } from './spec.js';

/** Glue resolver that refuses to start when the spec has an operation without a handler. */
export function resolveOperation(handlers: ServiceHandlers) {
  return (operationId: string, method: string, path: string) => {
    const handler = (handlers as unknown as Record<string, unknown>)[operationId];
    if (typeof handler !== 'function') throw new Error(`No handler for operationId '${operationId}' (${method} ${path})`);
    return handler.bind(handlers);
  };
}

/**
 * Builds the app without starting it: call `ready()` or `listen()`. The app owns the
 * store and the sweeper, and stops both on `close()`.
 */
export function buildApp(
  deps: Omit<HandlerDeps, 'streams'>,
  options: { logger?: FastifyServerOptions['logger']; access?: AccessOptions } = {},
): FastifyInstance {
  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: BODY_LIMIT_BYTES,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    frameworkErrors: answerFrameworkError,
  });
  installValidators(app);
  installErrorHandling(app);
  installSecurity(app, deps, options.access);
  refuseEventStreamBodies(app);
  const streams = createEventStreams();
  app.register(openapiGlue, { specification: specPath, operationResolver: resolveOperation(createHandlers({ ...deps, streams })) });
  app.addHook('preClose', async () => streams.closeAll());
  app.addHook('onClose', async () => {
    await deps.sweeper.stop();
    await deps.store.close();
  });
  return app;
}
