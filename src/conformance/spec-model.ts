// The spec as the suite sees it: operations with their parameters, body and responses,
// every $ref resolved (in the file, or in files beside it). Read at run time, so a new
// operation is covered unchanged.
import { readFileSync } from 'node:fs';
import { dirname, resolve as resolvePath } from 'node:path';
import { parse } from 'yaml';

export type Schema = Record<string, any>;

/** Marks where a recursive schema was cut (an unknown keyword: validators accept anything there). */
export const RECURSION = 'x-conformance-recursion';

export interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header' | 'cookie';
  required: boolean;
  schema: Schema;
  /** An array in the query as `a=1&a=2` (OpenAPI's default, `style: form`, `explode: true`), else `a=1,2`. */
  explode: boolean;
  /** How a query value is written (OpenAPI's `style`); absent: `form`. */
  style?: 'form' | 'spaceDelimited' | 'pipeDelimited' | 'deepObject';
}

export interface Operation {
  operationId: string;
  method: string;
  path: string;
  parameters: Parameter[];
  body?: { required: boolean; schema: Schema };
  /** Status code (or `4XX`, `default`) → what the answer may carry. */
  responses: Record<string, ResponseModel>;
  /** The spec requires credentials for it (`security`, its own or the document's, with no empty alternative). */
  secured: boolean;
}

export interface ResponseModel {
  /** Documented media types; empty when the response has no body. */
  contentTypes: string[];
  /** The JSON schema of the body, when a JSON media type is documented with one (the first such). */
  schema?: Schema;
  /** Each JSON media type's schema, by the type without its parameters, in lower case: the one a body is checked against is its own type's. */
  schemas: Record<string, Schema>;
  /** The schema of each frame's data, when `text/event-stream` is documented with one (an array's items). */
  events?: Schema;
  /** Documented headers by lower-case name (Content-Type aside: OpenAPI ignores it there). */
  headers: Record<string, ResponseHeader>;
}

export interface ResponseHeader {
  /** As the document spells it. */
  name: string;
  required: boolean;
  schema: Schema;
  /** Its documented example (the header's own, else its first named one, else its schema's). */
  example?: unknown;
  /** Described with `content` (a JSON media type): the value is JSON text. */
  json?: true;
}

function responseHeaders(headers: Schema | undefined): Record<string, ResponseHeader> {
  const entries = Object.entries<Schema>(headers ?? {})
    .filter(([name]) => name.toLowerCase() !== 'content-type')
    .map(([name, header]): [string, ResponseHeader] => {
      const json = header.schema === undefined && jsonEntry(header.content) !== undefined;
      const schema = responseSchema(header.schema ?? jsonEntry(header.content)?.schema) ?? {};
      const named = Object.values<Schema>(header.examples ?? {}).find((example) => example && 'value' in example);
      const example = header.example ?? named?.value ?? schema.example ?? schema.examples?.[0];
      return [name.toLowerCase(), { name, required: header.required === true, schema, ...(example === undefined ? {} : { example }), ...(json ? { json: true as const } : {}) }];
    });
  return Object.fromEntries(entries);
}

/** application/json and its `+json` relatives (problem+json, vnd.x+json). */
export const isJsonMediaType = (type: string) => /^application\/(?:[\w.-]+\+)?json\b/i.test(type.trim());

/** The keys of a path item that are operations (OpenAPI 3.x). */
export const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'options', 'head', 'trace'];

/**
 * The node a JSON pointer (`/components/schemas/Session`, the part of a $ref after `#`)
 * names in `root` (RFC 6901: `~1` is `/`, `~0` is `~`; `/` alone names the key ""), the
 * pointer percent-decoded first, as a URI fragment is.
 */
export const atPointer = (root: unknown, pointer: string): unknown =>
  pointer === ''
    ? root
    : pointer
        .slice(1)
        .split('/')
        .reduce<any>((node, key) => node?.[decodeURIComponent(key).replace(/~1/g, '/').replace(/~0/g, '~')], root);

/** A $ref target with a URL scheme (`https:`): fetched from the network, where it is open. */
export const isRemoteRef = (target: string) => /^[a-z][a-z0-9+.-]*:/i.test(target);

/**
 * Resolves every $ref into a tree (siblings of $ref, as 3.1 allows, are kept): `#/…` in
 * the same file, and `other.yaml#/…` or `other.yaml` in files beside it (relative to the
 * file the ref is in). A ref that names nothing is an error, not "accept anything": an
 * unresolved schema would let any answer pass. Remote refs (http:) are refused.
 */
function resolveRefs(document: Schema, path: string, prepare: (document: Schema) => Schema): Schema {
  const documents = new Map<string, Schema>([[resolvePath(path), document]]);
  const documentAt = (file: string, ref: string): Schema => {
    if (!documents.has(file)) {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (error) {
        throw new Error(`$ref ${ref}: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
      }
      documents.set(file, prepare(parsedCopy(text) as Schema));
    }
    return documents.get(file)!;
  };
  const walk = (node: unknown, file: string, seen: string[]): unknown => {
    if (Array.isArray(node)) return node.map((item) => walk(item, file, seen));
    if (!node || typeof node !== 'object') return node;
    const { $ref, ...rest } = node as Schema;
    if (typeof $ref !== 'string') return Object.fromEntries(Object.entries(rest).map(([key, value]) => [key, walk(value, file, seen)]));
    const hash = $ref.indexOf('#');
    const target = hash < 0 ? $ref : $ref.slice(0, hash);
    const pointer = hash < 0 ? '' : $ref.slice(hash + 1);
    if (isRemoteRef(target)) throw new Error(`$ref ${$ref}: remote references are not followed; bundle the document first (e.g. redocly bundle)`);
    const targetFile = target === '' ? file : resolvePath(dirname(file), target);
    const key = `${targetFile}#${pointer}`;
    // A recursive schema: stop here, accept anything (the generator makes no more levels of it).
    if (seen.includes(key)) return { [RECURSION]: true };
    const found = atPointer(documentAt(targetFile, $ref), pointer);
    if (found === undefined) throw new Error(`$ref ${$ref} in ${file} names nothing`);
    return { ...(walk(found, targetFile, [...seen, key]) as Schema), ...(walk(rest, file, seen) as Schema) };
  };
  return walk(document, resolvePath(path), []) as Schema;
}

/**
 * A schema as one direction of the exchange sees it: a request leaves out `readOnly`
 * properties (the server sets them), and an answer need not carry `writeOnly` ones (a
 * password, say); each is then required only where it travels.
 */
function forDirection(schema: unknown, direction: 'request' | 'response'): unknown {
  if (Array.isArray(schema)) return schema.map((item) => forDirection(item, direction));
  if (!schema || typeof schema !== 'object') return schema;
  const copy: Schema = Object.fromEntries(Object.entries(schema).map(([key, value]) => [key, key === 'properties' ? value : forDirection(value, direction)]));
  if (copy.properties && typeof copy.properties === 'object') {
    const skipped = Object.entries<Schema>(copy.properties).filter(([, property]) => (direction === 'request' ? property?.readOnly : property?.writeOnly) === true).map(([name]) => name);
    const kept = Object.entries<Schema>(copy.properties).filter(([name]) => direction === 'response' || !skipped.includes(name));
    copy.properties = Object.fromEntries(kept.map(([name, property]) => [name, forDirection(property, direction)]));
    if (Array.isArray(copy.required)) copy.required = copy.required.filter((name: string) => !skipped.includes(name));
  }
  return copy;
}

const responseSchema = (schema: Schema | undefined) => schema && (forDirection(schema, 'response') as Schema);

/** A media type as a response's Content-Type is compared with it: without parameters, in lower case. */
export const bareMediaType = (type: string) => type.split(';')[0]!.trim().toLowerCase();

/** The schema of each JSON media type documented with one. */
function jsonSchemas(content: Schema | undefined): Record<string, Schema> {
  const entries = Object.entries<Schema>(content ?? {}).filter(([type, entry]) => isJsonMediaType(type) && entry?.schema !== undefined);
  return Object.fromEntries(entries.map(([type, entry]) => [bareMediaType(type), responseSchema(entry.schema)!]));
}

function jsonEntry(content: Schema | undefined): Schema | undefined {
  const type = Object.keys(content ?? {}).find(isJsonMediaType);
  return type ? content![type] : undefined;
}

/** The schema of each frame's data in a `text/event-stream` answer: an array's items, else the schema itself. */
function frameSchema(schema: Schema | undefined): Schema | undefined {
  if (!schema) return undefined;
  return schema.type === 'array' ? (schema.items ?? {}) : schema;
}

/** The documented response for a status: exact, then its range (`4XX`), then `default`. */
export function responseFor(operation: Operation, status: number): ResponseModel | undefined {
  return operation.responses[String(status)] ?? operation.responses[`${String(status)[0]}XX`] ?? operation.responses.default;
}

/** The Sessions API's own spec (or a later version of it): its specific flows apply. */
export function isSessionsSpec(spec: SpecModel): boolean {
  const ids = new Set(spec.operations.map((operation) => operation.operationId));
  return ['createAgent', 'deleteAgent', 'createSession', 'getSession', 'sendSessionMessage', 'getSessionMessages'].every((id) => ids.has(id));
}

export interface SpecModel {
  document: Schema;
  /** Request/answer operations: every case runs against them. */
  operations: Operation[];
  /** Streams of Server-Sent Events (200 `text/event-stream`): checked by the stream flows only. */
  streams: Operation[];
}

/** OpenAPI 3.0 schema keywords in their JSON Schema 2020-12 form (`nullable`, boolean exclusive bounds). */
function normalize30(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(normalize30);
  if (!node || typeof node !== 'object') return node;
  const copy: Schema = Object.fromEntries(Object.entries(node).map(([key, value]) => [key, normalize30(value)]));
  if (copy.nullable === true && typeof copy.type === 'string') copy.type = [copy.type, 'null'];
  for (const [flag, bound] of [['exclusiveMinimum', 'minimum'], ['exclusiveMaximum', 'maximum']] as const) {
    if (typeof copy[flag] === 'boolean') {
      if (copy[flag] && typeof copy[bound] === 'number') copy[flag] = copy[bound];
      else delete copy[flag];
      if (typeof copy[flag] === 'number') delete copy[bound];
    }
  }
  return copy;
}

// Documents parsed, by their text: a process that runs the suite many times (the tests)
// parses each spec once; parsing a large YAML document takes a noticeable fraction of a second.
const parsedDocuments = new Map<string, unknown>();

function parsedCopy(text: string): Schema | null {
  // `<<: *anchor` merges the anchored mapping (YAML 1.1 merge keys, common in OpenAPI documents).
  if (!parsedDocuments.has(text)) parsedDocuments.set(text, parse(text, { merge: true }));
  return structuredClone(parsedDocuments.get(text)) as Schema | null;
}

export function loadSpec(path: string): SpecModel {
  const raw = parsedCopy(readFileSync(path, 'utf8'));
  if (!raw || typeof raw.openapi !== 'string' || !raw.openapi.startsWith('3.')) {
    throw new Error(`${path} is not an OpenAPI 3.x document (no "openapi: 3.x" field)`);
  }
  const prepare = (document: Schema) => (raw.openapi.startsWith('3.0') ? normalize30(document) : document) as Schema;
  const document = resolveRefs(prepare(raw), path, prepare);
  const operations: Operation[] = [];
  const streams: Operation[] = [];
  for (const [path, item] of Object.entries<Schema>(document.paths ?? {})) {
    for (const method of METHODS) {
      const operation = item[method];
      if (!operation) continue;
      // A stream of Server-Sent Events never ends: not a request/answer exchange; the stream flows check it.
      const stream = operation.responses?.['200']?.content?.['text/event-stream'];
      const parameters = [...(item.parameters ?? []), ...(operation.parameters ?? [])].map((p: Schema) => ({
        name: p.name,
        in: p.in,
        required: p.required === true,
        schema: p.schema ?? {},
        explode: p.explode ?? (p.style === undefined || p.style === 'form'),
        style: ['spaceDelimited', 'pipeDelimited', 'deepObject'].includes(p.style) ? p.style : 'form',
      }));
      const requestSchema = jsonEntry(operation.requestBody?.content)?.schema;
      const bodySchema = requestSchema && (forDirection(requestSchema, 'request') as Schema);
      const security: unknown = operation.security ?? document.security;
      const secured = Array.isArray(security) && security.length > 0 && security.every((requirement) => requirement && Object.keys(requirement).length > 0);
      (stream ? streams : operations).push({
        secured,
        operationId: operation.operationId ?? `${method.toUpperCase()} ${path}`,
        method: method.toUpperCase(),
        path,
        parameters,
        body: bodySchema ? { required: operation.requestBody.required === true, schema: bodySchema } : undefined,
        responses: Object.fromEntries(
          Object.entries<Schema>(operation.responses ?? {}).map(([status, response]) => [
            status.toUpperCase() === 'DEFAULT' ? 'default' : status.toUpperCase(),
            {
              contentTypes: Object.keys(response.content ?? {}),
              schema: responseSchema(jsonEntry(response.content)?.schema),
              schemas: jsonSchemas(response.content),
              events: responseSchema(frameSchema(response.content?.['text/event-stream']?.schema)),
              headers: responseHeaders(response.headers),
            },
          ]),
        ),
      });
    }
  }
  return { document, operations, streams };
}
