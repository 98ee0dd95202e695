// The conformance run: for every operation of the spec, valid requests (generated),
// invalid ones (one fault each), hostile ones, then stateful checks and a last health
// check. Talks to the server over HTTP only.
import { ResponseChecker } from './check.js';
import { type Fixture, Fixtures, bind, bound } from './fixtures.js';
import { hostileCases } from './hostile.js';
import { type Answer, asCurl, send } from './http.js';
import { mutateParameter, mutateValue } from './mutate.js';
import { buildExchange, type RequestValues } from './requests.js';
import { samples } from './generate.js';
import { loadSpec, type Operation } from './spec-model.js';
import { statefulChecks } from './stateful.js';

export interface ConformanceOptions {
  baseUrl: string;
  specPath: string;
  seed: number;
  apiKey?: string;
  /** Generated valid requests per operation. */
  validCases?: number;
  timeoutMs?: number;
}

export type CaseKind = 'valid' | 'invalid' | 'hostile' | 'stateful' | 'health' | 'auth';

export interface CaseResult {
  operationId: string;
  kind: CaseKind;
  title: string;
  passed: boolean;
  violations: string[];
  /** The request as a curl command, to reproduce a failure by hand. */
  request: string;
  status: number;
}

export interface Report {
  baseUrl: string;
  seed: number;
  cases: CaseResult[];
  passed: number;
  failed: number;
}

const NEVER_FOR_VALID_INPUT = new Set([400, 413, 415]);

export async function runConformance(options: ConformanceOptions): Promise<Report> {
  const { baseUrl, seed, apiKey } = options;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const validCases = options.validCases ?? 10;
  const spec = loadSpec(options.specPath);
  const byId = new Map(spec.operations.map((operation) => [operation.operationId, operation]));
  const checker = new ResponseChecker();
  const cases: CaseResult[] = [];

  const exchange = async (operation: Operation, values: RequestValues) => {
    const request = buildExchange(operation, values);
    const answer = await send(baseUrl, request, apiKey, timeoutMs);
    return { answer, request: asCurl(baseUrl, request) };
  };
  const call = async (operationId: string, values: RequestValues): Promise<Answer | undefined> => {
    const operation = byId.get(operationId);
    return operation ? (await exchange(operation, values)).answer : undefined;
  };
  const record = async (
    operation: Operation,
    kind: CaseKind,
    title: string,
    values: RequestValues,
    expect: (answer: Answer) => string[],
  ): Promise<Answer> => {
    const { answer, request } = await exchange(operation, values);
    const violations = [...checker.violations(operation, answer), ...(answer.error ? [] : expect(answer))];
    cases.push({ operationId: operation.operationId, kind, title, passed: violations.length === 0, violations, request, status: answer.status });
    return answer;
  };
  const fixtures = new Fixtures(call);

  for (const [index, operation] of spec.operations.entries()) {
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
    const randomIds = samples({ type: 'string', format: 'uuid' }, validCases, operationSeed + 2) as string[];
    const valuesFor = (fixture: Fixture, i: number, realIds: boolean): RequestValues => ({
      path: Object.fromEntries(pathParameters.map((p) => [p.name, realIds ? (bind(fixture, p.name) ?? randomIds[i]!) : randomIds[i]!])),
      query: bound(queries[i] ?? {}, fixture),
      body: operation.body ? (operation.body.required || i % 3 !== 2 ? bound(bodies[i], fixture) : undefined) : undefined,
    });

    // Valid requests: with ids that exist, a 2xx (or a 4xx the state explains); with
    // random ids in the path, a documented 4xx.
    let succeeded = false;
    for (let i = 0; i < validCases; i += 1) {
      const realIds = pathParameters.length === 0 || i % 4 !== 3;
      const answer = await record(operation, 'valid', realIds ? 'valid request' : 'valid request, unknown id', valuesFor(await fixtures.fresh(), i, realIds), (a) => {
        if (a.status >= 500) return [`a valid request answered ${a.status}`];
        if (NEVER_FOR_VALID_INPUT.has(a.status)) return [`a valid request was refused with ${a.status}: ${a.text.slice(0, 200)}`];
        if (!realIds && a.status < 400) return [`a request for an unknown id answered ${a.status}`];
        return [];
      });
      succeeded ||= answer.status >= 200 && answer.status < 300;
    }
    if (!succeeded) {
      cases.push({ operationId: operation.operationId, kind: 'valid', title: 'some valid request succeeds', passed: false, violations: ['no valid request got a 2xx'], request: '', status: 0 });
    }

    // Invalid requests, one fault each: 400 naming the field.
    const fixture = await fixtures.fresh();
    const base = valuesFor(fixture, 0, true);
    if (operation.body) base.body = bound(bodies[0], fixture);
    const expect400 = (field: string) => (a: Answer) => {
      const problems: string[] = [];
      if (a.status !== 400) problems.push(`expected 400, got ${a.status}: ${a.text.slice(0, 200)}`);
      else if (!a.text.includes(field)) problems.push(`the 400 does not name "${field}": ${a.text.slice(0, 300)}`);
      return problems;
    };
    if (operation.body) {
      for (const mutation of mutateValue(operation.body.schema, base.body)) {
        const field = mutation.path.at(-1) ?? 'body';
        await record(operation, 'invalid', `body${mutation.path.map((p) => `/${p}`).join('')}: ${mutation.fault}`, { ...base, body: mutation.value }, expect400(field));
      }
    }
    for (const parameter of [...pathParameters, ...queryParameters]) {
      const current = parameter.in === 'path' ? base.path?.[parameter.name] : base.query?.[parameter.name];
      for (const mutation of mutateParameter(parameter.schema, current)) {
        const values =
          parameter.in === 'path'
            ? { ...base, path: { ...base.path, [parameter.name]: String(mutation.value) } }
            : { ...base, query: { ...base.query, [parameter.name]: mutation.value } };
        await record(operation, 'invalid', `${parameter.in} ${parameter.name}: ${mutation.fault}`, values, expect400(parameter.name));
      }
    }

    // Hostile requests: anything but a 5xx or a hang.
    for (const hostile of hostileCases(operation, base)) {
      await record(operation, 'hostile', hostile.title, hostile.values, (a) => (a.status >= 500 ? [`answered ${a.status}`] : []));
    }
  }

  for (const check of await statefulChecks({ byId, fixtures, exchange, checker })) cases.push(check);

  // With --api-key: every operation that requires credentials refuses a request without them.
  if (apiKey) {
    for (const operation of spec.operations.filter((o) => o.secured)) {
      const path = Object.fromEntries(operation.parameters.filter((p) => p.in === 'path').map((p) => [p.name, '00000000-0000-4000-8000-000000000000']));
      const request = buildExchange(operation, { path });
      const answer = await send(baseUrl, request, undefined, timeoutMs);
      const violations = [...checker.violations(operation, answer), ...(answer.status === 401 ? [] : [`without an API key: expected 401, got ${answer.status}`])];
      cases.push({ operationId: operation.operationId, kind: 'auth', title: 'refused without an API key', passed: violations.length === 0, violations, request: asCurl(baseUrl, request), status: answer.status });
    }
  }

  // After all that, the server still answers its health check.
  const health = byId.get('getSessionsHealth') ?? spec.operations.find((o) => o.method === 'GET' && !o.path.includes('{'));
  if (health) {
    await record(health, 'health', 'still answers after the hostile requests', {}, (a) => (a.status >= 200 && a.status < 300 ? [] : [`answered ${a.status}`]));
  }
  await fixtures.cleanup();

  const passed = cases.filter((c) => c.passed).length;
  return { baseUrl, seed, cases, passed, failed: cases.length - passed };
}
