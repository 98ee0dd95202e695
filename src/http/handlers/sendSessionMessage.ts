import { randomUUID } from 'node:crypto';
import { nextPosition } from '../../domain/message-order.js';
import { isNearExpiration, recordActivity } from '../../domain/timeout-policy.js';
import { ApiError } from '../../errors.js';
import type { MessageRecord, SessionRecord } from '../../storage/store.js';
import type { HandlerDeps } from '../handler-deps.js';
import { messageEvent, sessionEvent, withEvents } from '../../events/event-records.js';
import { carryAnswer } from '../idempotency.js';
import { assertSerializedSize } from '../limits.js';
import type { Handler } from '../operation-types.js';
import { activeSession, withTiming } from '../session-access.js';
import { isoTime, messageView } from '../views.js';

interface Sent {
  session: SessionRecord;
  message: MessageRecord;
  renewed: boolean;
}

const sentView = ({ session, message, renewed }: Sent, now: number) => ({
  ...messageView(message),
  sessionStatus: {
    expiresAt: isoTime(session.expiresAt),
    renewalCount: session.renewalCount,
    wasRenewed: renewed,
    isNearExpiration: isNearExpiration(session, now),
  },
});

export const sendSessionMessage =
  ({ store, clock, retentionMs }: HandlerDeps): Handler<'sendSessionMessage'> =>
  async (request, reply) => {
    const { sessionId } = request.params;
    const { content, authorId: requestedAuthor, attachments = [], metadata = {} } = request.body;
    assertSerializedSize(metadata, 'body/metadata');
    const now = clock.now();

    // Storing the message and the activity it is are one transaction.
    const sent = await store.appendMessage(
      sessionId,
      (current, lastPosition): Sent => {
        const active = activeSession(current, sessionId, now, retentionMs);
        const authorId = requestedAuthor ?? active.userId;
        if (authorId !== active.userId && authorId !== active.agentId) {
          throw new ApiError('INVALID_REQUEST', "body/authorId must be the session's user or its agent");
        }
        const activity = recordActivity(active, now);
        return {
          session: withTiming(active, activity.timing, now),
          renewed: activity.renewed,
          message: {
            id: randomUUID(),
            sessionId,
            position: nextPosition(now, lastPosition),
            createdAt: now,
            authorId,
            isAgent: authorId === active.agentId,
            content,
            attachments,
            metadata,
          },
        };
      },
      withEvents(carryAnswer(request, 201, (written: Sent) => sentView(written, now)), (written: Sent) => [
        messageEvent(written.session, written.message),
        sessionEvent(written.renewed ? 'session.renewed' : 'session.activity', written.session, now),
      ]),
    );

    reply.code(201);
    return sentView(sent, now);
  };
