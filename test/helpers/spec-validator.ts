// Checks a response against the spec with openapi-backend: the status must be one the
// operation documents, and the body must be valid for that status (formats on).
import type { OpenAPIBackend } from 'openapi-backend';
import { loadOpenApiBackend } from '../../src/openapi-backend.js';
import { specDocument, specPath, specSchemaValidator } from '../../src/spec.js';

const backends = new Map<string, Promise<OpenAPIBackend>>();

/** The backend of our spec, or of another document (e.g. a fixture) at `path`. */
export function specBackend(path = specPath): Promise<OpenAPIBackend> {
  // Our spec as the server has it parsed (no second YAML parse in every test file).
  if (!backends.has(path)) backends.set(path, loadOpenApiBackend(path === specPath ? structuredClone(specDocument()) : path));
  return backends.get(path)!;
}

const matched = new WeakMap<OpenAPIBackend, Map<string, string | undefined>>();

/** The operationId that serves a request, or undefined for a route the spec does not have. */
export function operationFor(api: OpenAPIBackend, method: string, url: string): string | undefined {
  const [path = ''] = url.split('?');
  // Matching is by method and path alone, and a test asks for the same ones many times (paging, say).
  if (!matched.has(api)) matched.set(api, new Map());
  const known = matched.get(api)!;
  const key = `${method} ${path}`;
  if (!known.has(key)) known.set(key, api.matchOperation({ method, path, headers: {} })?.operationId);
  return known.get(key);
}

/** Everything wrong with a response; empty when it honours the spec. */
export function responseViolations(api: OpenAPIBackend, operationId: string | undefined, status: number, body: unknown): string[] {
  if (operationId === undefined) {
    // A route outside the spec can only answer 404 in the error envelope.
    if (status !== 404) return [`status ${status} for a route the spec does not have (expected 404)`];
    const validate = specSchemaValidator('ErrorEnvelope');
    return validate(body) ? [] : (validate.errors ?? []).map((error) => `ErrorEnvelope: ${error.instancePath || '/'} ${error.message}`);
  }
  const documented = Object.keys(api.getOperation(operationId)?.responses ?? {});
  if (!documented.includes(String(status))) {
    return [`status ${status} is not documented for ${operationId} (documented: ${documented.join(', ')})`];
  }
  // An empty body where the response has no content (a 204): what openapi-backend checks as null.
  const response = api.getOperation(operationId)?.responses?.[String(status)] as { content?: object } | undefined;
  const nothing = (body === undefined || body === '') && response?.content === undefined;
  const result = api.validateResponse(nothing ? null : body, operationId, status);
  return (result.errors ?? []).map((error) => `${operationId} ${status}: ${error.instancePath || '/'} ${error.message}`);
}

