import { purgeCutoff } from '../../domain/timeout-policy.js';
import { ApiError } from '../../errors.js';
import { agentEvent } from '../../events/event-records.js';
import type { HandlerDeps } from '../handler-deps.js';
import type { Handler } from '../operation-types.js';

export const deleteAgent =
  ({ store, clock, retentionMs }: HandlerDeps): Handler<'deleteAgent'> =>
  async (request) => {
    const { agentId } = request.params;
    const now = clock.now();
    const outcome = await store.deleteAgent(
      agentId,
      { force: request.query.force === true, now, purgeCutoff: purgeCutoff(now, retentionMs) },
      { events: (deleted) => (deleted.kind === 'deleted' ? [agentEvent('agent.deleted', deleted.agent, now)] : []) },
    );
    switch (outcome.kind) {
      case 'not_found':
        throw new ApiError('AGENT_NOT_FOUND', `params/agentId ${agentId} does not exist`);
      case 'has_active_sessions':
        throw new ApiError(
          'AGENT_HAS_ACTIVE_SESSIONS',
          `${outcome.activeSessions} active session(s); retry with force=true to delete them`,
        );
      case 'deleted':
        return { success: true, data: { message: 'Agent deleted', deletedSessions: outcome.deletedSessions } };
    }
  };
