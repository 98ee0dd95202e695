// Checks a response against the spec with openapi-backend: the status must be one the
// operation documents, and the body must be valid for that status (formats on).
import ajvFormats from 'ajv-formats';
import { OpenAPIBackend } from 'openapi-backend';
import { specPath, specSchemaValidator } from '../../src/spec.js';

let backend: OpenAPIBackend | undefined;

function createBackend(definition: string | object): OpenAPIBackend {
  return new OpenAPIBackend({
    definition: definition as string,
    quick: true, // 3.1: skip the 3.0 meta-schema check, which rejects 3.1 keywords
    ajvOpts: { allErrors: true, strict: false },
    customizeAjv: (ajv) => {
      ajvFormats.default(ajv as never);
      return ajv;
    },
  });
}

export async function specBackend(): Promise<OpenAPIBackend> {
  if (!backend) {
    // openapi-backend's decycle() replaces every object it meets twice with a $ref, not
    // only real cycles, so a schema reached through two $refs (a shared `type` array)
    // compiles into an invalid one. Dereference once, copy into a tree, load the copy.
    const resolving = createBackend(specPath);
    await resolving.init();
    const api = createBackend(JSON.parse(JSON.stringify(resolving.definition)));
    await api.init();
    backend = api;
  }
  return backend;
}

/** The operationId that serves a request, or undefined for a route the spec does not have. */
export function operationFor(api: OpenAPIBackend, method: string, url: string): string | undefined {
  const [path = '', query = ''] = url.split('?');
  const match = api.matchOperation({ method, path, query, headers: {} });
  return match?.operationId;
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
  const result = api.validateResponse(body, operationId, status);
  return (result.errors ?? []).map((error) => `${operationId} ${status}: ${error.instancePath || '/'} ${error.message}`);
}

