import type { FastifyRequest } from 'fastify';
import { elapsedOn } from '../../domain/clock.js';
import { throttledErrors } from '../../ops/throttled-errors.js';
import { purgeCutoff } from '../../domain/timeout-policy.js';
import { ApiError } from '../../errors.js';
import { FULL_DISK_BYTES, isDiskFull, type Store } from '../../storage/store.js';
import type { components } from '../../../generated/api.js';
import type { HandlerDeps } from '../handler-deps.js';
import type { Handler } from '../operation-types.js';
import { RETRY_AFTER_SECONDS } from '../server-options.js';
import { isoTime } from '../../views.js';

type Check = components['schemas']['SessionsUnhealthy']['failedChecks'][number];

/** The write probe waits this long at most (it queues behind other writes and their lock waits). */
const WRITE_PROBE_TIMEOUT_MS = 1000;

function withinMs<T>(ms: number, promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The failed checks, each with its cause; empty when all pass. */
async function failedChecks(store: Store): Promise<Map<Check, string>> {
  const failed = new Map<Check, string>();
  const causeOf = (error: unknown) => (error instanceof Error ? error.message : String(error));
  await store.ping().catch((error) => failed.set('read', causeOf(error)));
  await withinMs(WRITE_PROBE_TIMEOUT_MS, store.probeWrite(), 'the write probe').catch((error) => failed.set('write', causeOf(error)));
  await store
    .freeDiskBytes()
    .then((free) => {
      if (free !== undefined && isDiskFull(free)) failed.set('disk', `${free} bytes free, under ${FULL_DISK_BYTES}`);
    })
    .catch((error) => failed.set('disk', causeOf(error)));
  return failed;
}

/**
 * A load balancer polls health every few seconds: through an outage, its failures are
 * logged as the first, then at most one a minute (with how many were held back), and
 * the first pass after them says the checks pass again.
 */
function healthLog() {
  const throttled = () => throttledErrors((failed, heldBack) => {
    const { request, details } = failed as { request: FastifyRequest; details: string };
    request.log.error({ heldBack }, `health check failed: ${details}`);
  });
  let report: ReturnType<typeof throttledErrors> | undefined;
  return {
    failed: (request: FastifyRequest, details: string) => (report ??= throttled())({ request, details }),
    passed(request: FastifyRequest) {
      if (!report) return;
      report = undefined;
      request.log.warn('health checks pass again');
    },
  };
}

export const getSessionsHealth = ({ store, clock, retentionMs, sweeper }: HandlerDeps): Handler<'getSessionsHealth'> => {
  const sinceStart = elapsedOn(clock);
  const startedAt = sinceStart();
  const log = healthLog();
  return async (request, reply) => {
    const now = clock.now();
    const common = { timestamp: isoTime(now), uptime: (sinceStart() - startedAt) / 1000 };
    const failed = await failedChecks(store);
    if (failed.size === 0) {
      try {
        const counts = await store.countSessions({ now, purgeCutoff: purgeCutoff(now, retentionMs) });
        const status = sweeper.lastError() === undefined ? 'healthy' : 'degraded';
        log.passed(request);
        return { status, activeSessions: counts.active, expiringSoon: counts.expiringSoon, ...common };
      } catch (error) {
        failed.set('read', error instanceof Error ? error.message : String(error));
      }
    }
    const details = [...failed].map(([check, cause]) => `${check}: ${cause}`).join('; ');
    log.failed(request, details);
    const unavailable = new ApiError('SERVICE_UNAVAILABLE', details);
    reply.code(unavailable.status).header('retry-after', RETRY_AFTER_SECONDS);
    return {
      ...unavailable.toEnvelope(),
      status: 'unhealthy' as const,
      failedChecks: [...failed.keys()],
      ...common,
    };
  };
};
