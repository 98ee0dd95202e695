// OpenAPI's `discriminator`, read by Ajv (option `discriminator: true`): a `oneOf` is judged
// by the branch its tag names, one fault reported, not every branch's. Ajv reads it only
// where each branch tags itself with a `const` or `enum`, and refuses a `mapping`.

type Node = Record<string, unknown>;

/** `schema` without discriminator mappings: with every $ref resolved the branches' own tags say the same. */
export function withoutDiscriminatorMappings(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(withoutDiscriminatorMappings);
  if (!schema || typeof schema !== 'object') return schema;
  const copy = Object.fromEntries(Object.entries(schema).map(([key, value]) => [key, withoutDiscriminatorMappings(value)])) as Node;
  if (copy.discriminator && typeof copy.discriminator === 'object') {
    const { mapping: _mapping, ...discriminator } = copy.discriminator as Node;
    copy.discriminator = discriminator;
  }
  return copy;
}

/** Whether some schema in `node` is a `oneOf` with a discriminator. */
export function hasDiscriminator(node: unknown): boolean {
  if (!node || typeof node !== 'object') return false;
  const { discriminator, oneOf } = node as Node;
  if (discriminator && typeof discriminator === 'object' && Array.isArray(oneOf)) return true;
  return Object.values(node).some(hasDiscriminator);
}

/** Whether Ajv refused a schema for its discriminator: it is then read as a plain `oneOf`. */
export const refusedForDiscriminator = (error: unknown) => /discriminator/.test(String((error as Error | undefined)?.message ?? error));
