// The API as one encapsulated plugin: strict validators and body parsers, the error
// envelope (and the 404 of unknown routes), and the spec's operations routed by
// operationId to their handlers.
import type { FastifyPluginAsync } from 'fastify';
import openapiGlue from 'fastify-openapi-glue';
import { apiSpecification, specReadFromJsonCopy } from '../spec.js';
import { installErrorHandling } from './error-handling.js';
import { installJsonBody } from './json-body.js';
import type { HandlerDeps } from './handler-deps.js';
import { createHandlers } from './handlers/index.js';
import type { ServiceHandlers } from './operation-types.js';
import { compileRouteSchemas, withoutMetaSchemaCheck } from './route-schemas.js';
import { serializeJsonResponsesByStatus } from './serializers.js';
import { installValidators } from './validation.js';

/** Glue resolver that refuses to start when the spec has an operation without a handler. */
export function resolveOperation(handlers: ServiceHandlers) {
  return (operationId: string, method: string, path: string) => {
    const handler = (handlers as unknown as Record<string, unknown>)[operationId];
    if (typeof handler !== 'function') throw new Error(`No handler for operationId '${operationId}' (${method} ${path}): npm run generate writes a stub for it (then npm run build, for npm start)`);
    return handler.bind(handlers);
  };
}

export const apiPlugin: FastifyPluginAsync<HandlerDeps> = async (app, deps) => {
  installValidators(app);
  serializeJsonResponsesByStatus(app);
  installJsonBody(app);
  installErrorHandling(app);
  // The operational operations (x-operational) are routed by src/ops, not here.
  await withoutMetaSchemaCheck(async () => {
    await app.register(openapiGlue, { specification: apiSpecification(), operationResolver: resolveOperation(createHandlers(deps)) });
  });
  // Compiled on first use when the spec is its checked JSON copy; read from a YAML edited
  // since (`npm run dev`), a schema its compiler refuses stops the start, as it always did.
  if (!specReadFromJsonCopy()) app.addHook('onReady', async () => compileRouteSchemas());
};
