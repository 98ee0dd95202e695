import { purgeCutoff } from '../../domain/timeout-policy.js';
import type { SessionCounts, Store, TimeBounds } from '../../storage/store.js';
import { agentScope } from '../access-scope.js';
import type { HandlerDeps } from '../handler-deps.js';
import type { Handler } from '../operation-types.js';
import { sessionInfoView } from '../views.js';

/** The stats of a key bound to agents: those agents' sessions only. */
async function countsOfAgents(store: Store, bounds: TimeBounds, agentIds: readonly string[]): Promise<Pick<SessionCounts, 'total' | 'active'>> {
  const query = { ...bounds, agentIds, limit: 0, offset: 0 };
  const [all, active] = await Promise.all([
    store.listSessions({ ...query, status: 'all' }),
    store.listSessions({ ...query, status: 'active' }),
  ]);
  return { total: all.total, active: active.total };
}

export const listSessions =
  ({ store, clock, retentionMs }: HandlerDeps): Handler<'listSessions'> =>
  async (request) => {
    // Defaults are filled in from the spec by the validator; the fallbacks only satisfy the types.
    const { agentId, userId, status = 'active', limit = 50, offset = 0 } = request.query;
    const now = clock.now();
    const bounds = { now, purgeCutoff: purgeCutoff(now, retentionMs) };
    const scope = agentScope(request);
    // A key bound to agents lists only theirs; another agent's id lists nothing.
    const agentIds = scope && (agentId === undefined ? scope : scope.includes(agentId) ? undefined : []);
    const [page, counts] = await Promise.all([
      store.listSessions({ ...bounds, agentId, agentIds, userId, status, limit, offset }),
      scope ? countsOfAgents(store, bounds, scope) : store.countSessions(bounds),
    ]);
    return {
      sessions: page.sessions.map((session) => sessionInfoView(session, now)),
      total: page.total,
      stats: { totalSessions: counts.total, activeSessions: counts.active, expiredSessions: counts.total - counts.active },
    };
  };
