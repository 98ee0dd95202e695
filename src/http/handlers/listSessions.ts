import { sessionCursorOf, sessionPositionOf } from '../../domain/session-order.js';
import { purgeCutoff } from '../../domain/timeout-policy.js';
import type { SessionCounts, Store, TimeBounds } from '../../storage/store.js';
import { agentScope } from '../access-scope.js';
import type { HandlerDeps } from '../handler-deps.js';
import type { Handler } from '../operation-types.js';
import { sessionInfoView } from '../../views.js';

/** The stats of a key bound to agents: those agents' sessions only. */
async function countsOfAgents(store: Store, bounds: TimeBounds, agentIds: readonly string[]): Promise<Pick<SessionCounts, 'total' | 'active'>> {
  const query = (status: 'all' | 'active') => ({ now: bounds.now, purgeCutoff: bounds.purgeCutoff, agentIds, status, limit: 0, offset: 0 });
  const [all, active] = await Promise.all([store.listSessions(query('all')), store.listSessions(query('active'))]);
  return { total: all.total ?? 0, active: active.total ?? 0 };
}

export const listSessions =
  ({ store, clock, retentionMs }: HandlerDeps): Handler<'listSessions'> =>
  async (request) => {
    const { agentId, userId, status, limit, offset, cursor, count } = request.query;
    const now = clock.now();
    const bounds = { now, purgeCutoff: purgeCutoff(now, retentionMs) };
    const scope = agentScope(request);
    // A key bound to agents lists only theirs; another agent's id lists nothing.
    const agentIds = scope && (agentId === undefined ? scope : scope.includes(agentId) ? undefined : []);
    const after = cursor === undefined ? undefined : sessionPositionOf(cursor);
    const [page, counts] = await Promise.all([
      store.listSessions({ now, purgeCutoff: bounds.purgeCutoff, agentId, agentIds, userId, status, limit, offset, after, count }),
      count ? (scope ? countsOfAgents(store, bounds, scope) : store.countSessions(bounds)) : undefined,
    ]);
    const last = page.sessions.at(-1);
    return {
      sessions: page.sessions.map((session) => sessionInfoView(session, now)),
      ...(page.total !== undefined && { total: page.total }),
      ...(counts && { stats: { totalSessions: counts.total, activeSessions: counts.active, expiredSessions: counts.total - counts.active } }),
      ...(page.hasMore && last && { nextCursor: sessionCursorOf(last) }),
    };
  };
