import { sessionEvent } from '../../events/event-records.js';
import type { HandlerDeps } from '../handler-deps.js';
import type { Handler } from '../operation-types.js';
import { retainedSession } from '../session-access.js';

export const endSession =
  ({ store, clock, retentionMs }: HandlerDeps): Handler<'endSession'> =>
  async (request) => {
    const { sessionId } = request.params;
    const now = clock.now();
    // Deleting is always possible: an expired session still retained goes too.
    await store.deleteSession(sessionId, (current) => retainedSession(current, sessionId, now, retentionMs), {
      events: (ended) => [sessionEvent('session.ended', ended, now)],
    });
    return { success: true, message: 'Session ended' };
  };
