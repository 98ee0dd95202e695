// What every answer must be: a status the operation documents, a documented content type,
// and (for JSON) a body valid against that status's schema (formats checked). Each fault
// is a Violation naming its check, and for schema faults the JSON path and property.
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import ajvFormats from 'ajv-formats';
import { readableDiscriminators } from './discriminator.js';
import type { Answer } from './http.js';
import { bareMediaType, isJsonMediaType, type Operation, type ResponseHeader, type ResponseModel, responseFor, type Schema } from './spec-model.js';

/** Every check the suite runs, by the name `--checks` takes. */
export const CHECKS = {
  'responds': 'an answer comes, within the timeout',
  'no-server-error': 'no 5xx, whatever the input (a 504 the operation documents aside: a wait for something outside the server ran out)',
  'status-documented': 'the status is one the operation documents',
  'content-type': 'the content type is one documented for that status',
  'response-schema': 'a JSON body is valid against the schema of its status',
  'response-headers': 'a header the status documents as required is sent, and a documented header sent is valid against its schema',
  'invalid-input-refused': 'a request with one invalid field gets 400 naming the field',
  'valid-input-accepted': 'a valid request is not refused as invalid (400, 413, 415); each operation succeeds at least once',
  'unknown-id-refused': 'an unknown id in the path gets a 4xx',
  'deleted-resource-gone': 'what was created and deleted then answers 404 (or 410)',
  'sessions-flows': 'Sessions API semantics: expiry arithmetic, renewals, PATCH, exactly-once paging, 410 after expiry',
  'event-stream': 'a stream of Server-Sent Events: its frames parse (id, event, data), each data validates against the schema, and a replay from Last-Event-ID gives exactly the later events',
  'still-healthy': 'the server still answers after the hostile requests',
  'auth-required': 'with --api-key (or an Authorization header), an operation the spec secures answers 401 without credentials',
} as const;

export type CheckName = keyof typeof CHECKS;

export const isCheckName = (name: string): name is CheckName => Object.hasOwn(CHECKS, name);

export interface Violation {
  check: CheckName;
  message: string;
  /** JSON path of the value at fault in the answer's body, e.g. `$.timeoutConfig.timeoutMinutes`. */
  path?: string;
  /** The property at fault: the unexpected one, the missing one, or the one with a bad value. */
  property?: string;
}

const SHOWN_BODY = 300;

/** The names an instance path (RFC 6901) goes through, its escapes undone. */
const pointerSegments = (instancePath: string) =>
  instancePath
    .split('/')
    .slice(1)
    .map((segment) => segment.replace(/~1/g, '/').replace(/~0/g, '~'));

function jsonPath(instancePath: string): string {
  return (
    '$' +
    pointerSegments(instancePath)
      .map((segment) => (/^\d+$/.test(segment) ? `[${segment}]` : /^[A-Za-z_$][\w$]*$/.test(segment) ? `.${segment}` : `[${JSON.stringify(segment)}]`))
      .join('')
  );
}

function schemaViolation(status: number, error: ErrorObject): Violation {
  const params = error.params as Record<string, unknown>;
  const named = (params.additionalProperty ?? params.missingProperty ?? params.unevaluatedProperty) as string | undefined;
  const base = jsonPath(error.instancePath);
  const path = named === undefined ? base : `${base}${/^[A-Za-z_$][\w$]*$/.test(named) ? `.${named}` : `[${JSON.stringify(named)}]`}`;
  const property = named ?? pointerSegments(error.instancePath).filter(Boolean).at(-1);
  const what = named === undefined || error.keyword === 'required' ? error.message : `${error.message}: "${named}"`;
  return { check: 'response-schema', message: `${status} body at ${path} ${what}`, path, ...(property === undefined ? {} : { property }) };
}

const NUMERIC = /^-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?$/;

/** A scalar as a header's text spells it: a number or boolean where it looks like one. */
const scalarsOf = (text: string): unknown[] => [
  ...(NUMERIC.test(text) ? [Number(text)] : []),
  ...(text === 'true' || text === 'false' ? [text === 'true'] : []),
  text,
];

/**
 * What a header's text may stand for, in OpenAPI's `simple` style (an array `a,b`, an
 * object `k,v,k2,v2`), the form its schema's `type` names first: the schema may name none
 * (a `oneOf` of an integer and a date, as Retry-After is), so each is tried.
 */
function headerValues(header: ResponseHeader, text: string): unknown[] {
  if (header.json) {
    try {
      return [JSON.parse(text)];
    } catch {
      return [text];
    }
  }
  const types: unknown[] = Array.isArray(header.schema.type) ? header.schema.type : [header.schema.type];
  const items = text.split(',').map((item) => item.trim());
  const array = items.map((item) => scalarsOf(item)[0]);
  const object = items.length % 2 === 0 ? Object.fromEntries(items.flatMap((item, i) => (i % 2 === 0 ? [[item, scalarsOf(items[i + 1]!)[0]]] : []))) : undefined;
  const forms = [...scalarsOf(text), array, items, ...(object ? [object] : [])];
  const declared = (value: unknown) =>
    types.includes(Array.isArray(value) ? 'array' : value === null ? 'null' : typeof value === 'number' ? (Number.isInteger(value) ? 'integer' : 'number') : typeof value);
  return [...forms.filter(declared), ...forms.filter((value) => !declared(value))];
}

function validatorFactory(): Ajv2020 {
  // addUsedSchema false: a component with an `$id`, resolved into each schema that refers to it, compiles each time (not "already exists").
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true, discriminator: true, addUsedSchema: false });
  ajvFormats.default(ajv);
  // OpenAPI's numeric formats: ranges, not strings.
  for (const format of ['int32', 'int64', 'float', 'double']) ajv.addFormat(format, { type: 'number', validate: () => true });
  return ajv;
}

let sharedAjv: Ajv2020 | undefined;
/**
 * Validators by schema text, for the process: each run loads its own copy of the spec, and
 * compiling its schemas again was about a tenth of a run's CPU (the tests run the suite
 * about a hundred times).
 */
const validatorsByText = new Map<string, ValidateFunction>();

function compiledValidator(schema: Schema): ValidateFunction {
  const { $schema: _ignored, ...plain } = schema;
  const text = JSON.stringify(plain);
  let validate = validatorsByText.get(text);
  if (!validate) {
    sharedAjv ??= validatorFactory();
    validatorsByText.set(text, (validate = sharedAjv.compile(readableDiscriminators(plain) as Schema)));
  }
  return validate;
}

export class ResponseChecker {
  /** A `oneOf` with a discriminator Ajv reads is judged by the branch its tag names (readableDiscriminators). */
  private readonly validators = new Map<Schema, ValidateFunction>();

  /** Whether `value` honours `schema` (one of the spec model's). */
  honours(schema: Schema, value: unknown): boolean {
    return this.validator(schema)(value) === true;
  }

  /** The ways one frame's data breaks the stream's event schema (at most 5); empty when it honours it. */
  eventViolations(operation: Operation, data: unknown): string[] {
    const events = operation.responses['200']?.events;
    if (!events) return [];
    const validate = this.validator(events);
    if (validate(data)) return [];
    return (validate.errors ?? []).slice(0, 5).map((error) => schemaViolation(200, error).message.replace(/^200 body/, 'event'));
  }

  private validator(schema: Schema): ValidateFunction {
    let validate = this.validators.get(schema);
    if (!validate) this.validators.set(schema, (validate = compiledValidator(schema)));
    return validate;
  }

  /** The ways `answer` breaks the spec for `operation`; empty when it honours it. */
  violations(operation: Operation, answer: Answer): Violation[] {
    if (answer.error) return [{ check: 'responds', message: answer.error }];
    const response = responseFor(operation, answer.status);
    if (!response) {
      return [
        {
          check: 'status-documented',
          message: `status ${answer.status} is not documented (documented: ${Object.keys(operation.responses).join(', ')})`,
        },
      ];
    }
    return [...this.headerViolations(response, answer), ...this.bodyViolations(response, answer)];
  }

  /** Required headers missing, and documented headers whose value breaks their schema. */
  private headerViolations(response: ResponseModel, answer: Answer): Violation[] {
    if (!answer.headers) return [];
    const violations: Violation[] = [];
    for (const [key, header] of Object.entries(response.headers)) {
      const text = answer.headers[key];
      if (text === undefined) {
        if (header.required) violations.push({ check: 'response-headers', message: `${answer.status} answer lacks the required header ${header.name}`, property: header.name });
        continue;
      }
      const validate = this.validator(header.schema);
      const [value, ...others] = headerValues(header, text);
      if (validate(value) || others.some((other) => validate(other))) continue;
      validate(value);
      const why = (validate.errors ?? []).map((error) => `${error.instancePath ? `${error.instancePath.slice(1)} ` : ''}${error.message}`).join('; ');
      violations.push({ check: 'response-headers', message: `${answer.status} header ${header.name}: ${JSON.stringify(text)} ${why}`, property: header.name });
    }
    return violations;
  }

  private bodyViolations(response: ResponseModel, answer: Answer): Violation[] {
    if (response.contentTypes.length === 0) return [];
    const received = bareMediaType(answer.contentType);
    const documented = response.contentTypes.map(bareMediaType);
    const matches = documented.some((type) => type === received || type === '*/*' || (type.endsWith('/*') && received.startsWith(type.slice(0, -1))));
    if (!matches) {
      return [{ check: 'content-type', message: `content type "${answer.contentType}" is not documented for ${answer.status} (documented: ${documented.join(', ')})` }];
    }
    // The received type's own schema (a status may document two JSON types); the first JSON one for a wildcard.
    const schema = response.schemas[received] ?? response.schema;
    if (!isJsonMediaType(received) || !schema) return [];
    if (answer.json === undefined) return [{ check: 'response-schema', message: `the body is not JSON: ${answer.text.slice(0, SHOWN_BODY)}`, path: '$' }];
    const validate = this.validator(schema);
    if (validate(answer.json)) return [];
    return (validate.errors ?? []).slice(0, 5).map((error) => schemaViolation(answer.status, error));
  }
}
