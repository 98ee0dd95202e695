import { purgeCutoff } from '../../domain/timeout-policy.js';
import type { HandlerDeps } from '../handler-deps.js';
import type { Handler } from '../operation-types.js';
import { sessionInfoView } from '../views.js';

export const listSessions =
  ({ store, clock, retentionMs }: HandlerDeps): Handler<'listSessions'> =>
  async (request) => {
    // Defaults are filled in from the spec by the validator; the fallbacks only satisfy the types.
    const { agentId, userId, status = 'active', limit = 50, offset = 0 } = request.query;
    const now = clock.now();
    const bounds = { now, purgeCutoff: purgeCutoff(now, retentionMs) };
    const [page, counts] = await Promise.all([
      store.listSessions({ ...bounds, agentId, userId, status, limit, offset }),
      store.countSessions(bounds),
    ]);
    return {
      sessions: page.sessions.map((session) => sessionInfoView(session, now)),
      total: page.total,
      stats: { totalSessions: counts.total, activeSessions: counts.active, expiredSessions: counts.total - counts.active },
    };
  };
