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
      const renewal = renew(session, now);
      if (renewal === 'at-maximum') {
        throw new ApiError('MAX_DURATION_REACHED', `expiresAt ${isoTime(session.expiresAt)} is createdAt + maxDurationMinutes (${session.config.maxDurationMinutes})`);
      }
      return { timing: renewal.timing, event: renewal.renewed ? 'session.renewed' : undefined };
    });
