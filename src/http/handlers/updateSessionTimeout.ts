import { updateConfig } from '../../domain/timeout-policy.js';
import type { HandlerDeps } from '../handler-deps.js';
import type { Handler } from '../operation-types.js';
import { activeSession, withTiming } from '../session-access.js';
import { sessionInfoView } from '../views.js';

export const updateSessionTimeout =
  ({ store, clock, retentionMs }: HandlerDeps): Handler<'updateSessionTimeout'> =>
  async (request) => {
    const { sessionId } = request.params;
    const now = clock.now();
    const updated = await store.modifySession(sessionId, (current) => {
      const session = activeSession(current, sessionId, now, retentionMs);
      return withTiming(session, updateConfig(session, request.body), now);
    });
    return sessionInfoView(updated, now);
  };
