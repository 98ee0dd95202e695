// Response serializers (fast-json-stringify, Fastify's default compiler) kept per schema
// text for the process, as the request validators are (validation.ts): a second app in
// the process (the tests build hundreds) reuses them instead of compiling the spec again;
// and compiled on first use, not at start.
// And picked by status alone where the spec gives a response only as JSON.
import { SerializerSelector } from '@fastify/fast-json-stringify-compiler';
import type { FastifyInstance } from 'fastify';

type BuildSerializer = ReturnType<typeof SerializerSelector>;
type Serializer = ReturnType<ReturnType<BuildSerializer>>;

const defaultBuild = SerializerSelector();
const compiled = new Map<string, Serializer>();
/** The serializers given to routes before they were compiled, by key. */
const uncompiled = new Map<string, () => Serializer>();

/** Compiles every serializer given to a route so far (the tests: none of the spec's fails late); how many there are. */
export function compileEverySerializer(): number {
  for (const compileOnce of uncompiled.values()) compileOnce();
  return compiled.size;
}

export const buildCachedSerializer: BuildSerializer = (externalSchemas, options) => {
  const compile = defaultBuild(externalSchemas, options);
  const context = JSON.stringify([externalSchemas ?? null, options ?? null]);
  // Compiled on the first answer that needs it, as the validators are (validation.ts).
  return (route) => {
    const key = `${context}\n${JSON.stringify(route.schema)}`;
    let serialize = compiled.get(key);
    if (serialize) return serialize;
    const compileOnce = () => {
      if (!serialize && !(serialize = compiled.get(key))) compiled.set(key, (serialize = compile(route)));
      return serialize;
    };
    uncompiled.set(key, compileOnce);
    return (payload) => (serialize ?? compileOnce())(payload);
  };
};

const JSON_MEDIA_TYPE = 'application/json';

/**
 * A response the spec gives only as JSON gets its schema as the route's response schema
 * itself, not under `content`: Fastify then picks its serializer by status alone. Under
 * `content` it parsed the reply's content type on every answer to pick one (about 1 µs
 * a request in profiles). Responses with another type beside JSON (an event stream) stay.
 */
export function serializeJsonResponsesByStatus(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    const responses = route.schema?.response as Record<string, { content?: Record<string, { schema?: unknown }> }> | undefined;
    if (!responses) return;
    for (const [status, response] of Object.entries(responses)) {
      const types = Object.keys(response.content ?? {});
      const schema = response.content?.[JSON_MEDIA_TYPE]?.schema;
      if (types.length === 1 && schema !== undefined) responses[status] = schema as (typeof responses)[string];
    }
  });
}
