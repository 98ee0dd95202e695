import { randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { components } from '../../../generated/api.js';
import type { ReplyWait, WaitEnd } from '../../events/agent-replies.js';
import { KEEP_ALIVE_MS, KEY_REVOKED, frame, startStream } from '../../events/event-stream.js';
import { messageAuthor } from '../../domain/message-author.js';
import { createdAtOf, nextPosition } from '../../domain/message-order.js';
import { isNearExpiration, recordActivity, type DueEventType } from '../../domain/timeout-policy.js';
import { ApiError } from '../../errors.js';
import { unauthorized } from '../auth.js';
import type { EventRecord, MessageRecord, SessionRecord } from '../../storage/store.js';
import type { HandlerDeps } from '../handler-deps.js';
import { changeEvents, messageEvent, overdueWarning, withEvents } from '../../events/event-records.js';
import { carryAnswer, sendCarriedAnswer, sendSettledAnswer } from '../idempotency.js';
import { assertSerializedSize } from '../limits.js';
import type { Handler } from '../operation-types.js';
import { activeSession, withTiming } from '../session-access.js';
import { isoTime, messageView } from '../../views.js';

type Schemas = components['schemas'];
type Transport = NonNullable<Schemas['SendMessageRequest']['transport']>;

const MODE_TRANSPORT = { websocket: 'websocket', sync: 'http', stream: 'sse' } as const satisfies Record<string, Transport>;

interface Sent {
  session: SessionRecord;
  message: MessageRecord;
  renewed: boolean;
  /** The due event the activity announced itself (a warning moment it brought to now). */
  announcing?: DueEventType;
  /** The session before, when its deadline's warning was due and not yet announced (announced first). */
  warnedBefore?: SessionRecord;
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
  ({ store, clock, retentionMs, replies, agentReplyTimeoutMs }: HandlerDeps): Handler<'sendSessionMessage'> =>
  async (request, reply) => {
    const { sessionId } = request.params;
    const { content, authorId: requestedAuthor, attachments = [], metadata = {} } = request.body;
    assertSerializedSize(metadata, 'body/metadata');
    const transport = transportOf(request.body);
    // Waiting starts before the write, so that the reply cannot slip past unseen.
    const wait = transport === 'websocket' ? undefined : await replies.wait(sessionId, agentReplyTimeoutMs);
    // Storing the message and the activity it is are one transaction; its time is read
    // holding the session's lock (see changeActiveSession).
    let now = Number.NaN;
    const sent = await store.appendMessage(
      sessionId,
      (current, lastPosition): Sent => {
        now = clock.now();
        const active = activeSession(current, sessionId, now, retentionMs);
        const author = messageAuthor(active, requestedAuthor);
        if (!author) throw new ApiError('INVALID_REQUEST', "body/authorId must be the session's user or its agent");
        const { authorId, isAgent } = author;
        if (wait && isAgent) {
          const [field, value] = request.body.transport === undefined ? ['mode', request.body.mode] : ['transport', transport];
          throw new ApiError('INVALID_REQUEST', `body/${field} ${value} waits for the agent's reply, but the agent wrote this message: send it without ${field} (or websocket)`);
        }
        const activity = recordActivity(active, now);
        const position = nextPosition(now, lastPosition);
        return {
          ...withTiming(active, activity.timing, now),
          renewed: activity.renewed,
          message: {
            id: randomUUID(),
            sessionId,
            position,
            createdAt: createdAtOf(position),
            authorId,
            isAgent,
            content,
            attachments,
            metadata,
          },
        };
      },
      withEvents(carryAnswer(request, 201, (written: Sent) => sentView(written, now)), (written: Sent) => [
        ...overdueWarning(written.warnedBefore),
        messageEvent(written.session, written.message),
        ...changeEvents(written.renewed ? 'session.renewed' : 'session.activity', written.session, now, written.announcing),
      ]),
    ).catch((error: unknown) => {
      wait?.release();
      throw error;
    });

    reply.code(201);
    if (!wait) return (sendCarriedAnswer(request, reply) as never) ?? sentView(sent, now);
    wait.expect(sent.message.id);
    // The client going away ends its wait.
    reply.raw.on('close', wait.release);
    const revoked = keyRevokedSince(request);
    if (transport === 'sse') return streamReply(reply, wait, revoked);

    const agentMessage = await wait.reply;
    if (!agentMessage && wait.endedBy === 'released') {
      // The client went away: nobody to answer, and no timeout to report.
      reply.hijack();
      return undefined as never;
    }
    if (!agentMessage && wait.endedBy === 'shutdown') {
      throw new ApiError('SERVICE_UNAVAILABLE', `the server is shutting down; message ${sent.message.id} is stored`);
    }
    if (!agentMessage && wait.endedBy === 'ended') {
      throw new ApiError('SESSION_NOT_FOUND', `the session was ended while message ${sent.message.id} waited for the agent's reply; the message went with it`);
    }
    if (!agentMessage && wait.endedBy === 'expired') {
      throw new ApiError('SESSION_EXPIRED', `the session expired while message ${sent.message.id} waited for the agent's reply; the message is stored`);
    }
    if (!agentMessage) {
      throw new ApiError('AGENT_REPLY_TIMEOUT', `no reply from the agent within ${agentReplyTimeoutMs / 1000} s; message ${sent.message.id} is stored`);
    }
    if (await revoked()) {
      throw unauthorized(reply, `the API key was revoked while message ${sent.message.id} waited for the agent's reply; the message is stored`);
    }
    const { sessionStatus } = sentView(sent, now);
    const answer = { success: true, data: { success: true, userMessage: messageView(sent.message), agentResponse: agentResponseOf(agentMessage), sessionStatus } };
    return sendSettledAnswer(request, reply, store, answer) as never;
  };

/** `transport`, or what the deprecated `mode` means; both given must agree. */
function transportOf({ transport, mode }: { transport?: Transport; mode?: 'websocket' | 'sync' | 'stream' }): Transport {
  const fromMode = mode === undefined ? undefined : MODE_TRANSPORT[mode];
  if (transport !== undefined && fromMode !== undefined && transport !== fromMode) {
    throw new ApiError('INVALID_REQUEST', `body/mode ${mode} means transport ${fromMode}, but body/transport is ${transport}; send transport only`);
  }
  return transport ?? fromMode ?? 'websocket';
}

/** The reply as the elizaOS client reads it: the text, and thought and actions from its metadata. */
function agentResponseOf(event: EventRecord): Schemas['AgentResponse'] {
  const message = event.data as Schemas['Message'];
  const answer: Schemas['AgentResponse'] = { text: message.content };
  const { thought, actions } = message.metadata as { thought?: unknown; actions?: unknown };
  if (typeof thought === 'string') answer.thought = thought;
  if (Array.isArray(actions) && actions.every((action) => typeof action === 'string')) answer.actions = actions;
  return answer;
}

/** The comment that ends a reply stream without a reply, by why the wait ended. */
const NO_REPLY_BECAUSE: Partial<Record<WaitEnd, string>> = {
  shutdown: 'the server is shutting down',
  ended: 'the session was ended; the message went with it',
  expired: 'the session expired; no reply can come',
};

/**
 * Whether the request's key was revoked since it was checked: asked before a wait's reply
 * is handed over (a wait may last AGENT_REPLY_TIMEOUT_SECONDS). A check that fails (the
 * store unreachable) hands it over, as an event stream goes on.
 */
function keyRevokedSince(request: FastifyRequest): () => Promise<boolean> {
  const { stillAuthorized } = request;
  return async () => stillAuthorized !== null && !(await stillAuthorized().catch(() => true));
}

/** transport sse: the user's message.created, then the agent's, then the end. */
async function streamReply(reply: FastifyReply, wait: ReplyWait, revoked: () => Promise<boolean>): Promise<undefined> {
  const raw = startStream(reply, 201);
  const write = (text: string) => void (raw.destroyed || raw.write(text)); // the client may be gone
  const own = await wait.own;
  if (own) write(frame(own));
  // As the event streams: a proxy's read timeout (nginx 60 s) shorter than the wait would cut it.
  const keepAlive = setInterval(() => write(': keep-alive\n\n'), KEEP_ALIVE_MS);
  const answer = await wait.reply.finally(() => clearInterval(keepAlive));
  if (answer && (await revoked())) write(`: ${KEY_REVOKED}\n\n`);
  else write(answer ? frame(answer) : `: ${NO_REPLY_BECAUSE[wait.endedBy!] ?? 'no reply from the agent in time'}\n\n`);
  if (!raw.destroyed) raw.end(); // a client gone (HTTP/1.0): no second count from a 'finish'
  return undefined;
}
