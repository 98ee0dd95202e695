// Who is calling: the API key of the request (`X-API-KEY` or `Authorization: Bearer`),
// checked on every request against `API_KEYS` and the keys table (the store's answer is
// never staler than the database, so a key revoked from another process is refused at once). Without keys configured
// anywhere, every request passes as nobody in particular.
import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hashApiKey, sameDigest } from '../api-keys.js';
import { ApiError } from '../errors.js';
import { headerLines } from './client-errors.js';
import { specOperations } from '../spec.js';
import { StorageFault, type Store } from '../storage/store.js';

export interface Principal {
  /** Whose idempotency keys and rate limit these are: the key's id. */
  id: string;
  admin: boolean;
  /** The agents a non-admin key may use; null: every agent. */
  agentIds: readonly string[] | null;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The caller's key; null when the server has no keys configured. */
    principal: Principal | null;
    /** Whether the key that identified the request still does (not revoked since); null without a key. */
    stillAuthorized: (() => Promise<boolean>) | null;
  }
}

/** Keys remembered as identified; past this, new keys are hashed on every request. */
const MAX_IDENTIFIED = 10_000;

const WWW_AUTHENTICATE = 'Bearer realm="sessions-api", ApiKey header="X-API-KEY"';
export const INVALID_KEY = 'the API key is not valid';

/** 401 UNAUTHORIZED, with the challenge that says how to authenticate. */
export function unauthorized(reply: FastifyReply, details: string): ApiError {
  reply.header('www-authenticate', WWW_AUTHENTICATE);
  return new ApiError('UNAUTHORIZED', details);
}

export function operationIdOf(request: FastifyRequest): string | undefined {
  return (request.routeOptions.schema as { operationId?: string } | undefined)?.operationId;
}

/** Operations whose own `security` lists a requirement of the scheme `scheme` (as `some` says), or none. */
function operationsRequiring(scheme: string, some: boolean): Set<string> {
  const names = (requirement: unknown) => typeof requirement === 'object' && requirement !== null && scheme in requirement;
  return new Set(
    specOperations()
      .filter((op) => Array.isArray(op.security) && op.security.some(names) === some)
      .map((op) => op.operationId),
  );
}

/** Operations whose own `security` does not ask for an API key: the health check and the spec's own documents (`security: []`). */
export const openOperations = (): Set<string> => operationsRequiring('ApiKey', false);

/**
 * Operations that take a token of their own instead of an API key (`/metrics` and
 * `METRICS_TOKEN`): when the server has that token, their route checks it, and no key is asked.
 */
export const ownTokenOperations = (): Set<string> => operationsRequiring('MetricsToken', true);

/** Operations the spec marks `x-admin-only`: a key bound to agents gets 403. */
export function adminOnlyOperations(): Set<string> {
  return new Set(specOperations().filter((op) => op.adminOnly).map((op) => op.operationId));
}

/** `Authorization: Bearer <token>`, the scheme in any case (RFC 9110), the token compared in constant time. */
export function bearerMatches(request: FastifyRequest, token: string): boolean {
  const given = Buffer.from(/^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '')?.[1] ?? '');
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** The key the request presents, if any. */
function presentedKey(request: FastifyRequest): string | undefined {
  const header = request.headers['x-api-key'];
  if (typeof header === 'string' && header !== '') return header;
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
  return bearer?.[1];
}

export interface AuthOptions {
  store: Store;
  apiKeys: readonly string[];
  /** The server has METRICS_TOKEN: the operations that take it ask no API key. */
  hasMetricsToken?: boolean;
}

export function installAuth(app: FastifyInstance, { store, apiKeys, hasMetricsToken = false }: AuthOptions): void {
  const envKeys = apiKeys.map((key) => {
    const hash = hashApiKey(key);
    return { hash, principal: { id: `env:${hash.slice(0, 16)}`, admin: true, agentIds: null } satisfies Principal };
  });
  const open = openOperations();
  if (hasMetricsToken) for (const operationId of ownTokenOperations()) open.add(operationId);
  const adminOnly = adminOnlyOperations();
  // Keys never turn off once on (revoked keys stay in the table), so "on" is remembered;
  // "off" is asked again on every request, as another process may create the first key.
  let keysOn = envKeys.length > 0;
  /** The store's last answer was "no keys". */
  let lastKnownOff = false;
  /**
   * At once (no promise) when the store answers at once: a server without keys pays no
   * promise a request. A store that cannot answer (down) leaves its last answer in force,
   * so that what needs no store (/metrics) is served through an outage; what needs the
   * store answers 503 anyway. No answer yet: the fault (503).
   */
  function keysAreOn(): boolean | Promise<boolean> {
    if (keysOn) return true;
    const answer = store.hasApiKeys();
    if (typeof answer === 'boolean') {
      lastKnownOff = !answer;
      return (keysOn = answer);
    }
    return answer.then(
      (on) => {
        lastKnownOff = !on;
        return (keysOn ||= on);
      },
      (error: unknown) => {
        if (error instanceof StorageFault && lastKnownOff) return false;
        throw error;
      },
    );
  }
  const unauthorizedKey = (reply: FastifyReply, key: string | undefined) =>
    unauthorized(reply, key === undefined ? 'an API key is required (X-API-KEY header or Authorization Bearer)' : INVALID_KEY);

  /**
   * Keys that identified someone, by the key as presented: a known key skips its hash and
   * compare. A stored key is still looked up every time (revoked anywhere: refused at
   * once); a key's scope never changes, only its revocation.
   */
  const identified = new Map<string, { hash: string; principal: Principal; stored: boolean }>();

  async function identify(key: string): Promise<Principal | undefined> {
    const kept = identified.get(key);
    if (kept) {
      if (!kept.stored) return kept.principal;
      const stored = await store.findApiKey(kept.hash);
      if (stored && stored.revokedAt === undefined && stored.id === kept.principal.id) return kept.principal;
      identified.delete(key);
    }
    const hash = hashApiKey(key);
    let found: Principal | undefined;
    for (const env of envKeys) if (sameDigest(env.hash, hash)) found = env.principal; // no early exit
    if (!found) {
      const stored = await store.findApiKey(hash);
      if (!stored || stored.revokedAt !== undefined || !sameDigest(stored.keyHash, hash)) return undefined;
      found = { id: stored.id, admin: stored.admin, agentIds: stored.admin ? null : stored.agentIds };
    }
    if (identified.size < MAX_IDENTIFIED) identified.set(key, { hash, principal: found, stored: !envKeys.some((env) => env.principal === found) });
    return found;
  }

  /** A request presenting a key: who it is, or why it is refused (a key unknown while keys are off passes as nobody). */
  async function authenticate(request: FastifyRequest, reply: FastifyReply, key: string): Promise<void> {
    const principal = await identify(key);
    if (!principal) {
      if (!(await keysAreOn())) return;
      throw unauthorizedKey(reply, key);
    }
    request.principal = principal;
    // For what outlives this check (an event stream): asked again, the key must name the same principal.
    request.stillAuthorized = async () => (await identify(key))?.id === principal.id;
  }

  app.decorateRequest('principal', null);
  app.decorateRequest('stillAuthorized', null);
  // A callback hook, not an async one: a request without a key on a server without keys
  // (the default) is let through without a promise.
  app.addHook('onRequest', (request, reply, done) => {
    const operationId = operationIdOf(request);
    if (operationId === undefined || open.has(operationId)) return done();
    const key = presentedKey(request);
    if (key !== undefined) {
      // Node joins two X-API-KEY lines into one value and keeps the first Authorization: neither is a key sent.
      if (headerLines(request.raw.rawHeaders, 'x-api-key') > 1 || headerLines(request.raw.rawHeaders, 'authorization') > 1) {
        return done(unauthorized(reply, 'the API key must be sent once (one X-API-KEY or Authorization line)'));
      }
      return void authenticate(request, reply, key).then(() => done(), done);
    }
    const on = keysAreOn();
    if (typeof on === 'boolean') return done(on ? unauthorizedKey(reply, key) : undefined);
    on.then((yes) => done(yes ? unauthorizedKey(reply, key) : undefined), done);
  });
  // After the rate limit's onRequest: a key's refused requests count against it as any
  // other (else a key bound to agents could send admin-only requests without limit).
  app.addHook('preParsing', (request, _reply, payload, done) => {
    const operationId = operationIdOf(request);
    if (request.principal && !request.principal.admin && operationId !== undefined && adminOnly.has(operationId)) {
      return done(new ApiError('FORBIDDEN', `${operationId} needs an admin API key`));
    }
    done(null, payload);
  });
}
