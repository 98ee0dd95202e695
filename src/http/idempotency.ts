// Idempotency keys (IETF `Idempotency-Key` draft, Stripe's semantics) on every operation
// whose spec declares the header. Same key + same request within 24 h: the first
// answer again, with `Idempotent-Replayed: true`, and nothing written; a different
// request: 422; the first still running: 409. The handler stores the answer in the
// same transaction as its write (`carryAnswer`), and the store refuses a second write
// under one key even from another process.
//
// Nothing is looked up before the handler: a key's first use (the common case) costs
// only its record's insert. A handler that fails under a key (the write refused the key
// as taken, or anything before the write, such as an agent deleted since the first
// answer) reads the record then: a record found is replayed (or refused, 422), so the
// answers are those a lookup first would give. A request whose key another in this
// process holds reads the record at once: a replay, or 409 while the first still runs.
import { hash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteHandlerMethod } from 'fastify';
import { type Clock, steadyWallTime } from '../domain/clock.js';
import { ApiError } from '../errors.js';
import { type SpecOperation, specOperations } from '../spec.js';
import { IdempotencyKeyTaken, type Carried, type IdempotencyRecord, type Store } from '../storage/store.js';
import { operationIdOf } from './auth.js';
import { headerLines } from './client-errors.js';

const IDEMPOTENCY_HEADER = 'idempotency-key';
const REPLAYED_HEADER = 'idempotent-replayed';
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60_000;
const JSON_TYPE = 'application/json; charset=utf-8';

interface PendingRecord extends Omit<IdempotencyRecord, 'status' | 'body'> {
  /** The answer's JSON once the write has built it: what is stored is what is sent. */
  answer?: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set while a request with an Idempotency-Key runs its write. */
    idempotency: PendingRecord | null;
  }
}

/** Operations whose spec declares the Idempotency-Key header. */
export function idempotentOperations(): Set<string> {
  const declares = (operation: SpecOperation) => operation.parameters.some((p) => p.in === 'header' && p.name.toLowerCase() === IDEMPOTENCY_HEADER);
  return new Set(specOperations().filter(declares).map((operation) => operation.operationId));
}

/**
 * The same request: method, URL and the body's bytes. A retry resends what it sent; a
 * body re-encoded differently (other key order or spacing) counts as a different one.
 */
function fingerprintOf(request: FastifyRequest): string {
  return hash('sha256', `${request.method} ${request.url}\n${request.bodyText}`, 'base64url');
}

/** JSON with object keys sorted: equal values, equal text (the legacy fingerprint's form). */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/**
 * Records stored by a server before 2026-11-26 (ad0b5c3) hold another fingerprint: the
 * method, URL and the body's value as canonical JSON, SHA-256 in hex (64 characters; the
 * current one is 43 in base64url). A retry reaching the upgraded server within the
 * record's 24 h is compared that way, so it is replayed, not refused as a new request.
 */
const LEGACY_FINGERPRINT = /^[0-9a-f]{64}$/;
function sameRequest(recorded: string, pending: PendingRecord, request: FastifyRequest): boolean {
  if (recorded === pending.fingerprint) return true;
  return LEGACY_FINGERPRINT.test(recorded) && recorded === hash('sha256', `${request.method} ${request.url}\n${canonicalJson(request.body)}`, 'hex');
}

/**
 * The rows a handler's write carries when the request has an Idempotency-Key: its answer
 * (`status`, and the body built from what was written), stored in the write's transaction.
 */
export function carryAnswer<T>(request: FastifyRequest, status: number, answer: (written: T) => unknown): Carried<T> | undefined {
  const pending = request.idempotency;
  if (!pending) return undefined;
  return {
    idempotency: (written) => {
      pending.answer = JSON.stringify(answer(written));
      const { scope, key, fingerprint, createdAt, expiresAt } = pending; // not spread: it holds doubles (slow in V8)
      return { scope, key, fingerprint, createdAt, expiresAt, status, body: pending.answer };
    },
  };
}

/**
 * Sends the answer the write stored with its record, when it stored one (the handler
 * returns what this returns): the JSON is built once, for the record and the wire.
 */
export function sendCarriedAnswer(request: FastifyRequest, reply: FastifyReply): FastifyReply | undefined {
  const answer = request.idempotency?.answer;
  return answer === undefined ? undefined : reply.type(JSON_TYPE).send(answer);
}

/**
 * Sends `answer` as the request's final answer and, under an Idempotency-Key, first makes
 * it the stored one: for a handler whose answer is known only after its write (the
 * agent's reply waited for), so that a replay answers what the first request got.
 */
export async function sendSettledAnswer(request: FastifyRequest, reply: FastifyReply, store: Store, answer: unknown): Promise<FastifyReply> {
  const body = JSON.stringify(answer);
  const pending = request.idempotency;
  // Live as of its own making: this request wrote it (a wait is far shorter than its 24 hours).
  if (pending) {
    // The write is done: a failure here must not answer "nothing was changed". The record
    // keeps the answer its write stored (as when no reply came), and a replay answers that.
    await store.settleIdempotencyRecord({ ...pending, status: reply.statusCode, body }, pending.createdAt).catch((error: unknown) => {
      request.log.warn({ err: error }, 'the Idempotency-Key record keeps the stored answer: settling it failed');
    });
  }
  return reply.type(JSON_TYPE).send(body);
}

export function installIdempotency(app: FastifyInstance, { store, clock }: { store: Store; clock: Clock }): void {
  const operations = idempotentOperations();
  // A record's 24 hours run on the steady wall time: a clock stepped a day ahead for a
  // moment neither makes a retry write again nor lets the record be replaced.
  const actingNow = steadyWallTime(clock);
  /**
   * scope + key → the record of the request running under it, in this process. Not the
   * request: this long-lived map holding every keyed request in flight made young
   * collections keep them (3-4× longer scavenges, about a third of a keyed create's cost).
   */
  const running = new Map<string, PendingRecord>();
  const slotOf = (scope: string, key: string) => `${scope}\n${key}`;

  /** The recorded answer to a request that failed under its key, or the failure itself. */
  async function replayOrThrow(request: FastifyRequest, reply: FastifyReply, error: unknown): Promise<FastifyReply> {
    const pending = request.idempotency;
    // Its own write was built (and failed after): the key was free, there is nothing to replay.
    if (!pending || (pending.answer !== undefined && !(error instanceof IdempotencyKeyTaken))) throw error;
    // Its answer was built but not stored (the key was taken): requests behind it replay too.
    pending.answer = undefined;
    const recorded = await store.getIdempotencyRecord(pending.scope, pending.key, pending.createdAt);
    if (!recorded) throw error;
    return replay(request, reply, recorded, pending);
  }

  function replay(request: FastifyRequest, reply: FastifyReply, recorded: IdempotencyRecord, pending: PendingRecord): FastifyReply {
    if (!sameRequest(recorded.fingerprint, pending, request)) {
      throw new ApiError('IDEMPOTENCY_KEY_REUSED', 'headers/idempotency-key was first used with a different body or route');
    }
    // The first answer as it was: not the challenge of a 401 the failed handler had begun (its key revoked since).
    reply.removeHeader('www-authenticate');
    return reply.header(REPLAYED_HEADER, 'true').code(recorded.status).type(JSON_TYPE).send(recorded.body);
  }

  /**
   * A request whose key another request in this process holds: that one is the first, still
   * running (409), or a retry replaying the recorded answer, which this one replays too
   * (retries sent at once, by a client and a proxy, all get the first answer).
   */
  async function answerBehind(holder: PendingRecord, pending: PendingRecord, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const inUse = new ApiError('IDEMPOTENCY_KEY_IN_USE', 'headers/idempotency-key is in use by a request still running; retry later');
    // The holder wrote under the key: its answer may not be the final one yet (an agent's reply waited for).
    if (holder.answer !== undefined) throw inUse;
    const recorded = await store.getIdempotencyRecord(pending.scope, pending.key, pending.createdAt);
    // Re-checked: the holder may have written (and committed) while the record was read.
    if (!recorded || holder.answer !== undefined) throw inUse;
    return replay(request, reply, recorded, pending);
  }

  app.decorateRequest('idempotency', null);
  app.addHook('onRoute', (route) => {
    const operationId = (route.schema as { operationId?: string } | undefined)?.operationId;
    if (operationId === undefined || !operations.has(operationId)) return;
    const handler = route.handler;
    route.handler = async function (this: FastifyInstance, request, reply) {
      if (!request.idempotency) return handler.call(this, request, reply);
      try {
        return await handler.call(this, request, reply);
      } catch (error) {
        return replayOrThrow(request, reply, error);
      }
    } as RouteHandlerMethod;
  });
  app.addHook('preHandler', (request, reply, done) => {
    const key = request.headers[IDEMPOTENCY_HEADER];
    if (typeof key !== 'string') return done(); // most requests: no route lookup
    const operationId = operationIdOf(request);
    if (operationId === undefined || !operations.has(operationId)) return done();
    // Node joins several lines into one value ("a, b"): a key that was never sent.
    if (headerLines(request.raw.rawHeaders, IDEMPOTENCY_HEADER) > 1) return done(new ApiError('INVALID_REQUEST', 'headers/idempotency-key must be sent once'));
    const scope = request.principal?.id ?? 'anonymous';
    const slot = slotOf(scope, key);
    const now = actingNow();
    const pending = { scope, key, fingerprint: fingerprintOf(request), createdAt: now, expiresAt: now + IDEMPOTENCY_TTL_MS };
    const holder = running.get(slot);
    // Answered here, the handler skipped (a hook that sends does not call done).
    if (holder) return void answerBehind(holder, pending, request, reply).catch(done);
    running.set(slot, pending);
    request.idempotency = pending;
    // The response's end, however it ends: answered, or the client gone while a stream
    // or a wait for the agent's reply had taken the reply over (no onResponse then).
    reply.raw.once('close', () => {
      if (running.get(slot) === pending) running.delete(slot);
    });
    done();
  });
}
