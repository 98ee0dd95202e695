// An openapi-backend for any OpenAPI 3.x document, set up to work on 3.1: used by the
// mock server and by the tests' response validator.
import { readFileSync } from 'node:fs';
import { readableDiscriminators } from './conformance/discriminator.js';
import { atPointer, isRemoteRef, METHODS } from './conformance/spec-model.js';
import { addFormats } from './json-formats.js';
import { OpenAPIBackend } from 'openapi-backend';
import { parse } from 'yaml';

function createBackend(definition: string | object, { strict = false, discriminator = false } = {}): OpenAPIBackend {
  return new OpenAPIBackend({
    definition: definition as string,
    // Strict: a $ref that cannot be resolved throws (else it is printed with its stack, and the document is left undefined).
    strict,
    quick: true, // 3.1: skip the 3.0 meta-schema check, which rejects 3.1 keywords
    ajvOpts: { allErrors: true, strict: false, discriminator },
    customizeAjv: (ajv) => {
      return addFormats(ajv);
    },
  });
}

/**
 * The document at `path` read and parsed here first: openapi-backend (with `quick`) would
 * neither await a file it cannot read or parse (an unhandled rejection) nor check that it
 * is OpenAPI 3.x at all. Throws a one-line reason. YAML merge keys (`<<: *anchor`) are
 * merged, which openapi-backend's own parser does not do.
 */
function checkedDocument(path: string): object {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  let document: unknown;
  try {
    document = parse(text, { merge: true });
  } catch (error) {
    // The parser's first line, without the colon that led to its excerpt of the document.
    throw new Error(`${path} is not YAML or JSON: ${(error as Error).message.split('\n')[0]!.replace(/:$/, '')}`);
  }
  const version = (document as { openapi?: unknown } | null)?.openapi;
  if (typeof version !== 'string' || !/^3\.[01]\./.test(version)) {
    throw new Error(`${path} is not an OpenAPI 3.0 or 3.1 document (no "openapi: 3.x.y" at its top)`);
  }
  return document as object;
}

/**
 * Refuses, in one line, a `$ref` openapi-backend would follow over the network (where it is
 * open) or leave empty: a `#/…` naming nothing validates as `{}` and mocks as `{}`, or threw
 * a TypeError naming no ref. As the conformance suite refuses them.
 */
function checkRefs(document: object, path: string): void {
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(walk);
    if (!node || typeof node !== 'object') return;
    const { $ref } = node as { $ref?: unknown };
    if (typeof $ref === 'string') {
      const target = $ref.split('#')[0]!;
      if (isRemoteRef(target)) throw new Error(`$ref ${$ref}: remote references are not followed; bundle the document first (e.g. redocly bundle)`);
      if (target === '' && atPointer(document, $ref.slice(1)) === undefined) throw new Error(`$ref ${$ref} in ${path} names nothing`);
    }
    Object.values(node).forEach(walk);
  };
  walk(document);
}

/** Whether a document refers to other files (a `$ref` not starting with `#`): those resolve relative to its path. */
const refersToFiles = (document: object) => /"\$ref":"(?!#)/.test(JSON.stringify(document));

/**
 * OpenAPI 3.0's boolean exclusive bounds (`minimum: 0, exclusiveMinimum: true`) in their
 * JSON Schema form (`exclusiveMinimum: 0`): Ajv refuses the boolean form, which made
 * every request to the operation a 500.
 */
function numericExclusiveBounds(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(numericExclusiveBounds);
  if (!node || typeof node !== 'object') return node;
  const copy = Object.fromEntries(Object.entries(node).map(([key, value]) => [key, numericExclusiveBounds(value)])) as Record<string, unknown>;
  for (const [flag, bound] of [['exclusiveMinimum', 'minimum'], ['exclusiveMaximum', 'maximum']] as const) {
    if (typeof copy[flag] !== 'boolean') continue;
    if (copy[flag] === true && typeof copy[bound] === 'number') {
      copy[flag] = copy[bound];
      delete copy[bound];
    } else {
      delete copy[flag];
    }
  }
  return copy;
}

/**
 * Every operation with an operationId: one without (OpenAPI does not require it) is named
 * `GET /hello`, as the conformance suite names it. openapi-backend finds operations to
 * mock or validate by id: without one, every request to it answered 500.
 */
function withOperationIds(document: object): void {
  const paths = (document as { paths?: Record<string, Record<string, unknown> | undefined> }).paths ?? {};
  for (const [path, item] of Object.entries(paths)) {
    for (const method of METHODS) {
      const operation = item?.[method] as { operationId?: unknown } | undefined;
      if (operation && typeof operation === 'object' && typeof operation.operationId !== 'string') operation.operationId = `${method.toUpperCase()} ${path}`;
    }
  }
}

type SchemaNode = { properties?: Record<string, SchemaNode>; required?: unknown; allOf?: SchemaNode[]; [key: string]: unknown };

/** `schema`'s `required` without the properties marked `flag` (readOnly, writeOnly), at any depth. */
function notRequiredWhere(flag: 'readOnly' | 'writeOnly', schema: unknown, seen = new Set<unknown>()): void {
  if (!schema || typeof schema !== 'object' || seen.has(schema)) return;
  seen.add(schema);
  const node = schema as SchemaNode;
  // Properties may be declared in an allOf branch and required beside it.
  const properties = Object.assign({}, ...(node.allOf ?? []).map((branch) => branch?.properties ?? {}), node.properties ?? {}) as Record<string, SchemaNode>;
  for (const target of [node, ...(node.allOf ?? [])]) {
    if (!target || !Array.isArray(target.required)) continue;
    const kept = target.required.filter((name) => properties[name as string]?.[flag] !== true && target.properties?.[name as string]?.[flag] !== true);
    if (kept.length > 0) target.required = kept;
    else delete target.required;
  }
  const children = [...Object.values(node.properties ?? {}), node.items, node.additionalProperties, ...[node.allOf, node.anyOf, node.oneOf].flatMap((list) => (Array.isArray(list) ? list : []))];
  for (const child of children) notRequiredWhere(flag, child, seen);
}

/**
 * `required` as OpenAPI has it for readOnly and writeOnly properties (3.0 says so, and 3.1
 * documents follow it): a readOnly one is required in answers only, a writeOnly one in
 * requests only. In the dereferenced tree each request's and answer's schema is a copy of
 * its own, so each side is changed alone.
 */
function requiredOnItsSide(tree: object): void {
  type Content = Record<string, { schema?: unknown }> | undefined;
  const paths = (tree as { paths?: Record<string, Record<string, unknown> | undefined> }).paths ?? {};
  for (const item of Object.values(paths)) {
    for (const method of METHODS) {
      const operation = item?.[method] as { requestBody?: { content?: Content }; responses?: Record<string, { content?: Content }> } | undefined;
      if (!operation || typeof operation !== 'object') continue;
      for (const media of Object.values(operation.requestBody?.content ?? {})) notRequiredWhere('readOnly', media?.schema);
      for (const response of Object.values(operation.responses ?? {})) for (const media of Object.values(response?.content ?? {})) notRequiredWhere('writeOnly', media?.schema);
    }
  }
}

/**
 * openapi-backend flattens the document's operations anew (through lodash) at every
 * request it matches, operation it looks up and answer it validates: a third of the CPU of
 * the contract tests, which check every answer with it. A loaded document does not change.
 */
function listingOperationsOnce(api: OpenAPIBackend): OpenAPIBackend {
  const { router } = api;
  const operations = router.getOperations();
  const byId = new Map<string, (typeof operations)[number]>();
  for (const operation of operations) if (operation.operationId !== undefined && !byId.has(operation.operationId)) byId.set(operation.operationId, operation);
  router.getOperations = () => operations;
  router.getOperation = (operationId) => byId.get(operationId);
  return api;
}

/** An initialized backend for the document at `path` (YAML or JSON), or for a parsed one. */
export async function loadOpenApiBackend(path: string | object): Promise<OpenAPIBackend> {
  // A document whole in one file is loaded as parsed here (its merge keys merged); one
  // that refers to other files, from its path, for them to resolve.
  if (typeof path === 'string') {
    const document = checkedDocument(path);
    checkRefs(document, path);
    withOperationIds(document);
    if (!refersToFiles(document)) path = document;
  }
  // openapi-backend's decycle() replaces every object it meets twice with a $ref, not
  // only real cycles, so a schema reached through two $refs (a shared `type` array)
  // compiles into an invalid one. Dereference once, copy into a tree, load the copy; a
  // document with a real cycle (a schema that holds itself) cannot be a tree: it is
  // loaded as dereferenced, and decycle() has its cycles to do.
  const resolving = createBackend(path, { strict: true });
  try {
    await resolving.init();
  } catch (error) {
    throw new Error(`cannot resolve its $refs: ${String((error as Error).message ?? error).split('\n')[0]}`);
  }
  let tree: object;
  try {
    tree = JSON.parse(JSON.stringify(resolving.definition)) as object;
  } catch {
    return listingOperationsOnce(resolving);
  }
  withOperationIds(tree); // paths brought in from other files
  requiredOnItsSide(tree);
  if (/^3\.0\./.test(String((tree as { openapi?: unknown }).openapi))) tree = numericExclusiveBounds(tree) as object;
  // A oneOf with a discriminator Ajv reads is judged by its tag's branch (one fault named).
  const api = createBackend(readableDiscriminators(tree) as object, { discriminator: true });
  await api.init();
  return listingOperationsOnce(api);
}
