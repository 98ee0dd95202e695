// Response serializers (fast-json-stringify, Fastify's default compiler) kept per schema
// text for the process, as the request validators are (validation.ts): a second app in
// the process (the tests build hundreds) reuses them instead of compiling the spec again.
import { SerializerSelector } from '@fastify/fast-json-stringify-compiler';

type BuildSerializer = ReturnType<typeof SerializerSelector>;
type Serializer = ReturnType<ReturnType<BuildSerializer>>;

const defaultBuild = SerializerSelector();
const compiled = new Map<string, Serializer>();

export const buildCachedSerializer: BuildSerializer = (externalSchemas, options) => {
  const compile = defaultBuild(externalSchemas, options);
  const context = JSON.stringify([externalSchemas ?? null, options ?? null]);
  return (route) => {
    const key = `${context}\n${JSON.stringify(route.schema)}`;
    let serialize = compiled.get(key);
    if (!serialize) compiled.set(key, (serialize = compile(route)));
    return serialize;
  };
};
