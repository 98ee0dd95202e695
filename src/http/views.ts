// Stored records → the API's response shapes (types from the spec).
import type { components } from '../../generated/api.js';
import { isExpired, isNearExpiration, timeRemaining } from '../domain/timeout-policy.js';
import type { AgentRecord, MessageRecord, SessionRecord } from '../storage/store.js';
import { isoTime } from './iso-time.js';

type Schemas = components['schemas'];

export { isoTime };

export function characterView(agent: AgentRecord): Schemas['Character'] {
  const character: Schemas['Character'] = { id: agent.id, name: agent.name, settings: agent.settings };
  if (agent.bio !== undefined) character.bio = agent.bio;
  return character;
}

export function agentDetailsView(agent: AgentRecord): Schemas['GetAgentResponse']['data'] {
  return { ...characterView(agent), status: 'active', createdAt: isoTime(agent.createdAt) };
}

export function createdSessionView(session: SessionRecord): Schemas['CreateSessionResponse'] {
  return {
    sessionId: session.id,
    agentId: session.agentId,
    userId: session.userId,
    createdAt: isoTime(session.createdAt),
    metadata: session.metadata,
    expiresAt: isoTime(session.expiresAt),
    timeoutConfig: session.config,
  };
}

export function sessionInfoView(session: SessionRecord, now: number): Schemas['SessionInfo'] {
  return {
    sessionId: session.id,
    agentId: session.agentId,
    userId: session.userId,
    createdAt: isoTime(session.createdAt),
    lastActivity: isoTime(session.lastActivity),
    metadata: session.metadata,
    expiresAt: isoTime(session.expiresAt),
    timeoutConfig: session.config,
    renewalCount: session.renewalCount,
    timeRemaining: timeRemaining(session.expiresAt, now),
    isNearExpiration: isNearExpiration(session, now),
    status: isExpired(session.expiresAt, now) ? 'expired' : 'active',
  };
}

const quoted = JSON.stringify;

/**
 * A SessionInfo view's JSON, exactly as JSON.stringify writes it (same keys, same order),
 * without walking the object: its times are already text, and only the ids, metadata and
 * timeoutConfig need escaping. The session events' data (event-records.ts).
 */
export function sessionInfoJson(view: Schemas['SessionInfo']): string {
  return (
    `{"sessionId":${quoted(view.sessionId)},"agentId":${quoted(view.agentId)},"userId":${quoted(view.userId)},"createdAt":${quoted(view.createdAt)}` +
    `,"lastActivity":${quoted(view.lastActivity)},"metadata":${quoted(view.metadata)},"expiresAt":${quoted(view.expiresAt)},"timeoutConfig":${quoted(view.timeoutConfig)}` +
    `,"renewalCount":${quoted(view.renewalCount)},"timeRemaining":${quoted(view.timeRemaining)},"isNearExpiration":${view.isNearExpiration},"status":"${view.status}"}`
  );
}

// One text per message record: the store writes it with the message, and its
// message.created event (event-records.ts) stores the same text as its data.
const messageTexts = new WeakMap<MessageRecord, string>();

/** A message's view in JSON: the stores write it with the message, and pages send it as is. */
export function messageJson(message: MessageRecord): string {
  let text = messageTexts.get(message);
  if (text === undefined) {
    text = JSON.stringify(messageView(message));
    messageTexts.set(message, text);
  }
  return text;
}

export function messageView(message: MessageRecord): Schemas['Message'] {
  return {
    id: message.id,
    content: message.content,
    authorId: message.authorId,
    isAgent: message.isAgent,
    createdAt: isoTime(message.createdAt),
    attachments: message.attachments,
    metadata: message.metadata,
  };
}
