// Valid values from JSON Schemas, as fast-check arbitraries. Sizes stay small (short
// strings, few keys) so that generated values also respect limits a schema cannot say,
// such as a 10 KB bound on serialized metadata.
import fc from 'fast-check';
import type { Schema } from './spec-model.js';

const SHORT = 12;

/** http(s) URLs. fc.webUrl() costs milliseconds per value (it tokenizes as it goes): too slow for thousands. */
const label = fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789'), minLength: 1, maxLength: 10 });
const webUrl = fc
  .tuple(fc.constantFrom('http', 'https'), fc.array(label, { minLength: 1, maxLength: 3 }), fc.constantFrom('com', 'org', 'example'), fc.array(label, { maxLength: 3 }))
  .map(([scheme, host, tld, path]) => `${scheme}://${host.join('.')}.${tld}/${path.join('/')}`);

function typesOf(schema: Schema): string[] {
  if (Array.isArray(schema.type)) return schema.type;
  if (typeof schema.type === 'string') return [schema.type];
  if (schema.properties) return ['object'];
  return [];
}

function stringArbitrary(schema: Schema): fc.Arbitrary<string> {
  switch (schema.format) {
    case 'uuid':
      return fc.uuid({ version: 4 });
    case 'date-time':
      return fc
        .date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2099-12-31T23:59:59Z'), noInvalidDate: true })
        .map((date) => date.toISOString());
    case 'uri':
    case 'uri-reference':
      return webUrl;
  }
  if (schema.pattern) return fc.stringMatching(new RegExp(schema.pattern));
  const minLength = schema.minLength ?? 0;
  const maxLength = Math.min(schema.maxLength ?? minLength + SHORT, minLength + SHORT);
  return fc.string({ minLength, maxLength });
}

function objectArbitrary(schema: Schema): fc.Arbitrary<Record<string, unknown>> {
  const properties: Record<string, Schema> = schema.properties ?? {};
  if (Object.keys(properties).length === 0 && schema.additionalProperties !== false) {
    // A free-form object: a few small entries.
    return fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), fc.oneof(fc.string({ maxLength: SHORT }), fc.integer(), fc.boolean()), {
      maxKeys: 3,
    });
  }
  // A valid request leaves out deprecated properties: their successors cover them, and the two may conflict.
  const required: string[] = schema.required ?? [];
  const current = Object.entries(properties).filter(([key, value]) => value.deprecated !== true || required.includes(key));
  const model = Object.fromEntries(current.map(([key, value]) => [key, arbitraryFor(value)]));
  return fc.record(model, { requiredKeys: (schema.required ?? []).filter((key: string) => key in properties) }) as fc.Arbitrary<
    Record<string, unknown>
  >;
}

export function arbitraryFor(schema: Schema): fc.Arbitrary<unknown> {
  if ('const' in schema) return fc.constant(schema.const);
  if (Array.isArray(schema.enum)) return fc.constantFrom(...schema.enum);
  if (Array.isArray(schema.anyOf)) return fc.oneof(...schema.anyOf.map((branch: Schema) => arbitraryFor({ ...schema, anyOf: undefined, ...branch })));
  if (Array.isArray(schema.oneOf)) return fc.oneof(...schema.oneOf.map((branch: Schema) => arbitraryFor(branch)));
  const arbitraries = typesOf(schema).map((type): fc.Arbitrary<unknown> => {
    switch (type) {
      case 'string':
        return stringArbitrary(schema);
      case 'integer':
        return fc.integer({ min: schema.minimum ?? -1_000_000, max: schema.maximum ?? 1_000_000 });
      case 'number':
        return fc.double({ min: schema.minimum ?? -1e6, max: schema.maximum ?? 1e6, noNaN: true, noDefaultInfinity: true });
      case 'boolean':
        return fc.boolean();
      case 'null':
        return fc.constant(null);
      case 'array':
        return fc.array(arbitraryFor(schema.items ?? {}), {
          minLength: schema.minItems ?? 0,
          maxLength: Math.min(schema.maxItems ?? 3, (schema.minItems ?? 0) + 3),
        });
      case 'object':
        return objectArbitrary(schema);
      default:
        return fc.constant('x');
    }
  });
  return arbitraries.length === 0 ? fc.constant({}) : fc.oneof(...arbitraries);
}

const made = new Map<string, unknown[]>();

/** `count` valid values of `schema`, the same ones for the same seed (kept: building them is slow). */
export function samples(schema: Schema, count: number, seed: number): unknown[] {
  const key = `${seed}/${count}/${JSON.stringify(schema)}`;
  if (!made.has(key)) made.set(key, fc.sample(arbitraryFor(schema), { seed, numRuns: count }));
  return structuredClone(made.get(key)!);
}
