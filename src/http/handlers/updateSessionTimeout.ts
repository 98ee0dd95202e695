import { updateConfig } from '../../domain/timeout-policy.js';
import type { HandlerDeps } from '../handler-deps.js';
import type { Handler } from '../operation-types.js';
import { changeActiveSession } from '../session-access.js';

export const updateSessionTimeout =
  (deps: HandlerDeps): Handler<'updateSessionTimeout'> =>
  async (request) =>
    changeActiveSession(deps, request.params.sessionId, (session) => ({
      timing: updateConfig(session, request.body),
      event: 'session.timeout_updated',
    }));
