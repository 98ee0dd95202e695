// Bodies for answers with no example. openapi-backend's generator writes readable values
// (a schema's own examples and defaults) but breaks 3.1 type lists ([string, null]),
// exclusive bounds and patterns, and fills in writeOnly properties (a password in an
// answer). Its body loses those properties and, if it still breaks the document, is
// replaced by one the conformance suite's generator makes, which honours them.
import { ResponseChecker } from '../conformance/check.js';
import { samples } from '../conformance/generate.js';
import { type Operation, type Schema, type SpecModel, loadSpec, responseFor } from '../conformance/spec-model.js';

/** The same body for the same answer, run after run. */
const SEED = 1;

/** `value` without the properties `schema` marks writeOnly, at any depth. */
function withoutWriteOnly(schema: Schema | undefined, value: unknown): unknown {
  if (!schema || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return schema.items ? value.map((item) => withoutWriteOnly(schema.items, item)) : value;
  let copy = value as Record<string, unknown>;
  for (const branch of [...(schema.allOf ?? []), ...(schema.anyOf ?? []), ...(schema.oneOf ?? [])] as Schema[]) copy = withoutWriteOnly(branch, copy) as Record<string, unknown>;
  const properties = (schema.properties ?? {}) as Record<string, Schema>;
  const result: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(copy)) {
    const property = properties[key];
    if (property?.writeOnly === true) continue;
    result[key] = withoutWriteOnly(property, item);
  }
  return result;
}

export interface SchemaBodies {
  /** The body to send for `operationId`'s `status` answer, given openapi-backend's (for an event stream, its frames' data). */
  fixed(operationId: string, status: number, mediaType: string, generated: unknown): unknown;
  /** Whether `body` is valid for `operationId`'s `status` answer (true where the document gives no schema). */
  fits(operationId: string, status: number, mediaType: string, body: unknown): boolean;
}

export function schemaBodies(specPath: string): SchemaBodies {
  let model: SpecModel | undefined;
  try {
    model = loadSpec(specPath);
  } catch {
    // A document the suite's reader refuses (a remote $ref, say) is still served: its bodies as generated.
  }
  const operations = new Map<string, Operation>([...(model?.operations ?? []), ...(model?.streams ?? [])].map((operation) => [operation.operationId, operation]));
  const checker = new ResponseChecker();
  return {
    fits(operationId, status, mediaType, body) {
      const operation = operations.get(operationId);
      if (!operation || !responseFor(operation, status)?.schema) return true;
      return checker.violations(operation, { status, contentType: mediaType, text: '', json: body }).length === 0;
    },
    fixed(operationId, status, mediaType, generated) {
      const operation = operations.get(operationId);
      if (mediaType === 'text/event-stream') {
        // Each item a frame's data: kept if each honours the frame schema, else all made anew.
        const events = operation && responseFor(operation, status)?.events;
        if (!events) return generated;
        const items = (Array.isArray(generated) ? generated : [generated]).map((item) => withoutWriteOnly(events, item));
        if (items.every((item) => checker.honours(events, item))) return items;
        return samples(events, Math.max(items.length, 1), SEED).map((item) => withoutWriteOnly(events, item));
      }
      const schema = operation && responseFor(operation, status)?.schema;
      if (!operation || !schema) return generated;
      const body = withoutWriteOnly(schema, generated);
      const answer = { status, contentType: mediaType, text: '', json: body };
      if (checker.violations(operation, answer).length === 0) return body;
      return withoutWriteOnly(schema, samples(schema, 1, SEED)[0]);
    },
  };
}
