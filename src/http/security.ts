// Everything between the network and the handlers that decides who may do what:
// security headers, CORS, API keys, rate limits, agent scopes and idempotency keys.
import type { FastifyInstance } from 'fastify';
import { installAccessScope } from './access-scope.js';
import { installAuth } from './auth.js';
import type { HandlerDeps } from './handler-deps.js';
import { installIdempotency } from './idempotency.js';
import { installRateLimit } from './rate-limit.js';
import { installCors, installSecurityHeaders } from './security-headers.js';

export interface AccessOptions {
  /** Admin keys from API_KEYS (keys in the store's table work too). */
  apiKeys?: readonly string[];
  /** Off when undefined. */
  rateLimitPerMinute?: number;
  /** CORS off when empty. */
  corsOrigins?: readonly string[];
  /** METRICS_TOKEN: /metrics wants it instead of an API key. */
  metricsToken?: string;
}

/** Call before the routes are registered: the rate limit hooks itself onto each route. */
export function installSecurity(app: FastifyInstance, deps: Pick<HandlerDeps, 'store' | 'clock'>, options: AccessOptions = {}): void {
  installSecurityHeaders(app);
  installCors(app, { origins: options.corsOrigins ?? [] });
  // App-level onRequest: runs before the rate limit's route-level one, which keys on its result.
  installAuth(app, { store: deps.store, apiKeys: options.apiKeys ?? [], hasMetricsToken: options.metricsToken !== undefined });
  if (options.rateLimitPerMinute !== undefined) installRateLimit(app, { perMinute: options.rateLimitPerMinute, metricsToken: options.metricsToken });
  installAccessScope(app, deps);
  installIdempotency(app, deps);
}
