// Valid values from JSON Schemas, as fast-check arbitraries. Sizes stay small (short
// strings, few keys) so that generated values also respect limits a schema cannot say,
// such as a 10 KB bound on serialized metadata.
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import ajvFormats from 'ajv-formats';
import fc from 'fast-check';
import { RECURSION, type Schema } from './spec-model.js';

const SHORT = 12;
/** Strings a pattern makes for one value, so that one fits the value's length bounds. */
const PATTERN_TRIES = 20;

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
    case 'date':
      return fc
        .date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2099-12-31T23:59:59Z'), noInvalidDate: true })
        .map((date) => date.toISOString().slice(0, 10));
    case 'email':
      return fc.tuple(fc.stringMatching(/^[a-z][a-z0-9]{0,11}$/), fc.constantFrom('example.com', 'example.org', 'mail.example.net')).map(([local, domain]) => `${local}@${domain}`);
    case 'uri':
    case 'uri-reference':
      return webUrl;
    case 'ipv4':
      return fc.ipV4();
    case 'ipv6':
      return fc.ipV6();
    case 'hostname':
      return fc.domain();
    case 'time':
      return fc.tuple(fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 59 }), fc.integer({ min: 0, max: 59 })).map((parts) => `${parts.map((n) => String(n).padStart(2, '0')).join(':')}Z`);
  }
  const minLength = schema.minLength ?? 0;
  if (schema.pattern) {
    // A pattern's strings within the length bounds: the first of a few that fits (a
    // filter would retry without end on a pattern whose strings never fit).
    const fits = (value: string) => value.length >= minLength && value.length <= (schema.maxLength ?? Infinity);
    return fc.array(fc.stringMatching(new RegExp(schema.pattern), { size: 'xsmall' }), { minLength: PATTERN_TRIES, maxLength: PATTERN_TRIES }).map((tries) => tries.find(fits) ?? tries[0]!);
  }
  const maxLength = Math.min(schema.maxLength ?? minLength + SHORT, minLength + SHORT);
  return fc.string({ minLength, maxLength });
}

function objectArbitrary(schema: Schema): fc.Arbitrary<Record<string, unknown>> {
  const properties: Record<string, Schema> = schema.properties ?? {};
  if (Object.keys(properties).length === 0 && schema.additionalProperties !== false) {
    // A free-form object: a few small entries, of the schema its additional properties have.
    const values = typeof schema.additionalProperties === 'object' ? arbitraryFor(schema.additionalProperties) : fc.oneof(fc.string({ maxLength: SHORT }), fc.integer(), fc.boolean());
    const minKeys = schema.minProperties ?? 0;
    return fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), values, { minKeys, maxKeys: Math.max(minKeys, Math.min(schema.maxProperties ?? 3, 3)) });
  }
  // A valid request leaves out deprecated properties (their successors cover them, and the
  // two may conflict) and optional ones that recurse (a tree stops at its first level).
  const required: string[] = schema.required ?? [];
  const current = Object.entries(properties).filter(([key, value]) => required.includes(key) || (value.deprecated !== true && value[RECURSION] !== true));
  const model = Object.fromEntries(current.map(([key, value]) => [key, arbitraryFor(value)]));
  return fc.record(model, { requiredKeys: (schema.required ?? []).filter((key: string) => key in properties) }) as fc.Arbitrary<
    Record<string, unknown>
  >;
}

/** The bounds of a number schema: inclusive ones, and exclusive ones as 2020-12 writes them (numbers). */
function bounds(schema: Schema): { min?: number; max?: number; minExcluded: boolean; maxExcluded: boolean } {
  const lower = typeof schema.exclusiveMinimum === 'number' && (schema.minimum === undefined || schema.exclusiveMinimum >= schema.minimum);
  const upper = typeof schema.exclusiveMaximum === 'number' && (schema.maximum === undefined || schema.exclusiveMaximum <= schema.maximum);
  return {
    min: lower ? schema.exclusiveMinimum : schema.minimum,
    max: upper ? schema.exclusiveMaximum : schema.maximum,
    minExcluded: lower,
    maxExcluded: upper,
  };
}

/** Values up to a million either side of the bound given (a Unix time as `minimum` included), ±1e6 when none is. */
function withinReach({ min, max, ...excluded }: ReturnType<typeof bounds>): { min: number; max: number; minExcluded: boolean; maxExcluded: boolean } {
  const REACH = 1_000_000;
  return { min: min ?? Math.min(-REACH, (max ?? 0) - REACH), max: max ?? Math.max(REACH, (min ?? 0) + REACH), ...excluded };
}

/** The nearest whole numbers of steps tried for a product a validator takes as a multiple. */
const NEIGHBOURS = [0, 1, -1, 2, -2, 3, -3, 4, -4, 5, -5];

/**
 * `multipleOf`: k × step for the whole k whose products lie within the bounds (strictly
 * beyond an excluded one); undefined when the schema has none. A product is kept as a
 * validator judges it, value / step a whole number (3 × 0.1 is 0.30000000000000004, no
 * multiple of 0.1 to Ajv, nor is 0.3): else the nearest k whose product is one.
 */
function multiplesIn(step: unknown, low: number, high: number, lowExcluded = false, highExcluded = false): fc.Arbitrary<number> | undefined {
  if (typeof step !== 'number' || !(step > 0)) return undefined;
  const first = lowExcluded ? Math.floor(low / step) + 1 : Math.ceil(low / step);
  const last = highExcluded ? Math.ceil(high / step) - 1 : Math.floor(high / step);
  if (last < first) return undefined;
  const exact = (k: number) => k >= first && k <= last && Number.isInteger((k * step) / step);
  return fc.integer({ min: first, max: last }).map((k) => (k + (NEIGHBOURS.find((d) => exact(k + d)) ?? 0)) * step);
}

/** allOf's branches as one schema: properties and required lists joined, other keywords the last branch's. */
function joinedAllOf(schema: Schema): Schema {
  const { allOf, ...rest } = schema;
  const joined: Schema = { ...rest };
  for (const branch of allOf as Schema[]) {
    const merged = { ...joined, ...branch };
    merged.properties = { ...joined.properties, ...branch.properties };
    merged.required = [...new Set([...(joined.required ?? []), ...(branch.required ?? [])])];
    Object.assign(joined, merged);
  }
  if (Object.keys(joined.properties ?? {}).length === 0) delete joined.properties;
  if ((joined.required ?? []).length === 0) delete joined.required;
  return joined;
}

/** A tester of one branch at a time: unknown keywords (OpenAPI's own) are not its concern. */
const tester = new Ajv2020({ strict: false, logger: false, addUsedSchema: false });
ajvFormats.default(tester);
const testers = new WeakMap<Schema, ValidateFunction | null>();

/** Whether `value` matches `schema`; undefined when Ajv cannot read the schema alone, or it is a cut recursion (which holds anything). */
function matches(schema: Schema, value: unknown): boolean | undefined {
  if (schema[RECURSION] === true) return undefined;
  if (!testers.has(schema)) {
    try {
      testers.set(schema, tester.compile(schema));
    } catch {
      testers.set(schema, null);
    }
  }
  const validate = testers.get(schema);
  return validate ? validate(value) : undefined;
}

/** Values of a `oneOf`'s branches tried for one that matches its branch alone. */
const ONE_OF_TRIES = 30;

/**
 * `oneOf`: a value of one branch that matches no other (one matching two is invalid: an
 * integer for `oneOf: [number, integer]`), from a few tries of the branches (a filter
 * would retry without end on branches whose values all match another); the first try
 * when none does (branches that leave no value to one alone).
 */
function oneOfArbitrary(branches: Schema[]): fc.Arbitrary<unknown> {
  // A branch where the recursion was cut holds anything: its values ({}) are none of the
  // real schema's. Drawn from only when no other branch is left (a tree stops there).
  const drawn = branches.some((branch) => branch[RECURSION] !== true) ? branches.filter((branch) => branch[RECURSION] !== true) : branches;
  const tagged = drawn.map((branch) => arbitraryFor(branch).map((value) => ({ value, index: branches.indexOf(branch) })));
  const alone = ({ value, index }: { value: unknown; index: number }) => !branches.some((other, at) => at !== index && matches(other, value) === true);
  return fc.array(fc.oneof(...tagged), { minLength: ONE_OF_TRIES, maxLength: ONE_OF_TRIES }).map((tries) => (tries.find(alone) ?? tries[0]!).value);
}

function arbitraryFor(schema: Schema): fc.Arbitrary<unknown> {
  if (Array.isArray(schema.allOf)) return arbitraryFor(joinedAllOf(schema));
  if ('const' in schema) return fc.constant(schema.const);
  if (Array.isArray(schema.enum)) return fc.constantFrom(...schema.enum);
  if (Array.isArray(schema.anyOf)) return fc.oneof(...schema.anyOf.map((branch: Schema) => arbitraryFor({ ...schema, anyOf: undefined, ...branch })));
  if (Array.isArray(schema.oneOf)) return oneOfArbitrary(schema.oneOf);
  const arbitraries = typesOf(schema).map((type): fc.Arbitrary<unknown> => {
    switch (type) {
      case 'string':
        return stringArbitrary(schema);
      case 'integer': {
        const { min, max, minExcluded, maxExcluded } = withinReach(bounds(schema));
        const low = Math.floor(min) + (minExcluded || !Number.isInteger(min) ? 1 : 0);
        const high = Math.ceil(max) - (maxExcluded || !Number.isInteger(max) ? 1 : 0);
        return multiplesIn(schema.multipleOf, low, high) ?? fc.integer({ min: low, max: high });
      }
      case 'number': {
        const { min, max, minExcluded, maxExcluded } = withinReach(bounds(schema));
        return (
          multiplesIn(schema.multipleOf, min, max, minExcluded, maxExcluded) ??
          fc.double({ min, max, minExcluded, maxExcluded, noNaN: true, noDefaultInfinity: true })
        );
      }
      case 'boolean':
        return fc.boolean();
      case 'null':
        return fc.constant(null);
      case 'array': {
        if (schema.items?.[RECURSION] === true && (schema.minItems ?? 0) === 0) return fc.constant([]);
        const lengths = { minLength: schema.minItems ?? 0, maxLength: Math.min(schema.maxItems ?? 3, (schema.minItems ?? 0) + 3) };
        const items = arbitraryFor(schema.items ?? {});
        return schema.uniqueItems === true ? fc.uniqueArray(items, { ...lengths, selector: (item) => JSON.stringify(item) }) : fc.array(items, lengths);
      }
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
