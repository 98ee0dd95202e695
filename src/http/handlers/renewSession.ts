import { renew } from '../../domain/timeout-policy.js';
import { ApiError } from '../../errors.js';
import type { HandlerDeps } from '../handler-deps.js';
import type { Handler } from '../operation-types.js';
import { activeSession, withTiming } from '../session-access.js';
import { isoTime, sessionInfoView } from '../views.js';

export const renewSession =
  ({ store, clock, retentionMs }: HandlerDeps): Handler<'renewSession'> =>
  async (request) => {
    const { sessionId } = request.params;
    const now = clock.now();
    const updated = await store.modifySession(sessionId, (current) => {
      const session = activeSession(current, sessionId, now, retentionMs);
      const renewed = renew(session, now);
      if (!renewed) {
        throw new ApiError(
          'MAX_DURATION_REACHED',
          `expiresAt ${isoTime(session.expiresAt)} is createdAt + maxDurationMinutes (${session.config.maxDurationMinutes})`,
        );
      }
      return withTiming(session, renewed, now);
    });
    return sessionInfoView(updated, now);
  };
