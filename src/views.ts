// Stored records → the API's response shapes (types from the spec).
import type { components } from '../generated/api.js';
import { isExpired, isNearExpiration, timeRemaining } from './domain/timeout-policy.js';
import type { AgentRecord, MessageRecord, SessionRecord } from './storage/store.js';
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
    timeoutConfig: timeoutConfigView(session.config),
    renewalCount: session.renewalCount,
    timeRemaining: timeRemaining(session.expiresAt, now),
    isNearExpiration: isNearExpiration(session, now),
    status: isExpired(session.expiresAt, now) ? 'expired' : 'active',
  };
}

// What JSON.stringify escapes in a string: control characters, quote, backslash, surrogates (paired ones too, to be safe).
const NEEDS_ESCAPE = /[\u0000-\u001f"\\\ud800-\udfff]/;
/** A string's JSON, as JSON.stringify writes it; most strings need no escaping, and are only quoted. */
export const quoted = (text: string) => (NEEDS_ESCAPE.test(text) ? JSON.stringify(text) : `"${text}"`);
/** A number's JSON, as JSON.stringify writes it. */
export const numberJson = (value: number) => (Number.isFinite(value) ? `${value}` : 'null');

/**
 * A SessionInfo view's JSON, exactly as JSON.stringify writes it (same keys, same order),
 * without walking the object: its times are ISO text already (nothing to escape), its
 * timeoutConfig has the four keys timeoutConfigView gives it, and only its metadata is
 * serialized. The session events' data (event-records.ts); JSON.stringify took about 2 µs.
 */
export function sessionInfoJson(view: Schemas['SessionInfo']): string {
  const config = view.timeoutConfig;
  return (
    `{"sessionId":${quoted(view.sessionId)},"agentId":${quoted(view.agentId)},"userId":${quoted(view.userId)},"createdAt":"${view.createdAt}"` +
    `,"lastActivity":"${view.lastActivity}","metadata":${JSON.stringify(view.metadata)},"expiresAt":"${view.expiresAt}"` +
    `,"timeoutConfig":{"timeoutMinutes":${numberJson(config.timeoutMinutes)},"autoRenew":${config.autoRenew},"maxDurationMinutes":${numberJson(config.maxDurationMinutes)}` +
    `,"warningThresholdMinutes":${numberJson(config.warningThresholdMinutes)}},"renewalCount":${numberJson(view.renewalCount)},"timeRemaining":${numberJson(view.timeRemaining)}` +
    `,"isNearExpiration":${view.isNearExpiration},"status":"${view.status}"}`
  );
}

/** The timeout configuration as the API shows it: its four keys, in this order (sessionInfoJson writes them so). */
function timeoutConfigView(config: SessionRecord['config']): Schemas['TimeoutConfig'] {
  return {
    timeoutMinutes: config.timeoutMinutes,
    autoRenew: config.autoRenew,
    maxDurationMinutes: config.maxDurationMinutes,
    warningThresholdMinutes: config.warningThresholdMinutes,
  };
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
