// The conformance run: plans every case from the spec, runs them (in parallel with
// `workers`; each flow's steps in order), then a last health check, then deletes what
// it created, even when it fails or is interrupted. Talks to the server over HTTP only.
import { type CheckName, CHECKS, ResponseChecker, type Violation } from './check.js';
import { type Fixture, type FixtureMaker, genericFixtures, placeholder, sessionsFixtures, substitute } from './fixtures.js';
import { type Flow, flows, type StreamStep } from './flows.js';
import { type Answer, asCurl, type Connection, hasCredentials, send, withoutCredentials } from './http.js';
import { expectationViolations, isServerError, succeeds } from './judge.js';
import { type CaseKind, type PlannedCase, planOperation } from './plan.js';
import { buildExchange, type RequestValues } from './requests.js';
import { isSessionsSpec, loadSpec, type Operation } from './spec-model.js';
import { framesRead, readStreamStep } from './stream-step.js';
import { type Cleanup, ResourceTracker } from './tracker.js';

export type { CaseKind } from './plan.js';

export interface ConformanceOptions {
  baseUrl: string;
  specPath: string;
  seed: number;
  apiKey?: string;
  /** Sent with every request, besides the API key. */
  headers?: Record<string, string>;
  /** Generated valid requests per operation. */
  validCases?: number;
  timeoutMs?: number;
  /** Cases run at once; a flow's steps always run in order. */
  workers?: number;
  /** Only these checks (default: all). */
  checks?: CheckName[];
  includeOperations?: string[];
  excludeOperations?: string[];
  /** Only the cases with these keys (`--replay`). */
  only?: ReadonlySet<string>;
  /** Keep what the run created instead of deleting it. */
  keepData?: boolean;
  /** How long the flow that waits for a session to expire may wait (0: it does not run). */
  expiryWaitMs?: number;
  /** Stops starting cases; what was created is still deleted. */
  signal?: AbortSignal;
  onCase?: (result: CaseResult, done: number, total: number) => void;
  onOperation?: (summary: OperationSummary) => void;
}

export interface CaseResult {
  /** Stable for a spec, seed and case count: `--replay` runs cases by key. */
  key: string;
  operationId: string;
  kind: CaseKind;
  title: string;
  passed: boolean;
  violations: Violation[];
  /** The requests as curl commands, to reproduce a failure by hand. */
  requests: string[];
  /** The last answer's status (0: no answer) and body, truncated. */
  status: number;
  body: string;
  durationMs: number;
}

export interface OperationSummary {
  operationId: string;
  cases: number;
  passed: number;
  failed: number;
}

export interface Report {
  tool: 'sessions-api-conformance';
  baseUrl: string;
  specPath: string;
  seed: number;
  validCases: number;
  checks: CheckName[];
  cases: CaseResult[];
  passed: number;
  failed: number;
  /** Set when the run was stopped before every case ran. */
  interrupted: boolean;
  /** Set when the target stopped answering during the run (the CLI exits 2). */
  lostTarget?: string;
  cleanup: Cleanup & { kept: number };
  durationMs: number;
}

/** A usage fault found before any request (unknown operation, unreadable spec): exit 2. */
export class UsageError extends Error {}
/** The target does not answer at all: exit 2. */
export class UnreachableError extends Error {}

/** Requests in a row without an answer (refused, reset, timed out) after which the target counts as gone and the run stops. */
const LOST_AFTER = 10;
const SHOWN_BODY = 500;
const RESPONSE_CHECKS: CheckName[] = ['responds', 'no-server-error', 'status-documented', 'content-type', 'response-schema', 'response-headers'];
const PRIMARY: Record<CaseKind, CheckName[]> = {
  valid: ['valid-input-accepted', 'unknown-id-refused'],
  invalid: ['invalid-input-refused'],
  hostile: ['no-server-error'],
  auth: ['auth-required'],
  stateful: ['deleted-resource-gone', 'sessions-flows', 'event-stream'],
  health: ['still-healthy'],
};

/** A row of the report that is no operation: `name`, or `name (suite)` when the spec has an operation so named. */
export const pseudoRowName = (name: string, operationIds: readonly string[]) => (operationIds.includes(name) ? `${name} (suite)` : name);

const truncate = (text: string) => (text.length > SHOWN_BODY ? `${text.slice(0, SHOWN_BODY)}…(${text.length} chars)` : text);

async function probe(connection: Connection): Promise<void> {
  const answer = await send(connection, { method: 'GET', url: '/', headers: {} });
  if (answer.error) throw new UnreachableError(`cannot reach ${connection.baseUrl}: ${answer.error.replace(/^no answer: /, '')}`);
}

async function pool<T>(items: T[], workers: number, work: (item: T) => Promise<void>, signal?: AbortSignal): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length && !signal?.aborted) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.max(1, workers) }, worker));
}

export async function runConformance(options: ConformanceOptions): Promise<Report> {
  const started = Date.now();
  const { seed } = options;
  const validCases = options.validCases ?? 10;
  const connection: Connection = {
    baseUrl: options.baseUrl,
    timeoutMs: options.timeoutMs ?? 10_000,
    // A --header of the same name, in any case, replaces the --api-key value.
    headers: {
      ...(options.apiKey && !Object.keys(options.headers ?? {}).some((name) => name.toLowerCase() === 'x-api-key') ? { 'x-api-key': options.apiKey } : {}),
      ...options.headers,
    },
  };
  const selected = new Set<CheckName>(options.checks ?? (Object.keys(CHECKS) as CheckName[]));
  let spec;
  try {
    spec = loadSpec(options.specPath);
  } catch (error) {
    // One line: a YAML parser's message goes on with an excerpt of the document.
    throw new UsageError(`cannot read the spec: ${(error as Error).message.split('\n')[0]!.replace(/:$/, '')}`);
  }
  const byId = new Map(spec.operations.map((operation) => [operation.operationId, operation]));
  const streamsById = new Map(spec.streams.map((operation) => [operation.operationId, operation]));
  // The rows of the flows and the last health check, named apart from any operation of the spec.
  const [flowsRow, healthRow] = ['stateful', 'still-healthy'].map((name) => pseudoRowName(name, [...byId.keys(), ...streamsById.keys()])) as [string, string];
  for (const id of [...(options.includeOperations ?? []), ...(options.excludeOperations ?? [])]) {
    if (!byId.has(id) && !streamsById.has(id)) throw new UsageError(`unknown operation "${id}" (the spec has: ${[...byId.keys(), ...streamsById.keys()].join(', ')})`);
  }
  const included = (operationId: string) =>
    (!options.includeOperations?.length || options.includeOperations.includes(operationId)) && !options.excludeOperations?.includes(operationId);
  await probe(connection);

  // Stops on the caller's signal, or when the target stops answering.
  const stop = new AbortController();
  options.signal?.addEventListener('abort', () => stop.abort(), { once: true });
  if (options.signal?.aborted) stop.abort();
  let failuresInARow = 0;
  let lostTarget: string | undefined;
  const checker = new ResponseChecker();
  const tracker = new ResourceTracker(spec);
  const exchange = async (operation: Operation, values: RequestValues, through = connection) => {
    const request = buildExchange(operation, values);
    const answer = await send(through, request);
    tracker.learn(operation, answer);
    // No answer at all: refused, reset, or none within the timeout (a server that hangs).
    failuresInARow = answer.status === 0 ? failuresInARow + 1 : 0;
    if (failuresInARow >= LOST_AFTER && !lostTarget) {
      lostTarget = `${connection.baseUrl} stopped answering (${answer.error})`;
      stop.abort();
    }
    return { answer, request: asCurl(through, request) };
  };
  const call = async (operationId: string, values: RequestValues): Promise<Answer | undefined> => {
    const operation = byId.get(operationId);
    return operation ? (await exchange(operation, values)).answer : undefined;
  };
  const sessions = isSessionsSpec(spec);
  const fixtures: FixtureMaker = sessions ? sessionsFixtures(call) : genericFixtures(spec, call, seed);
  const kept = (violations: Violation[]) => violations.filter((v) => selected.has(v.check));
  const runs = (kind: CaseKind) =>
    (kind !== 'auth' || (hasCredentials(connection) && selected.has('auth-required'))) && [...PRIMARY[kind], ...RESPONSE_CHECKS].some((check) => selected.has(check));
  const wanted = (key: string) => !options.only || options.only.has(key);

  // The plan.
  const cases: PlannedCase[] = [];
  for (const [index, operation] of spec.operations.entries()) {
    if (!included(operation.operationId)) continue;
    const planned = planOperation(operation, index, seed, validCases, fixtures.names);
    const coverage = `${operation.operationId}/valid/coverage`;
    cases.push(...planned.filter((c) => runs(c.kind) && (wanted(c.key) || (c.kind === 'valid' && options.only?.has(coverage)))));
  }
  const flowList: Flow[] = runs('stateful')
    ? flows({ spec, sessions, fixtures, expiryWaitMs: options.expiryWaitMs ?? 0 }).filter(
        (flow) => selected.has(flow.check) && flow.operations.every(included) && wanted(flow.key),
      )
    : [];
  // Called with nothing: a GET that needs no parameter (not one whose 400 to an empty call is right).
  const healthOperation = byId.get('getSessionsHealth') ?? spec.operations.find((o) => o.method === 'GET' && !o.path.includes('{') && !o.parameters.some((p) => p.required));
  const health = healthOperation && runs('health') && included(healthOperation.operationId) && wanted('health') ? healthOperation : undefined;
  const total = cases.length + flowList.length + (health ? 1 : 0);

  // Running it.
  const results: CaseResult[] = [];
  const remaining = new Map<string, number>();
  for (const c of cases) remaining.set(c.operationId, (remaining.get(c.operationId) ?? 0) + 1);
  if (flowList.length > 0) remaining.set(flowsRow, flowList.length);
  const succeeded = new Set<string>();
  /** Operations with a case that could not run for want of an id: their "some valid request succeeds" is not judged. */
  const blocked = new Set<string>();
  const push = (result: CaseResult) => {
    results.push(result);
    options.onCase?.(result, results.length, total);
  };
  const finishOne = (operationId: string) => {
    const left = (remaining.get(operationId) ?? 1) - 1;
    remaining.set(operationId, left);
    if (left > 0) return;
    const ranValid = cases.some((c) => c.operationId === operationId && c.kind === 'valid' && c.expectation.type === 'valid' && c.expectation.realIds);
    // A replay runs this check only if it failed before: then every valid case of the operation runs again.
    const checksCoverage = !options.only || options.only.has(`${operationId}/valid/coverage`);
    if (ranValid && checksCoverage && !blocked.has(operationId) && selected.has('valid-input-accepted') && !succeeded.has(operationId) && !stop.signal.aborted) {
      push({
        key: `${operationId}/valid/coverage`,
        operationId,
        kind: 'valid',
        title: 'some valid request succeeds',
        passed: false,
        violations: [{ check: 'valid-input-accepted', message: 'no valid request got a 2xx (or a 3xx it documents)' }],
        requests: [],
        status: 0,
        body: '',
        durationMs: 0,
      });
    }
    const mine = results.filter((r) => r.operationId === operationId);
    const passed = mine.filter((r) => r.passed).length;
    options.onOperation?.({ operationId, cases: mine.length, passed, failed: mine.length - passed });
  };

  const shared = new Map<string, Promise<Fixture>>();
  const sharedFixture = (operationId: string) => {
    if (!shared.has(operationId)) shared.set(operationId, fixtures.fresh());
    return shared.get(operationId)!;
  };

  const runCase = async (planned: PlannedCase) => {
    const begun = Date.now();
    const operation = byId.get(planned.operationId)!;
    const fixture = fixtures.names.size === 0 ? {} : planned.fixture === 'fresh' ? await fixtures.fresh() : await sharedFixture(planned.operationId);
    const unauthenticated = planned.expectation.type === 'unauthenticated';
    const values = substitute(planned.values, fixture);
    // An id the suite could not make: sent, its placeholder would be blamed on this operation.
    const unmade = [...fixtures.names].find((name) => !(name in fixture) && JSON.stringify([values.path, values.query, values.body]).includes(placeholder(name)));
    if (unmade !== undefined) {
      blocked.add(planned.operationId);
      const why = fixtures.whyNot?.(unmade) ?? 'its create gave none';
      push({ key: planned.key, operationId: planned.operationId, kind: planned.kind, title: planned.title, passed: false, violations: [{ check: 'valid-input-accepted', message: `not run: no ${unmade} to use, as ${why}` }], requests: [], status: 0, body: '', durationMs: Date.now() - begun });
      return finishOne(planned.operationId);
    }
    const { answer, request } = await exchange(operation, values, unauthenticated ? withoutCredentials(connection) : connection);
    const closedOnPurpose = planned.expectation.type === 'hostile' && planned.expectation.mayCloseConnection && /EPIPE|ECONNRESET|UND_ERR_SOCKET/.test(answer.error ?? '');
    const violations = closedOnPurpose ? [] : checker.violations(operation, answer);
    if (!answer.error) {
      violations.push(...expectationViolations(operation, planned.expectation, answer));
      if (planned.expectation.type === 'valid' && planned.expectation.realIds && succeeds(operation, answer.status)) succeeded.add(planned.operationId);
    }
    const shownViolations = kept(violations);
    push({
      key: planned.key,
      operationId: planned.operationId,
      kind: planned.kind,
      title: planned.title,
      passed: shownViolations.length === 0,
      violations: shownViolations,
      requests: [request],
      status: answer.status,
      body: truncate(answer.text),
      durationMs: Date.now() - begun,
    });
    finishOne(planned.operationId);
  };

  const runFlow = async (flow: Flow) => {
    const begun = Date.now();
    const violations: Violation[] = [];
    const requests: string[] = [];
    let last: Answer | undefined;
    const step = async (operationId: string, values: RequestValues) => {
      const operation = byId.get(operationId)!;
      const { answer, request } = await exchange(operation, values);
      requests.push(request);
      last = answer;
      violations.push(...checker.violations(operation, answer).map((v) => ({ ...v, message: `${operationId}: ${v.message}` })));
      if (isServerError(operation, answer.status)) violations.push({ check: 'no-server-error', message: `${operationId}: answered ${answer.status}` });
      return { status: answer.status, body: answer.json as any, text: answer.text };
    };
    const stream: StreamStep = async (operationId, values, frames) => {
      const operation = streamsById.get(operationId)!;
      const { request, answer } = await readStreamStep(connection, operation, values, frames);
      requests.push(request);
      const { events, problems } = framesRead(checker, operation, answer);
      last = { status: answer.status, contentType: answer.contentType, text: answer.frames.map((frame) => frame.data).join('\n') };
      return { events, problems: problems.map((problem) => `${operationId}: ${problem}`) };
    };
    try {
      for (const problem of await flow.run(step, stream)) violations.push({ check: flow.check, message: problem });
    } catch (error) {
      violations.push({ check: flow.check, message: `the flow broke: ${String(error)}` });
    }
    const shownViolations = kept(violations);
    push({
      key: flow.key,
      operationId: flowsRow,
      kind: 'stateful',
      title: flow.title,
      passed: shownViolations.length === 0,
      violations: shownViolations,
      requests,
      status: last?.status ?? 0,
      body: truncate(last?.text ?? ''),
      durationMs: Date.now() - begun,
    });
    finishOne(flowsRow);
  };

  let cleanup: Cleanup = { deleted: 0, left: [] };
  let keptCount = 0;
  try {
    const units: Array<() => Promise<void>> = [...cases.map((c) => () => runCase(c)), ...flowList.map((f) => () => runFlow(f))];
    await pool(units, options.workers ?? 1, (unit) => unit(), stop.signal);
    if (health && !stop.signal.aborted) {
      const { answer, request } = await exchange(health, {});
      const violations = checker.violations(health, answer);
      if (!succeeds(health, answer.status)) violations.push({ check: 'still-healthy', message: `answered ${answer.status || answer.error}` });
      const shownViolations = kept(violations);
      // A row of its own, as the flows have: counted in its operation's row, it made the table disagree with the progress lines.
      push({
        key: 'health',
        operationId: healthRow,
        kind: 'health',
        title: `${health.operationId} still answers after the hostile requests`,
        passed: shownViolations.length === 0,
        violations: shownViolations,
        requests: [request],
        status: answer.status,
        body: truncate(answer.text),
        durationMs: 0,
      });
      options.onOperation?.({ operationId: healthRow, cases: 1, passed: shownViolations.length === 0 ? 1 : 0, failed: shownViolations.length === 0 ? 0 : 1 });
    }
  } finally {
    if (options.keepData) keptCount = tracker.count;
    else if (lostTarget) cleanup = { deleted: 0, left: [`everything created (${tracker.count}): the target stopped answering`] };
    else cleanup = await tracker.cleanup(async (operation, values) => (await exchange(operation, values)).answer, options.workers ?? 1);
  }

  const passed = results.filter((c) => c.passed).length;
  return {
    tool: 'sessions-api-conformance',
    baseUrl: options.baseUrl,
    specPath: options.specPath,
    seed,
    validCases,
    checks: [...selected],
    cases: results,
    passed,
    failed: results.length - passed,
    interrupted: stop.signal.aborted,
    ...(lostTarget ? { lostTarget } : {}),
    cleanup: { ...cleanup, kept: keptCount },
    durationMs: Date.now() - started,
  };
}
