// What every answer must be: a status the operation documents, a JSON content type, and
// a body valid against that status's schema (formats checked).
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import ajvFormats from 'ajv-formats';
import type { Answer } from './http.js';
import type { Operation, Schema } from './spec-model.js';

export class ResponseChecker {
  private readonly ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
  private readonly validators = new Map<Schema, ValidateFunction>();

  constructor() {
    ajvFormats.default(this.ajv);
  }

  /** The ways `answer` breaks the spec for `operation`; empty when it honours it. */
  violations(operation: Operation, answer: Answer): string[] {
    if (answer.error) return [answer.error];
    const schema = operation.responses[String(answer.status)];
    if (!(String(answer.status) in operation.responses)) {
      return [`status ${answer.status} is not documented (documented: ${Object.keys(operation.responses).join(', ')}); body: ${answer.text.slice(0, 200)}`];
    }
    if (!schema) return [];
    if (!/^application\/json\b/.test(answer.contentType)) return [`content type "${answer.contentType}" is not application/json`];
    if (answer.json === undefined) return [`the body is not JSON: ${answer.text.slice(0, 200)}`];
    let validate = this.validators.get(schema);
    if (!validate) {
      const { $schema: _ignored, ...plain } = schema;
      validate = this.ajv.compile(plain);
      this.validators.set(schema, validate);
    }
    if (validate(answer.json)) return [];
    return (validate.errors ?? []).slice(0, 5).map((error) => `${answer.status} body${error.instancePath} ${error.message}`);
  }
}
