// The schemas the spec gives the API's routes, as the server compiles them: on first use
// (validation.ts, serializers.ts), one a turn from a second after a server listens, all at once when asked
// (npm run generate; a start from a spec edited since its JSON copy was written). Apart from api-plugin.ts, so that
// `npm run generate` compiles them without the handlers, which it may be about to write.
import { Validator } from '@seriousme/openapi-schema-validator';
import Fastify from 'fastify';
import openapiGlue from 'fastify-openapi-glue';
import { apiSpecification } from '../spec.js';
import { compileInTurns } from './compiled-on-first-use.js';
import { buildCachedSerializer, compileEverySerializer, compileNextSerializer, serializeJsonResponsesByStatus, serializersWaiting } from './serializers.js';
import { compileEveryValidator, compileNextValidator, installValidators, validatorsWaiting } from './validation.js';

type MetaSchemaCheck = (specification: unknown) => boolean;
const validatorPrototype = Validator.prototype as unknown as { getAjvValidator(version: string): MetaSchemaCheck };

/**
 * Runs `work` with fastify-openapi-glue's check of the spec against the OpenAPI meta-schema
 * passed (its $refs are still checked): compiling that schema took a quarter of a server
 * start's CPU (0.5 of 2.2 s), for a spec checked when its JSON copy was generated
 * (scripts/generate.ts; `npm test` fails on a spec it refuses).
 */
export async function withoutMetaSchemaCheck<T>(work: () => Promise<T>): Promise<T> {
  const own = validatorPrototype.getAjvValidator;
  validatorPrototype.getAjvValidator = () => () => true;
  try {
    return await work();
  } finally {
    validatorPrototype.getAjvValidator = own;
  }
}

/** Compiles now every validator and serializer given to a route so far: one its compiler refuses throws, naming why. */
export function compileRouteSchemas(): void {
  try {
    compileEveryValidator();
    compileEverySerializer();
  } catch (error) {
    throw new Error(`a schema of the spec does not compile: ${(error as Error).message}`);
  }
}

/** How many validators and serializers given to routes are not compiled yet. */
export const routeSchemasWaiting = () => validatorsWaiting() + serializersWaiting();

/**
 * Compiles the validators and serializers no request has needed yet, one a turn: once a
 * server listens, so that the first request to a route does not wait 0.1-0.3 s for its
 * schemas, nor does the server's start.
 */
export const compileRouteSchemasInTurns = () => compileInTurns(compileNextValidator, compileNextSerializer);

/**
 * Every schema the spec gives the API's routes, compiled as the server compiles them (routes
 * with no handlers): `npm run generate` writes the spec's JSON copy only when this passes.
 */
export async function compileSpecRouteSchemas(): Promise<void> {
  const app = Fastify({ logger: false, schemaController: { compilersFactory: { buildSerializer: buildCachedSerializer } } });
  installValidators(app);
  serializeJsonResponsesByStatus(app);
  await withoutMetaSchemaCheck(async () => {
    await app.register(openapiGlue, { specification: apiSpecification(), operationResolver: () => async () => ({}) });
  });
  try {
    await app.ready();
    compileRouteSchemas();
  } finally {
    await app.close();
  }
}
