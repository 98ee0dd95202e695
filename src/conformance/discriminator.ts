// OpenAPI's `discriminator`, read by Ajv (option `discriminator: true`): a `oneOf` is judged
// by the branch its tag names, one fault reported, not every branch's. Ajv reads one only
// where each branch tags itself with a `const` or `enum`, and refuses a `mapping`: each
// discriminator is kept where Ajv reads it, else dropped (that `oneOf` judged plainly).
import { Ajv2020 } from 'ajv/dist/2020.js';

type Node = Record<string, unknown>;

const isDiscriminator = (value: unknown): value is Node => !!value && typeof value === 'object' && typeof (value as Node).propertyName === 'string';

/**
 * A tester of one schema at a time: formats and unknown keywords are not its concern, nor
 * the meta-schema (whether it reads a discriminator is decided as it compiles).
 */
const tester = new Ajv2020({ strict: false, validateFormats: false, validateSchema: false, discriminator: true, logger: false, addUsedSchema: false });

/** By schema text: a resolved document holds a copy of a schema at each place that refers to it (R43: 1 s of a load). */
const decided = new Map<string, boolean>();

function readsAlone(schema: Node): boolean {
  const text = JSON.stringify(schema);
  let reads = decided.get(text);
  if (reads === undefined) {
    try {
      tester.compile(schema);
      reads = true;
    } catch {
      reads = false;
    } finally {
      tester.removeSchema(schema); // no cache of every schema ever tried
    }
    decided.set(text, reads);
  }
  return reads;
}

/**
 * `schema` (a tree: every $ref resolved) with each discriminator's mapping left out (the
 * branches' own tags say the same), and a discriminator Ajv cannot read left out whole.
 * Inner schemas are decided first.
 */
export function readableDiscriminators(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(readableDiscriminators);
  if (!schema || typeof schema !== 'object') return schema;
  const copy = Object.fromEntries(Object.entries(schema).map(([key, value]) => [key, readableDiscriminators(value)])) as Node;
  if (!isDiscriminator(copy.discriminator)) return copy;
  const { mapping: _mapping, ...discriminator } = copy.discriminator;
  copy.discriminator = discriminator;
  if (readsAlone(copy)) return copy;
  const { discriminator: _unread, ...plain } = copy;
  return plain;
}
