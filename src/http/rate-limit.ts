// Requests per minute, per API key (per client address when keys are off), counted in
// this process's memory: with several instances, each counts its own (see README).
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../errors.js';
import { openOperations, operationIdOf } from './auth.js';

export function installRateLimit(app: FastifyInstance, { perMinute }: { perMinute: number }): void {
  const open = openOperations();
  void app.register(rateLimit, {
    global: true,
    max: perMinute,
    timeWindow: 60_000,
    // RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset and Retry-After.
    enableDraftSpec: true,
    // Runs after the auth hook (an app-level onRequest), so the principal is known.
    keyGenerator: (request) => request.principal?.id ?? request.ip,
    allowList: (request) => open.has(operationIdOf(request) ?? ''),
    errorResponseBuilder: (_request, context) =>
      new ApiError('RATE_LIMITED', `at most ${context.max} requests per minute; retry in ${Math.ceil(context.ttl / 1000)} s`),
  });
}
