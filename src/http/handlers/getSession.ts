import type { HandlerDeps } from '../handler-deps.js';
import type { Handler } from '../operation-types.js';
import { activeSession } from '../session-access.js';
import { sessionInfoView } from '../../views.js';

export const getSession =
  ({ store, clock, retentionMs }: HandlerDeps): Handler<'getSession'> =>
  async (request) => {
    const { sessionId } = request.params;
    const now = clock.now();
    return sessionInfoView(activeSession(await store.getSession(sessionId), sessionId, now, retentionMs), now);
  };
