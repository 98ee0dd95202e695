// What the suite needs to exist on the server, made through the API itself. Cases are
// planned with placeholders (`@@agentId@@`) where an id that exists must go; each case
// gets real ids at run time, from a fixture made for it (or shared by its operation).
import { randomUUID } from 'node:crypto';
import type { Answer } from './http.js';
import type { RequestValues } from './requests.js';
import { ResponseChecker } from './check.js';
import type { Operation, Schema, SpecModel } from './spec-model.js';
import { samples } from './generate.js';

/** Name of a field or parameter → an existing id to put there. */
export type Fixture = Record<string, string>;

export type Call = (operationId: string, values: RequestValues) => Promise<Answer | undefined>;

export interface FixtureMaker {
  /** Names of fields and parameters that must name things that exist. */
  names: ReadonlySet<string>;
  /** Ids made for the names it could make (a name left out could not be made: see `whyNot`). */
  fresh(): Promise<Fixture>;
  /** Why the last attempt to make an id for `name` failed. */
  whyNot?(name: string): string | undefined;
}

export const placeholder = (name: string) => `@@${name}@@`;

/** A body or query with every field named in `names` set to its placeholder. */
export function bound<T>(value: T, names: ReadonlySet<string>): T {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return value;
  const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) };
  for (const key of Object.keys(copy)) if (names.has(key)) copy[key] = placeholder(key);
  return copy as T;
}

function replaceIn(value: unknown, fixture: Fixture): unknown {
  if (typeof value === 'string') return !value.includes('@@') ? value : value.replace(/@@(\w+)@@/g, (token, name: string) => fixture[name] ?? token);
  if (Array.isArray(value)) return value.map((item) => replaceIn(item, fixture));
  if (value && typeof value === 'object') {
    const copy: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) Object.defineProperty(copy, key, { value: replaceIn(item, fixture), enumerable: true, writable: true, configurable: true });
    return copy;
  }
  return value;
}

/** The values with every placeholder replaced by the fixture's id. */
export function substitute(values: RequestValues, fixture: Fixture): RequestValues {
  const raw = values.rawBody;
  return {
    ...values,
    path: replaceIn(values.path, fixture) as Record<string, string> | undefined,
    query: replaceIn(values.query, fixture) as Record<string, unknown> | undefined,
    body: replaceIn(values.body, fixture),
    rawBody:
      raw === undefined || typeof raw === 'string'
        ? (replaceIn(raw, fixture) as string | undefined)
        : Buffer.from(replaceIn(Buffer.from(raw).toString('latin1'), fixture) as string, 'latin1'),
  };
}

/** The first value under one of `keys`, breadth first, in a JSON answer. */
export function findId(json: unknown, keys: string[]): string | undefined {
  for (const key of keys) {
    const queue: unknown[] = [json];
    while (queue.length > 0) {
      const node = queue.shift();
      if (!node || typeof node !== 'object') continue;
      const found = (node as Record<string, unknown>)[key];
      if (Object.hasOwn(node, key) && (typeof found === 'string' || typeof found === 'number')) return String(found);
      queue.push(...Object.values(node));
    }
  }
  return undefined;
}

/** The Sessions API: an agent, with a session holding one message, a user id, and a webhook. */
export function sessionsFixtures(call: Call): FixtureMaker {
  return {
    // `transport` is no id, but is pinned the same way: generated messages answer at once
    // (nothing plays the agent for them; the agent-reply flow checks transport http).
    names: new Set(['agentId', 'userId', 'authorId', 'sessionId', 'webhookId', 'transport']),
    async fresh() {
      const userId = randomUUID();
      const agent = await call('createAgent', { body: { characterJson: { name: 'Conformance agent' } } });
      const agentId = findId(agent?.json, ['id']) ?? randomUUID();
      const session = await call('createSession', { body: { agentId, userId, metadata: { platform: 'conformance' } } });
      const sessionId = findId(session?.json, ['sessionId']) ?? randomUUID();
      await call('sendSessionMessage', { path: { sessionId }, body: { content: 'Hello from the conformance suite' } });
      // Bound to the agent, so that the server delivers nothing else to this unreachable URL.
      const webhook = await call('createWebhook', { body: { url: 'https://conformance.invalid/hook', agentId } });
      const webhookId = findId(webhook?.json, ['id']) ?? randomUUID();
      return { agentId, userId, authorId: userId, sessionId, webhookId, transport: 'websocket' };
    },
  };
}

/** The POST on the collection a path parameter names a member of (`POST /pets` for `{petId}` in `/pets/{petId}`). */
function producerOf(spec: SpecModel, operation: Operation, name: string): Operation | undefined {
  const at = operation.path.indexOf(`/{${name}}`);
  if (at < 0) return undefined;
  const collection = operation.path.slice(0, at);
  return spec.operations.find((o) => o.method === 'POST' && o.path === collection && !o.path.includes('{'));
}

const checker = new ResponseChecker();

/** Whether `id`, sent as a path value, honours the parameter's `schema` (digits read as a number where it takes numbers). */
export function fitsParameter(schema: Schema, id: string): boolean {
  const types = [schema.type].flat();
  return checker.honours(schema, (types.includes('integer') || types.includes('number')) && /^-?\d+(\.\d+)?$/.test(id) ? Number(id) : id);
}

/** Any spec: for each path parameter with a producer, one member made through it. */
export function genericFixtures(spec: SpecModel, call: Call, seed: number): FixtureMaker {
  const producers = new Map<string, Operation>();
  const schemas = new Map<string, Schema>();
  for (const operation of spec.operations) {
    for (const parameter of operation.parameters.filter((p) => p.in === 'path')) {
      const producer = producerOf(spec, operation, parameter.name);
      if (producer) producers.set(parameter.name, producer);
      if (!schemas.has(parameter.name)) schemas.set(parameter.name, parameter.schema);
    }
  }
  let made = 0;
  const failures = new Map<string, string>();
  return {
    names: new Set(producers.keys()),
    async fresh() {
      const fixture: Fixture = {};
      for (const [name, producer] of producers) {
        made += 1;
        const body = producer.body ? samples(producer.body.schema, 1, seed + made)[0] : undefined;
        const answer = await call(producer.operationId, { body });
        const id = findId(answer?.json, [name, 'id']);
        // An id its own parameter refuses: sent, the request would be invalid, its refusal blamed on the operation.
        if (id !== undefined && fitsParameter(schemas.get(name) ?? {}, id)) fixture[name] = id;
        else if (id !== undefined) failures.set(name, `${producer.operationId} answered an id, ${JSON.stringify(id)}, that ${name}'s schema refuses`);
        else failures.set(name, answer?.error ? `${producer.operationId} got no answer (${answer.error})` : `${producer.operationId} answered ${answer?.status}${answer?.text ? `: ${answer.text.slice(0, 200)}` : ''}`);
      }
      return fixture;
    },
    whyNot: (name) => failures.get(name),
  };
}
