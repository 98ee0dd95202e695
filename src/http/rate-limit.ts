// Requests per minute, per API key (per client address when keys are off), counted in
// this process's memory: with several instances, each counts its own (see README).
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../errors.js';
import { bearerMatches, openOperations, operationIdOf, ownTokenOperations } from './auth.js';
import { clientAddress } from './client-address.js';

/** Past this many windows, those run out are forgotten (the least recently counted first). */
const KEYS_KEPT = 5000;
/**
 * Past this many, the least recently counted is forgotten though its minute runs: else a
 * client over its limit had a new budget once 5,000 other addresses were counted after it
 * (S17). About 12 MB; a client forgotten needs as many addresses in a minute.
 */
export const KEYS_MAX = 100_000;

type Counted = (error: Error | null, result: { current: number; ttl: number }) => void;

/**
 * The plugin's in-memory store with its windows timed on the monotonic clock: a window is
 * a duration, and on the wall clock one begun before the clock stepped back an hour would
 * hold a client's 429s (Retry-After: 3600) for that hour.
 */
export class MonotonicStore {
  private readonly windows = new Map<string, { count: number; startMs: number }>();

  incr(key: string, counted: Counted, timeWindow: number): void {
    const now = performance.now();
    let window = this.windows.get(key);
    if (window === undefined || window.startMs + timeWindow <= now) window = { count: 0, startMs: now };
    this.windows.delete(key); // set again below: the most recently counted last
    window.count += 1;
    this.windows.set(key, window);
    if (this.windows.size > KEYS_KEPT) this.forget(now, timeWindow);
    counted(null, { current: window.count, ttl: timeWindow - (now - window.startMs) });
  }

  /** Forgets, least recently counted first, the windows run out, and past KEYS_MAX any. */
  private forget(now: number, timeWindow: number): void {
    for (const [key, window] of this.windows) {
      if (this.windows.size <= KEYS_KEPT) return;
      if (window.startMs + timeWindow > now && this.windows.size <= KEYS_MAX) return;
      this.windows.delete(key);
    }
  }

  /** Windows held. */
  get size(): number {
    return this.windows.size;
  }

  child(): MonotonicStore {
    return new MonotonicStore();
  }
}

export function installRateLimit(app: FastifyInstance, { perMinute, metricsToken }: { perMinute: number; metricsToken?: string }): void {
  const open = openOperations();
  // With METRICS_TOKEN, /metrics has no key to count by: a scrape carrying the token is not
  // counted (else every scraper on a host shared one budget per address); guesses are.
  const ownToken = metricsToken === undefined ? new Set<string>() : ownTokenOperations();
  const unlimited = (request: FastifyRequest) => {
    const operationId = operationIdOf(request) ?? '';
    return open.has(operationId) || (ownToken.has(operationId) && bearerMatches(request, metricsToken!));
  };
  void app.register(rateLimit, {
    global: true,
    store: MonotonicStore as never,
    max: perMinute,
    timeWindow: 60_000,
    // RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset and Retry-After.
    enableDraftSpec: true,
    // Runs after the auth hook (an app-level onRequest), so the principal is known.
    keyGenerator: (request) => request.principal?.id ?? clientAddress(request),
    allowList: unlimited,
    errorResponseBuilder: (_request, context) =>
      new ApiError('RATE_LIMITED', `at most ${context.max} requests per minute; retry in ${Math.ceil(context.ttl / 1000)} s`),
  });
}
