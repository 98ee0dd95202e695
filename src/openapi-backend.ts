// An openapi-backend for any OpenAPI 3.x document, set up to work on 3.1: used by the
// mock server and by the tests' response validator.
import ajvFormats from 'ajv-formats';
import { OpenAPIBackend } from 'openapi-backend';

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

/** An initialized backend for the document at `path` (YAML or JSON), or for a parsed one. */
export async function loadOpenApiBackend(path: string | object): Promise<OpenAPIBackend> {
  // openapi-backend's decycle() replaces every object it meets twice with a $ref, not
  // only real cycles, so a schema reached through two $refs (a shared `type` array)
  // compiles into an invalid one. Dereference once, copy into a tree, load the copy.
  const resolving = createBackend(path);
  await resolving.init();
  const api = createBackend(JSON.parse(JSON.stringify(resolving.definition)));
  await api.init();
  return api;
}
