// The OpenAPI document: where it lives, what operations it declares, and validators
// compiled from its schemas, so that each rule is written once (in the spec).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { addFormats } from './json-formats.js';
import { specPath } from './spec-path.js';
import type { components } from '../generated/api.js';

export { specPath };

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

export interface SpecOperation {
  operationId: string;
  method: string;
  path: string;
  bodyRequired: boolean;
  /** `x-operational: true`: served by the operational routes (src/ops), not by a handler. */
  operational: boolean;
  /** The statuses its responses document ('200', '404', …). */
  statuses: string[];
  /** A response of it is a stream of Server-Sent Events (it may hold its request open). */
  streams: boolean;
  /** Its parameters, path-level and its own (which override those of the same name and place), $refs resolved. */
  parameters: SpecParameter[];
  /** Its own `security`, when it has one. */
  security?: unknown[];
  /** `x-admin-only: true`: a key bound to agents gets 403. */
  adminOnly: boolean;
}

export interface SpecParameter {
  name: string;
  in: string;
  schema?: { $ref?: string; default?: unknown };
}

interface OperationObject {
  operationId?: string;
  requestBody?: { required?: boolean };
  responses?: Record<string, unknown>;
  parameters?: Array<SpecParameter | { $ref: string }>;
  security?: unknown[];
  'x-operational'?: boolean;
  'x-admin-only'?: boolean;
}

type PathItem = Record<string, unknown> & { parameters?: Array<SpecParameter | { $ref: string }> };

let document: { paths: Record<string, PathItem> } | undefined;
let specAjv: Ajv2020 | undefined;

/** The spec as JSON, written by `npm run generate` with the SHA-256 of the YAML it was made from. */
export const specJsonCopyPath = fileURLToPath(new URL('../generated/sessions-api.json', import.meta.url));

export interface SpecJsonCopy {
  sourceSha256: string;
  document: unknown;
}

export const sha256Hex = (text: string) => createHash('sha256').update(text).digest('hex');

/**
 * The spec parsed. Parsing the YAML takes about a third of a second, at every start of a
 * server: its JSON copy is read instead when it was made from these very bytes.
 */
export function specDocument() {
  if (!document) ({ document, fromJsonCopy } = readSpec(specPath, specJsonCopyPath) as { document: typeof document; fromJsonCopy: boolean });
  return document!;
}

let fromJsonCopy = false;

/**
 * Whether the spec was read from its JSON copy, which `npm run generate` writes once every
 * route's schemas compile; else (the YAML edited since) the server compiles them at start.
 */
export function specReadFromJsonCopy(): boolean {
  specDocument();
  return fromJsonCopy;
}

function readSpec(yamlPath: string, jsonCopyPath: string): { document: unknown; fromJsonCopy: boolean } {
  const yaml = readFileSync(yamlPath, 'utf8');
  let copy: SpecJsonCopy | undefined;
  try {
    copy = JSON.parse(readFileSync(jsonCopyPath, 'utf8'));
  } catch {
    copy = undefined;
  }
  if (copy?.sourceSha256 === sha256Hex(yaml)) return { document: copy.document, fromJsonCopy: true };
  // Loaded only here: a start that reads the JSON copy does not load the YAML parser.
  const { parse } = createRequire(import.meta.url)('yaml') as typeof import('yaml');
  return { document: parse(yaml), fromJsonCopy: false };
}

/** The document of the YAML file at `yamlPath`, from `jsonCopyPath` if that is its up-to-date copy. */
export function readSpecDocument(yamlPath: string, jsonCopyPath: string): unknown {
  return readSpec(yamlPath, jsonCopyPath).document;
}

export function specOperations(): SpecOperation[] {
  return operationsOf(specDocument());
}

/** The operations of an OpenAPI document (`document` for `npm run generate`, which reads the YAML). */
export function operationsOf(document: object): SpecOperation[] {
  const { paths } = document as { paths: Record<string, PathItem> };
  const resolve = <T>(node: T | { $ref: string }): T => {
    const ref = (node as { $ref?: string }).$ref;
    return ref === undefined ? (node as T) : resolve(ref.split('/').slice(1).reduce<unknown>((at, key) => (at as Record<string, unknown>)[key], document) as T);
  };
  return Object.entries(paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method]) => HTTP_METHODS.includes(method))
      .map(([method, value]) => [method, value as OperationObject] as const)
      .map(([method, operation]) => ({
        operationId: operation.operationId ?? `${method} ${path}`,
        method: method.toUpperCase(),
        path,
        bodyRequired: operation.requestBody?.required === true,
        operational: operation['x-operational'] === true,
        statuses: Object.keys(operation.responses ?? {}),
        streams: Object.values(operation.responses ?? {}).some((response) => 'text/event-stream' in (resolve<{ content?: object }>(response as object).content ?? {})),
        parameters: [
          ...new Map(
            [...(item.parameters ?? []), ...(operation.parameters ?? [])].map(resolve<SpecParameter>).map((p) => [`${p.in}:${p.name}`, p]),
          ).values(),
        ].map((p) => (p.schema ? { ...p, schema: resolve(p.schema) } : p)),
        ...(operation.security ? { security: operation.security } : {}),
        adminOnly: operation['x-admin-only'] === true,
      })),
  );
}

/**
 * What the OpenAPI meta-schema (and the check of its $refs) finds wrong with `document`;
 * nothing when it holds. Run when the JSON copy is generated (and by `npm test`), not at
 * start (src/http/api-plugin.ts).
 */
export async function metaSchemaErrors(document: unknown): Promise<string[]> {
  const result = await new Validator().validate(structuredClone(document) as Parameters<Validator['validate']>[0]);
  if (result.valid) return [];
  return [typeof result.errors === 'string' ? result.errors : JSON.stringify(result.errors, null, 2)];
}

/** The spec without its operational operations: what fastify-openapi-glue routes to handlers. */
export function apiSpecification(): object {
  const copy = structuredClone(specDocument());
  for (const [path, item] of Object.entries(copy.paths)) {
    for (const [method, operation] of Object.entries(item)) {
      if (HTTP_METHODS.includes(method) && (operation as OperationObject)['x-operational'] === true) delete item[method];
    }
    if (!Object.keys(item).some((key) => HTTP_METHODS.includes(key))) delete copy.paths[path];
  }
  return copy;
}

/** A validator for `#/components/schemas/{name}` of the spec. */
export function specSchemaValidator(name: keyof components['schemas']) {
  if (!specAjv) {
    // strict off: the document around the schemas has OpenAPI keywords Ajv does not know.
    // validateSchema off: the spec is linted; checking the whole document against the
    // JSON Schema meta-schema cost 0.1-0.2 s at every start.
    specAjv = new Ajv2020({ strict: false, allErrors: true, validateSchema: false });
    addFormats(specAjv);
    specAjv.addSchema(specDocument(), 'spec');
  }
  return specAjv.compile({ $ref: `spec#/components/schemas/${name}` });
}
