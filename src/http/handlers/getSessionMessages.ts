import { cursorOf, positionOfCursor } from '../../domain/message-order.js';
import type { HandlerDeps } from '../handler-deps.js';
import { MESSAGE_PAGE_CHARS } from '../limits.js';
import type { Handler } from '../operation-types.js';
import { activeSession } from '../session-access.js';

export const getSessionMessages =
  ({ store, clock, retentionMs }: HandlerDeps): Handler<'getSessionMessages'> =>
  async (request, reply) => {
    const { sessionId } = request.params;
    // The validator has checked the cursors' form.
    const { limit, before, after } = request.query;
    activeSession(await store.getSession(sessionId), sessionId, clock.now(), retentionMs);

    const page = await store.listMessageViews({
      sessionId,
      limit,
      before: before === undefined ? undefined : positionOfCursor(before),
      after: after === undefined ? undefined : positionOfCursor(after),
      maxChars: MESSAGE_PAGE_CHARS,
    });
    const oldest = page.messages.at(-1);
    const newest = page.messages[0];
    const cursors = {
      before: oldest ? cursorOf(oldest.position) : null,
      after: newest ? cursorOf(newest.position) : null,
    };
    // Each message's view was serialized when it was stored (views.ts messageJson): the
    // page is joined, not built and serialized again. A JSON string is sent as is.
    const body = `{"messages":[${page.messages.map((message) => message.json).join(',')}],"hasMore":${page.hasMore},"cursors":${JSON.stringify(cursors)}}`;
    return reply.type('application/json; charset=utf-8').send(body) as never;
  };
