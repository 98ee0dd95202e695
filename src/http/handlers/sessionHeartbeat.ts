import { recordActivity } from '../../domain/timeout-policy.js';
import type { HandlerDeps } from '../handler-deps.js';
import type { Handler } from '../operation-types.js';
import { activeSession, withTiming } from '../session-access.js';
import { sessionInfoView } from '../views.js';

export const sessionHeartbeat =
  ({ store, clock, retentionMs }: HandlerDeps): Handler<'sessionHeartbeat'> =>
  async (request) => {
    const { sessionId } = request.params;
    const now = clock.now();
    const updated = await store.modifySession(sessionId, (current) => {
      const session = activeSession(current, sessionId, now, retentionMs);
      return withTiming(session, recordActivity(session, now).timing, now);
    });
    return sessionInfoView(updated, now);
  };
