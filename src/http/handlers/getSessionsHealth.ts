import { purgeCutoff } from '../../domain/timeout-policy.js';
import { ApiError } from '../../errors.js';
import type { HandlerDeps } from '../handler-deps.js';
import type { Handler } from '../operation-types.js';
import { isoTime } from '../views.js';

export const getSessionsHealth = ({ store, clock, retentionMs, sweeper }: HandlerDeps): Handler<'getSessionsHealth'> => {
  const startedAt = clock.now();
  return async (request, reply) => {
    const now = clock.now();
    const common = { timestamp: isoTime(now), uptime: (now - startedAt) / 1000 };
    try {
      await store.ping();
      const counts = await store.countSessions({ now, purgeCutoff: purgeCutoff(now, retentionMs) });
      const status = sweeper.lastError() === undefined ? 'healthy' : 'degraded';
      return { status, activeSessions: counts.active, expiringSoon: counts.expiringSoon, ...common };
    } catch (error) {
      request.log.error({ err: error }, 'health check: the database cannot be read');
      reply.code(503);
      return { ...new ApiError('SERVICE_UNAVAILABLE', 'the database cannot be read').toEnvelope(), status: 'unhealthy', ...common };
    }
  };
};
