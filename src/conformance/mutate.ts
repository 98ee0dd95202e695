// Invalid values made from valid ones, one fault at a time. Each knows the field it
// broke, so the suite can check that the server's 400 names it.
import type { Schema } from './spec-model.js';

export interface Mutation {
  /** What was broken, e.g. "below minimum". */
  fault: string;
  /** Path segments of the broken field below the root ([] for the root itself). */
  path: string[];
  value: unknown;
}

function typesOf(schema: Schema): string[] {
  if (Array.isArray(schema.type)) return schema.type;
  if (typeof schema.type === 'string') return [schema.type];
  if (schema.properties) return ['object'];
  return [];
}

/** A value of another JSON type, preferring the tricky "number as a string". */
function wrongType(types: string[], value: unknown): unknown {
  if (types.includes('integer') || types.includes('number')) return String(value);
  if (types.includes('boolean')) return String(value);
  if (types.includes('string')) return 12345;
  if (types.includes('array')) return { not: 'an array' };
  if (types.includes('object')) return 'not an object';
  return undefined;
}

/** Parameters travel as strings: only a string that is no number or boolean is a wrong type. */
function wrongParameterType(types: string[]): string | undefined {
  if (types.includes('string')) return undefined;
  if (types.includes('integer') || types.includes('number')) return 'not-a-number';
  if (types.includes('boolean')) return 'not-a-boolean';
  return undefined;
}

const BAD_FORMATS: Record<string, string> = {
  uuid: 'not-a-uuid',
  'date-time': '2026-13-45T25:61:00Z',
  uri: 'not a uri',
  'uri-reference': 'not a uri',
  date: '2026-13-45',
  email: 'not-an-email',
};

/** Faults of one field whose valid value is `value`. */
function fieldFaults(schema: Schema, value: unknown, options: { asString: boolean }): Array<Omit<Mutation, 'path'>> {
  const types = typesOf(schema);
  const faults: Array<Omit<Mutation, 'path'>> = [];
  const add = (fault: string, broken: unknown) => faults.push({ fault, value: options.asString && broken !== undefined ? String(broken) : broken });
  if (Array.isArray(schema.anyOf) || Array.isArray(schema.oneOf)) {
    add('matches no alternative', '!not-any-alternative!');
    return faults;
  }
  const other = options.asString ? wrongParameterType(types) : wrongType(types, value);
  if (other !== undefined) add('wrong type', other);
  if (!options.asString && !types.includes('null') && !('const' in schema)) add('null', null);
  if (typeof schema.minimum === 'number') add('below minimum', schema.minimum - 1);
  if (typeof schema.maximum === 'number') add('above maximum', schema.maximum + 1);
  if (types.includes('integer') && !types.includes('number')) {
    // Past 2^52 a double has no halves: value + 0.5 rounds to a whole number, which is valid.
    const fractional = (typeof value === 'number' ? value : 1) + 0.5;
    add('not an integer', Number.isInteger(fractional) ? 0.5 : fractional);
  }
  if (typeof schema.minLength === 'number' && schema.minLength > 0) add('too short', 'x'.repeat(schema.minLength - 1));
  if (typeof schema.maxLength === 'number' && schema.maxLength <= 5000) add('too long', 'x'.repeat(schema.maxLength + 1));
  if (schema.format && BAD_FORMATS[schema.format]) add(`bad ${schema.format}`, BAD_FORMATS[schema.format]);
  if (schema.pattern) add('does not match pattern', '!');
  if (Array.isArray(schema.enum)) add('not in enum', '!not-in-enum!');
  if ('const' in schema) add('not the constant', schema.const === true ? false : '!not-the-constant!');
  if (typeof schema.maxItems === 'number' && schema.maxItems <= 50 && Array.isArray(value)) {
    add('too many items', Array.from({ length: schema.maxItems + 1 }, () => value[0] ?? {}));
  }
  if (schema.uniqueItems === true && Array.isArray(value) && value.length > 0) {
    // Its first item again: appended, or in place of the last when the array is as long as it may be.
    const full = typeof schema.maxItems === 'number' && value.length >= schema.maxItems;
    if (!full) add('duplicate items', [...value, value[0]]);
    else if (value.length > 1) add('duplicate items', [...value.slice(0, -1), value[0]]);
  }
  return faults;
}

/** Every single-fault mutation of a JSON value (a body), walking into objects and arrays. */
export function mutateValue(schema: Schema, value: unknown, path: string[] = []): Mutation[] {
  const mutations = fieldFaults(schema, value, { asString: false }).map((fault) => ({ ...fault, path }));
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const record = value as Record<string, unknown>;
    const properties: Record<string, Schema> = schema.properties ?? {};
    for (const key of schema.required ?? []) {
      if (key in record) {
        const { [key]: _removed, ...rest } = record;
        mutations.push({ fault: 'missing required field', path: [...path, key], value: rest });
      }
    }
    if (schema.additionalProperties === false) {
      mutations.push({ fault: 'unknown property', path: [...path, 'unexpectedProperty'], value: { ...record, unexpectedProperty: 1 } });
    }
    for (const [key, child] of Object.entries(record)) {
      if (!properties[key]) continue;
      for (const inner of mutateValue(properties[key]!, child, [...path, key])) {
        mutations.push({ ...inner, value: { ...record, [key]: inner.value } });
      }
    }
  } else if (Array.isArray(value) && value.length > 0 && schema.items) {
    for (const inner of mutateValue(schema.items, value[0], [...path, '0'])) {
      mutations.push({ ...inner, value: [inner.value, ...value.slice(1)] });
    }
  }
  return mutations;
}

/** Single faults of a query or path parameter, whose values travel as strings. */
export function mutateParameter(schema: Schema, value: unknown): Array<Omit<Mutation, 'path'>> {
  return fieldFaults(schema, value, { asString: true });
}
