import { renew } from '../../domain/timeout-policy.js';
import { ApiError } from '../../errors.js';
import type { HandlerDeps } from '../handler-deps.js';
import type { Handler } from '../operation-types.js';
import { changeActiveSession } from '../session-access.js';
import { isoTime } from '../../views.js';

export const renewSession =
  (deps: HandlerDeps): Handler<'renewSession'> =>
  async (request) =>
    changeActiveSession(deps, request.params.sessionId, (session, now) => {
      const renewed = renew(session, now);
      if (renewed === 'at-maximum') {
        throw new ApiError('MAX_DURATION_REACHED', `expiresAt ${isoTime(session.expiresAt)} is createdAt + maxDurationMinutes (${session.config.maxDurationMinutes})`);
      }
      if (renewed === 'before-last-renewal') {
        throw new ApiError('MAX_DURATION_REACHED', `the clock (${isoTime(now)}) reads before the last renewal (${isoTime(session.anchorAt)}): a renewal now cannot extend expiresAt ${isoTime(session.expiresAt)}`);
      }
      return { timing: renewed, event: 'session.renewed' };
    });
