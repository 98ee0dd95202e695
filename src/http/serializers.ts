// Response serializers (fast-json-stringify, Fastify's default compiler), kept and compiled
// as the request validators are (compiled-on-first-use.ts).
// And picked by status alone where the spec gives a response only as JSON.
import { SerializerSelector } from '@fastify/fast-json-stringify-compiler';
import type { FastifyInstance } from 'fastify';
import { CompiledOnFirstUse } from './compiled-on-first-use.js';

type BuildSerializer = ReturnType<typeof SerializerSelector>;
type Serializer = ReturnType<ReturnType<BuildSerializer>>;

const defaultBuild = SerializerSelector();
const serializers = new CompiledOnFirstUse<Serializer>();

/** Compiles every serializer given to a route so far; how many there are. */
export const compileEverySerializer = () => serializers.compileAll();
/** Compiles one serializer no request has needed yet; false when none is left. */
export const compileNextSerializer = () => serializers.compileNext();
export const serializersWaiting = () => serializers.waiting();

export const buildCachedSerializer: BuildSerializer = (externalSchemas, options) => {
  const compile = defaultBuild(externalSchemas, options);
  const context = JSON.stringify([externalSchemas ?? null, options ?? null]);
  return (route) => {
    const key = `${context}\n${JSON.stringify(route.schema)}`;
    const ready = serializers.ready(key);
    if (ready) return ready;
    const get = serializers.onFirstUse(key, () => compile(route));
    let serialize: Serializer | undefined;
    return (payload) => (serialize ??= get())(payload);
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
