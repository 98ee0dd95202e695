import { cursorOf, positionOfCursor } from '../../domain/message-order.js';
import type { HandlerDeps } from '../handler-deps.js';
import type { Handler } from '../operation-types.js';
import { activeSession } from '../session-access.js';
import { messageView } from '../views.js';

export const getSessionMessages =
  ({ store, clock, retentionMs }: HandlerDeps): Handler<'getSessionMessages'> =>
  async (request) => {
    const { sessionId } = request.params;
    // The validator has checked the cursors' form and filled in the default limit.
    const { limit = 50, before, after } = request.query;
    activeSession(await store.getSession(sessionId), sessionId, clock.now(), retentionMs);

    const page = await store.listMessages({
      sessionId,
      limit,
      before: before === undefined ? undefined : positionOfCursor(before),
      after: after === undefined ? undefined : positionOfCursor(after),
    });
    const oldest = page.messages.at(-1);
    const newest = page.messages[0];
    return {
      messages: page.messages.map(messageView),
      hasMore: page.hasMore,
      cursors: {
        before: oldest ? cursorOf(oldest.position) : null,
        after: newest ? cursorOf(newest.position) : null,
      },
    };
  };
