import { recordActivity } from '../../domain/timeout-policy.js';
import type { HandlerDeps } from '../handler-deps.js';
import type { Handler } from '../operation-types.js';
import { changeActiveSession } from '../session-access.js';

export const sessionHeartbeat =
  (deps: HandlerDeps): Handler<'sessionHeartbeat'> =>
  async (request) =>
    changeActiveSession(deps, request.params.sessionId, (session, now) => {
      const { timing, renewed } = recordActivity(session, now);
      return { timing, event: renewed ? 'session.renewed' : 'session.activity' };
    });
