// Idempotency keys (IETF `Idempotency-Key` draft, Stripe's semantics) on every operation
// whose spec declares the header. Same key + same request within 24 h: the first
// answer again, with `Idempotent-Replayed: true`, and nothing written; a different
// request: 422; the first still running: 409. The handler stores the answer in the
// same transaction as its write (`carryAnswer`), and the table's primary key makes a
// second write under one key fail even from another process.
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Clock } from '../domain/clock.js';
import { ApiError } from '../errors.js';
import { specDocument } from '../spec.js';
import type { Carried, IdempotencyRecord, Store } from '../storage/store.js';
import { operationIdOf } from './auth.js';

export const IDEMPOTENCY_HEADER = 'idempotency-key';
export const REPLAYED_HEADER = 'idempotent-replayed';
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60_000;

type PendingRecord = Omit<IdempotencyRecord, 'status' | 'body'>;

declare module 'fastify' {
  interface FastifyRequest {
    /** Set while a request with an Idempotency-Key runs its write. */
    idempotency: PendingRecord | null;
  }
}

/** Operations whose spec declares the Idempotency-Key header. */
export function idempotentOperations(): Set<string> {
  const ids = new Set<string>();
  for (const item of Object.values(specDocument().paths)) {
    for (const operation of Object.values(item as Record<string, { operationId?: string; parameters?: Array<{ $ref?: string; name?: string; in?: string }> }>)) {
      const declares = (operation.parameters ?? []).some(
        (p) => p.$ref === '#/components/parameters/IdempotencyKey' || (p.in === 'header' && p.name?.toLowerCase() === IDEMPOTENCY_HEADER),
      );
      if (declares && operation.operationId) ids.add(operation.operationId);
    }
  }
  return ids;
}

/** JSON with object keys sorted: equal values, equal text. */
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

function fingerprintOf(request: FastifyRequest): string {
  return createHash('sha256').update(`${request.method} ${request.url}\n${canonicalJson(request.body)}`).digest('hex');
}

/**
 * The rows a handler's write carries when the request has an Idempotency-Key: its answer
 * (`status`, and the body built from what was written), stored in the write's transaction.
 */
export function carryAnswer<T>(request: FastifyRequest, status: number, answer: (written: T) => unknown): Carried<T> | undefined {
  const pending = request.idempotency;
  if (!pending) return undefined;
  return { idempotency: (written) => ({ ...pending, status, body: JSON.stringify(answer(written)) }) };
}

export function installIdempotency(app: FastifyInstance, { store, clock }: { store: Store; clock: Clock }): void {
  const operations = idempotentOperations();
  /** scope + key → the request running under it, in this process. */
  const running = new Map<string, FastifyRequest>();
  const slotOf = (scope: string, key: string) => `${scope}\n${key}`;
  const release = (request: FastifyRequest) => {
    const pending = request.idempotency;
    if (!pending) return;
    const slot = slotOf(pending.scope, pending.key);
    if (running.get(slot) === request) running.delete(slot);
  };

  app.decorateRequest('idempotency', null);
  app.addHook('preHandler', async (request, reply) => {
    const operationId = operationIdOf(request);
    const key = request.headers[IDEMPOTENCY_HEADER];
    if (operationId === undefined || !operations.has(operationId) || typeof key !== 'string') return;
    const scope = request.principal?.id ?? 'anonymous';
    const slot = slotOf(scope, key);
    if (running.has(slot)) {
      throw new ApiError('IDEMPOTENCY_KEY_IN_USE', 'headers/idempotency-key is in use by a request still running; retry later');
    }
    const now = clock.now();
    const pending: PendingRecord = { scope, key, fingerprint: fingerprintOf(request), createdAt: now, expiresAt: now + IDEMPOTENCY_TTL_MS };
    // Taken before the lookup below awaits: a duplicate arriving meanwhile gets 409.
    running.set(slot, request);
    request.idempotency = pending;
    const recorded = await store.getIdempotencyRecord(scope, key, now);
    if (!recorded) return;
    release(request);
    request.idempotency = null;
    if (recorded.fingerprint !== pending.fingerprint) {
      throw new ApiError('IDEMPOTENCY_KEY_REUSED', 'headers/idempotency-key was first used with a different body or route');
    }
    reply.header(REPLAYED_HEADER, 'true').code(recorded.status);
    return reply.send(JSON.parse(recorded.body));
  });
  app.addHook('onResponse', (request, _reply, done) => {
    release(request);
    done();
  });
  app.addHook('onRequestAbort', (request, done) => {
    release(request);
    done();
  });
}
