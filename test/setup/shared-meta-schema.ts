// Every test app registers fastify-openapi-glue, which checks the spec against the OpenAPI
// meta-schema with a new validator, compiling the meta-schema each time: about 0.2 s of
// each of the hundreds of apps the tests build. The compiled meta-schema is shared within a
// test worker instead: the same check, compiled once.
import { Validator } from '@seriousme/openapi-schema-validator';

type Compiled = (specification: unknown) => boolean;
const prototype = Validator.prototype as unknown as { getAjvValidator(version: string): Compiled; sharedMetaSchema?: true };

// Once per worker: its test files share loaded modules (vitest.config.ts), and this file runs before each.
if (!prototype.sharedMetaSchema) {
  prototype.sharedMetaSchema = true;
  const compileOwn = prototype.getAjvValidator;
  const shared = new Map<string, Compiled>();
  prototype.getAjvValidator = function (this: unknown, version: string): Compiled {
    let validate = shared.get(version);
    if (!validate) shared.set(version, (validate = compileOwn.call(this, version)));
    return validate;
  };
}
