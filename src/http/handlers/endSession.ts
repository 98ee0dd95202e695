import { overdueAnnouncements } from '../../events/due-events.js';
import { sessionEvent } from '../../events/event-records.js';
import type { HandlerDeps } from '../handler-deps.js';
import type { Handler } from '../operation-types.js';
import { retainedSession } from '../session-access.js';

export const endSession =
  ({ store, clock, retentionMs }: HandlerDeps): Handler<'endSession'> =>
  async (request) => {
    const { sessionId } = request.params;
    // Deleting is always possible: an expired session still retained goes too. The time is
    // read holding the session's lock (see changeActiveSession).
    let now = Number.NaN;
    await store.deleteSession(sessionId, (current) => retainedSession(current, sessionId, (now = clock.now()), retentionMs), {
      events: (ended) => [...overdueAnnouncements(ended, now), sessionEvent('session.ended', ended, now)],
    });
    return { success: true, message: 'Session ended' };
  };
