// The cases of a run, planned before any request: for every operation, valid requests
// (generated), invalid ones (one fault each) and hostile ones. A case's key is stable
// for a given spec, seed and case count, which is what `--replay` relies on.
import { bound, placeholder } from './fixtures.js';
import { samples } from './generate.js';
import { hostileCases } from './hostile.js';
import { mutateParameter, mutateValue } from './mutate.js';
import { asHeaderValue, type RequestValues } from './requests.js';
import type { Operation, Schema } from './spec-model.js';

export type CaseKind = 'valid' | 'invalid' | 'hostile' | 'auth' | 'stateful' | 'health';

export type Expectation =
  | { type: 'valid'; realIds: boolean }
  /** `inPath`: the field is a path parameter (a malformed id may be answered as an unknown one). */
  | { type: 'invalid'; field: string; inPath?: boolean }
  | { type: 'hostile'; mayCloseConnection?: boolean }
  | { type: 'unauthenticated' };

export interface PlannedCase {
  key: string;
  operationId: string;
  kind: CaseKind;
  title: string;
  /** `fresh`: ids made for this case alone (it may consume them); `shared`: the operation's. */
  fixture: 'fresh' | 'shared';
  /** With placeholders where existing ids go. */
  values: RequestValues;
  expectation: Expectation;
}

export function planOperation(operation: Operation, index: number, seed: number, validCases: number, names: ReadonlySet<string>): PlannedCase[] {
  const planned: PlannedCase[] = [];
  const operationSeed = seed + index * 7919;
  const pathParameters = operation.parameters.filter((p) => p.in === 'path');
  const queryParameters = operation.parameters.filter((p) => p.in === 'query');
  const bodies = operation.body ? samples(operation.body.schema, validCases, operationSeed) : [];
  const queries = samples(
    {
      type: 'object',
      additionalProperties: false,
      properties: Object.fromEntries(queryParameters.map((p) => [p.name, p.schema])),
      required: queryParameters.filter((p) => p.required).map((p) => p.name),
    },
    validCases,
    operationSeed + 1,
  ) as Array<Record<string, unknown>>;
  const randomIds = samples({ type: 'string', format: 'uuid' }, Math.max(validCases, 1), operationSeed + 2) as string[];
  /** Values of a parameter's own schema, for one a random uuid would not fit (a pattern, an enum, a length). */
  const ownValues = (schema: Schema, k: number) => samples(schema, Math.max(validCases, 1), operationSeed + 3 + k).map(String);
  const constrained = (schema: Schema) => ['pattern', 'enum', 'const', 'maxLength', 'minLength'].some((keyword) => keyword in schema) || (schema.format !== undefined && schema.format !== 'uuid');
  const pathValues = pathParameters.map((p, k) => (p.schema.type === 'string' && constrained(p.schema) ? ownValues(p.schema, k) : undefined));
  /** An id nothing has: a random uuid, for an integer id the largest allowed (far from any counter), else a value of its schema. */
  const unknownId = (schema: Schema, k: number, i: number) =>
    schema.type === 'integer' || schema.type === 'number'
      ? String((schema.maximum ?? 2 ** 31 - 1) - i)
      : (pathValues[k]?.[i % pathValues[k]!.length] ?? randomIds[i % randomIds.length]!);
  // Required headers, from their schemas (what a header can carry: visible ASCII).
  const headerParameters = operation.parameters.filter((p) => p.in === 'header' && p.required);
  const headerValues = headerParameters.map((p, k) => ownValues(p.schema, pathParameters.length + k).map(asHeaderValue));
  /**
   * Boolean query parameters take turns, true first, over the valid requests with real ids:
   * a flag that turns a refusal into success (`force`) is tried by the first of them, not
   * left to chance (with few cases, no valid request might succeed).
   */
  const booleans = queryParameters.filter((p) => p.schema.type === 'boolean');
  const withBooleansInTurn = (query: Record<string, unknown>, turn: number) =>
    booleans.length === 0 ? query : { ...query, ...Object.fromEntries(booleans.map((p) => [p.name, turn % 2 === 0])) };
  const valuesFor = (i: number, realIds: boolean, turn: number): RequestValues => ({
    path: Object.fromEntries(pathParameters.map((p, k) => [p.name, realIds && names.has(p.name) ? placeholder(p.name) : unknownId(p.schema, k, i)])),
    query: bound(withBooleansInTurn(queries[i] ?? {}, turn), names),
    body: operation.body ? (operation.body.required || i % 3 !== 2 ? bound(bodies[i], names) : undefined) : undefined,
    ...(headerParameters.length > 0 && { headers: Object.fromEntries(headerParameters.map((p, k) => [p.name, headerValues[k]![i % headerValues[k]!.length]!])) }),
  });
  const add = (kind: CaseKind, title: string, fixture: PlannedCase['fixture'], values: RequestValues, expectation: Expectation) =>
    planned.push({ key: `${operation.operationId}/${kind}/${planned.filter((c) => c.kind === kind).length}`, operationId: operation.operationId, kind, title, fixture, values, expectation });

  // Valid requests: with ids that exist, a 2xx (or a 4xx the state explains); with random
  // ids in the path, a documented 4xx. A path parameter no create makes (a name, a slug)
  // is no id: any value of its schema is a valid request.
  const hasIds = pathParameters.some((p) => names.has(p.name));
  let realIdTurn = 0;
  for (let i = 0; i < validCases; i += 1) {
    const realIds = !hasIds || i % 4 !== 1;
    const values = valuesFor(i, realIds, realIds ? realIdTurn++ : 0);
    add('valid', realIds ? 'valid request' : 'valid request, unknown id', realIds ? 'fresh' : 'shared', values, { type: 'valid', realIds });
  }

  // Invalid requests, one fault each: 400 naming the field.
  const base = valuesFor(0, true, 0);
  if (operation.body) base.body = bound(bodies[0], names);
  if (operation.body) {
    for (const mutation of mutateValue(operation.body.schema, base.body)) {
      // An array item is named by its array (`tags`, not `0`, which any "400" contains).
      const field = String([...mutation.path].reverse().find((segment) => !/^\d+$/.test(String(segment))) ?? 'body');
      add('invalid', `body${mutation.path.map((p) => `/${p}`).join('')}: ${mutation.fault}`, 'shared', { ...base, body: mutation.value }, { type: 'invalid', field });
    }
  }
  for (const parameter of [...pathParameters, ...queryParameters]) {
    const current = parameter.in === 'path' ? base.path?.[parameter.name] : base.query?.[parameter.name];
    for (const mutation of mutateParameter(parameter.schema, current)) {
      const values =
        parameter.in === 'path'
          ? { ...base, path: { ...base.path, [parameter.name]: String(mutation.value) } }
          : { ...base, query: { ...base.query, [parameter.name]: mutation.value } };
      add('invalid', `${parameter.in} ${parameter.name}: ${mutation.fault}`, 'shared', values, { type: 'invalid', field: parameter.name, inPath: parameter.in === 'path' });
    }
  }

  // Without credentials, where the spec asks for them: 401 (run only when the suite has credentials).
  if (operation.secured) add('auth', 'without credentials', 'shared', base, { type: 'unauthenticated' });

  // Hostile requests: anything but a 5xx or a hang.
  for (const hostile of hostileCases(operation, base)) add('hostile', hostile.title, 'shared', hostile.values, { type: 'hostile', mayCloseConnection: hostile.mayCloseConnection === true });
  return planned;
}
