// Request validation: strict for bodies (no coercion, every error, closed objects stay
// closed), coercing for path and query parameters, which arrive as strings.
import type { FastifyInstance, FastifySchemaValidationError } from 'fastify';
import { Ajv2020, type Options, type ValidateFunction } from 'ajv/dist/2020.js';
import { addFormats } from '../json-formats.js';
import { CompiledOnFirstUse } from './compiled-on-first-use.js';
import { clip } from './limits.js';

const DETAILS_MAX_ERRORS = 5;

function createAjv(coerceTypes: Options['coerceTypes']): Ajv2020 {
  const ajv = new Ajv2020({
    strict: true,
    allowUnionTypes: true,
    allErrors: true,
    removeAdditional: false,
    useDefaults: true,
    coerceTypes,
  });
  addFormats(ajv);
  return ajv;
}

/** How a path or query parameter must be written to be read as a number. */
const NUMBER_FORMS = { integer: /^-?[0-9]{1,15}$/, number: /^-?[0-9]{1,15}(\.[0-9]{1,15})?$/ } as const;

type NumericSchema = { type: keyof typeof NUMBER_FORMS; minimum?: number; maximum?: number };

/** Plain decimal digits too many to read exactly: beyond a bound the schema sets, refused as beyond it (the reason), else as no number. */
function unreadableNumberError(name: string, value: string, { type, minimum, maximum }: NumericSchema) {
  const long = /^(-?)0*([1-9][0-9]{15,})$/.exec(value);
  const negative = long?.[1] === '-';
  const [keyword, limit, comparison] = negative ? ['minimum', minimum, '>='] : ['maximum', maximum, '<='];
  if (long && limit !== undefined && (negative ? limit > -1e15 : limit < 1e15)) {
    return { instancePath: `/${name}`, schemaPath: `#/properties/${name}/${keyword}`, keyword, params: { comparison, limit }, message: `must be ${comparison} ${limit}` };
  }
  return { instancePath: `/${name}`, schemaPath: `#/properties/${name}/type`, keyword: 'type', params: { type }, message: `must be ${type}` };
}

/**
 * Ajv coerces any string JavaScript reads as a number: "Infinity", "1e309" (both
 * Infinity, which then passes `integer` and `maximum`: an Ajv bug), "0x10", " 5". Numeric
 * parameters are refused unless written in plain decimal digits, before Ajv sees them.
 */
function withStrictNumbers(schema: unknown, validate: ValidateFunction): ValidateFunction | ((data: unknown) => boolean) {
  const properties = (schema as { properties?: Record<string, { type?: unknown }> }).properties ?? {};
  const numeric = Object.entries(properties).filter(
    (entry): entry is [string, NumericSchema] => entry[1].type === 'integer' || entry[1].type === 'number',
  );
  if (numeric.length === 0) return validate;
  const strict = (data: unknown) => {
    for (const [name, numberSchema] of numeric) {
      const value = (data as Record<string, unknown> | null)?.[name];
      if (typeof value === 'string' && !NUMBER_FORMS[numberSchema.type].test(value)) {
        strict.errors = [unreadableNumberError(name, value, numberSchema)];
        return false;
      }
    }
    const valid = validate(data);
    strict.errors = validate.errors;
    return valid;
  };
  strict.errors = null as ValidateFunction['errors'];
  return strict;
}

/**
 * Node gives header names in lower case; the spec writes them as in HTTP (`Idempotency-Key`).
 * Fastify lowers the schema's names only for its own validator, not for a custom one.
 */
function lowerCaseHeaderNames(schema: { properties?: Record<string, unknown>; required?: string[] }) {
  const properties = Object.fromEntries(Object.entries(schema.properties ?? {}).map(([name, value]) => [name.toLowerCase(), value]));
  return { ...schema, properties, ...(schema.required ? { required: schema.required.map((name) => name.toLowerCase()) } : {}) };
}

type Validate = ValidateFunction | ((data: unknown) => boolean);

let ajvs: { body: Ajv2020; parameters: Ajv2020 } | undefined;

function compile(schema: unknown, httpPart: string | undefined): Validate {
  ajvs ??= { body: createAjv(false), parameters: createAjv('array') };
  if (httpPart === 'body') return ajvs.body.compile(schema as object);
  return withStrictNumbers(schema, ajvs.parameters.compile(httpPart === 'headers' ? lowerCaseHeaderNames(schema as object) : (schema as object)));
}

/** By part and schema text: compiling the spec's schemas was most of the cost of building an app (about 0.2 s). */
const validators = new CompiledOnFirstUse<Validate>();

/** Compiles every validator given to a route so far; how many there are. */
export const compileEveryValidator = () => validators.compileAll();
/** Compiles one validator no request has needed yet; false when none is left. */
export const compileNextValidator = () => validators.compileNext();
export const validatorsWaiting = () => validators.waiting();

export function installValidators(app: FastifyInstance): void {
  app.setValidatorCompiler(({ schema, httpPart }) => {
    const key = `${httpPart}\n${JSON.stringify(schema)}`;
    const ready = validators.ready(key);
    if (ready) return ready;
    const get = validators.onFirstUse(key, () => compile(schema, httpPart));
    let validate: Validate | undefined;
    const validateOnFirstUse = (data: unknown) => {
      const valid = (validate ??= get())(data) as boolean;
      validateOnFirstUse.errors = (validate as ValidateFunction).errors;
      return valid;
    };
    validateOnFirstUse.errors = null as ValidateFunction['errors'];
    return validateOnFirstUse;
  });
}

/** One validation error as a sentence that starts with the field's path, e.g. `body/userId is required`. */
function describe(context: string, error: FastifySchemaValidationError): string {
  const path = clip(context + error.instancePath, 200);
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required':
      return `${path}/${clip(String(params.missingProperty), 100)} is required`;
    case 'additionalProperties':
      return `${path}/${clip(String(params.additionalProperty), 100)} is not allowed`;
    default:
      return `${path} ${error.message ?? 'is invalid'}`;
  }
}

/** An anyOf and the alternatives that failed under it become one "… or …" sentence. */
function foldAnyOf(context: string, errors: FastifySchemaValidationError[]): string[] {
  const folded = new Set<FastifySchemaValidationError>();
  const sentences: string[] = [];
  for (const anyOf of errors.filter((error) => error.keyword === 'anyOf')) {
    const alternatives = errors.filter((error) => error.schemaPath.startsWith(`${anyOf.schemaPath}/`));
    alternatives.forEach((error) => folded.add(error));
    folded.add(anyOf);
    sentences.push(`${clip(context + anyOf.instancePath, 200)} ${alternatives.map((error) => error.message).join(' or ')}`);
  }
  return [...sentences, ...errors.filter((error) => !folded.has(error)).map((error) => describe(context, error))];
}

/** `details` of a 400: every failed rule (the first few), each naming its field. */
export function describeValidation(context: string, errors: FastifySchemaValidationError[]): string {
  const sentences = [...new Set(foldAnyOf(context, errors))];
  const shown = sentences.slice(0, DETAILS_MAX_ERRORS).join('; ');
  const hidden = sentences.length - DETAILS_MAX_ERRORS;
  return hidden > 0 ? `${shown}; and ${hidden} more` : shown;
}
