// The spec as the suite sees it: operations with their parameters, body and responses,
// every local $ref resolved. Read at run time, so a new operation is covered unchanged.
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

export type Schema = Record<string, any>;

export interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header' | 'cookie';
  required: boolean;
  schema: Schema;
}

export interface Operation {
  operationId: string;
  method: string;
  path: string;
  parameters: Parameter[];
  body?: { required: boolean; schema: Schema };
  /** Status code → JSON schema of the body (undefined when the response has no JSON body). */
  responses: Record<string, Schema | undefined>;
}

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'options', 'head', 'trace'];

/** Resolves local `#/…` refs into a tree (siblings of $ref, as 3.1 allows, are kept). */
function resolveRefs(document: Schema): Schema {
  const lookup = (ref: string): unknown =>
    ref
      .slice(2)
      .split('/')
      .reduce<any>((node, key) => node?.[key.replace(/~1/g, '/').replace(/~0/g, '~')], document);
  const walk = (node: unknown, seen: string[]): unknown => {
    if (Array.isArray(node)) return node.map((item) => walk(item, seen));
    if (!node || typeof node !== 'object') return node;
    const { $ref, ...rest } = node as Schema;
    if (typeof $ref === 'string' && $ref.startsWith('#/')) {
      if (seen.includes($ref)) return {}; // a recursive schema: stop here, accept anything
      const target = walk(lookup($ref), [...seen, $ref]) as Schema;
      return { ...target, ...(walk(rest, seen) as Schema) };
    }
    return Object.fromEntries(Object.entries(rest).map(([key, value]) => [key, walk(value, seen)]));
  };
  return walk(document, []) as Schema;
}

export interface SpecModel {
  document: Schema;
  operations: Operation[];
}

export function loadSpec(path: string): SpecModel {
  const document = resolveRefs(parse(readFileSync(path, 'utf8')));
  const operations: Operation[] = [];
  for (const [path, item] of Object.entries<Schema>(document.paths ?? {})) {
    for (const method of METHODS) {
      const operation = item[method];
      if (!operation) continue;
      // A stream of Server-Sent Events never ends: not a request/answer exchange to check here.
      if (operation.responses?.['200']?.content?.['text/event-stream']) continue;
      const parameters = [...(item.parameters ?? []), ...(operation.parameters ?? [])].map((p: Schema) => ({
        name: p.name,
        in: p.in,
        required: p.required === true,
        schema: p.schema ?? {},
      }));
      const bodySchema = operation.requestBody?.content?.['application/json']?.schema;
      operations.push({
        operationId: operation.operationId ?? `${method.toUpperCase()} ${path}`,
        method: method.toUpperCase(),
        path,
        parameters,
        body: bodySchema ? { required: operation.requestBody.required === true, schema: bodySchema } : undefined,
        responses: Object.fromEntries(
          Object.entries<Schema>(operation.responses ?? {}).map(([status, response]) => [
            status,
            response.content?.['application/json']?.schema,
          ]),
        ),
      });
    }
  }
  return { document, operations };
}
