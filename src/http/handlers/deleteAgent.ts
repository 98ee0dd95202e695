import { purgeCutoff } from '../../domain/timeout-policy.js';
import { ApiError, notFound } from '../../errors.js';
import { overdueAnnouncements } from '../../events/due-events.js';
import { agentEvent, sessionEvent } from '../../events/event-records.js';
import type { HandlerDeps } from '../handler-deps.js';
import type { Handler } from '../operation-types.js';

export const deleteAgent =
  ({ store, clock, retentionMs }: HandlerDeps): Handler<'deleteAgent'> =>
  async (request) => {
    const { agentId } = request.params;
    const now = clock.now();
    const outcome = await store.deleteAgent(
      agentId,
      { force: request.query.force, now, purgeCutoff: purgeCutoff(now, retentionMs) },
      // Each session that goes with it ends as endSession ends one, before the agent goes.
      {
        events: (deleted) =>
          deleted.kind === 'deleted'
            ? [...deleted.sessions.flatMap((session) => [...overdueAnnouncements(session, now), sessionEvent('session.ended', session, now)]), agentEvent('agent.deleted', deleted.agent, now)]
            : [],
      },
    );
    switch (outcome.kind) {
      case 'not_found':
        throw notFound('AGENT_NOT_FOUND', 'params/agentId', agentId);
      case 'has_active_sessions':
        throw new ApiError(
          'AGENT_HAS_ACTIVE_SESSIONS',
          `${outcome.activeSessions} active session(s); retry with force=true to delete them`,
        );
      case 'deleted':
        return { success: true, data: { message: 'Agent deleted', deletedSessions: outcome.sessions.length } };
    }
  };
