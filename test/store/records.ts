// Records for the store suite: agents, sessions and messages at fake-clock times.
import { randomUUID } from 'node:crypto';
import { BUILT_IN_DEFAULTS, startTiming } from '../../src/domain/timeout-policy.js';
import type { AgentRecord, IdempotencyRecord, MessageRecord, SessionRecord } from '../../src/storage/store.js';
import { MINUTE, T0 } from '../helpers/fake-clock.js';

export function agentRecord(overrides: Partial<AgentRecord> = {}): AgentRecord {
  return { id: randomUUID(), name: 'Eliza', bio: 'helpful', settings: { SESSION_TIMEOUT_MINUTES: 60 }, createdAt: T0, ...overrides };
}

/** A session of `agentId` created at `createdAt` (30-minute timeout, warning 5 minutes before). */
export function sessionRecord(agentId: string, overrides: Partial<SessionRecord> = {}, createdAt = T0): SessionRecord {
  return {
    id: randomUUID(),
    agentId,
    userId: randomUUID(),
    metadata: { platform: 'discord', username: 'ada' },
    status: 'active',
    announced: 'nothing',
    ...startTiming(createdAt, BUILT_IN_DEFAULTS),
    ...overrides,
  };
}

export function messageRecord(session: SessionRecord, position: number, overrides: Partial<MessageRecord> = {}): MessageRecord {
  return {
    id: randomUUID(),
    sessionId: session.id,
    position,
    createdAt: T0 + position,
    authorId: session.userId,
    isAgent: false,
    content: `message ${position}`,
    attachments: [],
    metadata: { n: position },
    ...overrides,
  };
}

export function idempotencyRecord(key: string, createdAt = T0, overrides: Partial<IdempotencyRecord> = {}): IdempotencyRecord {
  return { scope: 'anonymous', key, fingerprint: 'f1', status: 201, body: '{"ok":true}', createdAt, expiresAt: createdAt + 24 * 60 * MINUTE, ...overrides };
}
