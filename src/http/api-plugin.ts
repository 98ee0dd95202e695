// The API as one encapsulated plugin: strict validators and body parsers, the error
// envelope (and the 404 of unknown routes), and the spec's operations routed by
// operationId to their handlers.
import { Validator } from '@seriousme/openapi-schema-validator';
import type { FastifyPluginAsync } from 'fastify';
import openapiGlue from 'fastify-openapi-glue';
import { apiSpecification } from '../spec.js';
import { installErrorHandling } from './error-handling.js';
import { installJsonBody } from './json-body.js';
import type { HandlerDeps } from './handler-deps.js';
import { createHandlers } from './handlers/index.js';
import type { ServiceHandlers } from './operation-types.js';
import { serializeJsonResponsesByStatus } from './serializers.js';
import { installValidators } from './validation.js';

/** Glue resolver that refuses to start when the spec has an operation without a handler. */
export function resolveOperation(handlers: ServiceHandlers) {
  return (operationId: string, method: string, path: string) => {
    const handler = (handlers as unknown as Record<string, unknown>)[operationId];
    if (typeof handler !== 'function') throw new Error(`No handler for operationId '${operationId}' (${method} ${path}): npm run generate writes a stub for it`);
    return handler.bind(handlers);
  };
}

type MetaSchemaCheck = (specification: unknown) => boolean;
const validatorPrototype = Validator.prototype as unknown as { getAjvValidator(version: string): MetaSchemaCheck };

/**
 * Runs `work` with fastify-openapi-glue's check of the spec against the OpenAPI meta-schema
 * passed (its $refs are still checked): compiling that schema took a quarter of a server
 * start's CPU (0.5 of 2.2 s), for a spec checked when its JSON copy was generated
 * (scripts/generate.ts; `npm test` fails on a spec it refuses).
 */
async function withoutMetaSchemaCheck<T>(work: () => Promise<T>): Promise<T> {
  const own = validatorPrototype.getAjvValidator;
  validatorPrototype.getAjvValidator = () => () => true;
  try {
    return await work();
  } finally {
    validatorPrototype.getAjvValidator = own;
  }
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
};
