// The SQLite store's rows and their records: each table's row, and the raw tuples the hot
// reads use (a row as an array costs about half as much as one as an object).
import { nextDue } from '../../domain/timeout-policy.js';
import { messageJson } from '../../views.js';
import type { AgentRecord, ApiKeyRecord, DeliveryRecord, MessageRecord, SessionRecord, WebhookRecord } from '../store.js';
import type { CountedSession } from './expiry-counts.js';

export interface AgentRow {
  id: string;
  name: string;
  bio: string | null;
  settings: string;
  created_at: number;
}

export interface SessionRow {
  id: string;
  agent_id: string;
  user_id: string;
  created_at: number;
  last_activity: number;
  anchor_at: number;
  expires_at: number;
  warns_at: number;
  timeout_minutes: number;
  auto_renew: number;
  max_duration_minutes: number;
  warning_threshold_minutes: number;
  renewal_count: number;
  status: 'active' | 'expired';
  metadata: string;
  announced: SessionRecord['announced'];
  /** When the next announcement is due (see nextDue); null when none is. */
  due_at: number | null;
  /** At most the id of the session's first event (migration 17); null: unknown. Set by the insert. */
  first_event_id?: number | null;
}

export interface WebhookRow {
  id: string;
  url: string;
  secret: string;
  types: string | null;
  agent_id: string | null;
  agent_ids: string | null;
  created_at: number;
  cursor: number;
  attempts: number;
  next_attempt_at: number;
  failing_since: number | null;
  disabled_at: number | null;
  created_by_key: string | null;
}

export function toWebhook(row: WebhookRow): WebhookRecord {
  const webhook: WebhookRecord = {
    id: row.id,
    url: row.url,
    secret: row.secret,
    createdAt: row.created_at,
    cursor: String(row.cursor),
    attempts: row.attempts,
    nextAttemptAt: row.next_attempt_at,
  };
  if (row.types !== null) webhook.types = JSON.parse(row.types);
  if (row.agent_id !== null) webhook.agentId = row.agent_id;
  if (row.agent_ids !== null) webhook.agentIds = JSON.parse(row.agent_ids);
  if (row.failing_since !== null) webhook.failingSince = row.failing_since;
  if (row.disabled_at !== null) webhook.disabledAt = row.disabled_at;
  if (row.created_by_key !== null) webhook.createdByKey = row.created_by_key;
  return webhook;
}

export interface DeliveryRow {
  webhook_id: string;
  event_id: number;
  attempt: number;
  attempted_at: number;
  status_code: number | null;
  error: string | null;
  next_retry_at: number | null;
}

export function toDelivery(row: DeliveryRow): DeliveryRecord {
  const delivery: DeliveryRecord = { webhookId: row.webhook_id, eventId: String(row.event_id), attempt: row.attempt, attemptedAt: row.attempted_at };
  if (row.status_code !== null) delivery.statusCode = row.status_code;
  if (row.error !== null) delivery.error = row.error;
  if (row.next_retry_at !== null) delivery.nextRetryAt = row.next_retry_at;
  return delivery;
}

/** A message as stored: its API view in JSON (messageJson), which pages of messages send as is. */
export interface MessageRow {
  session_id: string;
  position: number;
  view: string;
}

export function toMessageRow(message: MessageRecord): MessageRow {
  return { session_id: message.sessionId, position: message.position, view: messageJson(message) };
}

export interface ApiKeyRow {
  id: string;
  name: string;
  key_hash: string;
  admin: number;
  agent_ids: string;
  created_at: number;
  revoked_at: number | null;
}

export function toApiKey(row: ApiKeyRow): ApiKeyRecord {
  const key: ApiKeyRecord = {
    id: row.id,
    name: row.name,
    keyHash: row.key_hash,
    admin: row.admin === 1,
    agentIds: JSON.parse(row.agent_ids),
    createdAt: row.created_at,
  };
  if (row.revoked_at !== null) key.revokedAt = row.revoked_at;
  return key;
}

export function toAgent(row: AgentRow): AgentRecord {
  const agent: AgentRecord = { id: row.id, name: row.name, settings: JSON.parse(row.settings), createdAt: row.created_at };
  if (row.bio !== null) agent.bio = row.bio;
  return agent;
}

export function toSessionRow(session: SessionRecord): SessionRow {
  return {
    id: session.id,
    agent_id: session.agentId,
    user_id: session.userId,
    created_at: session.createdAt,
    last_activity: session.lastActivity,
    anchor_at: session.anchorAt,
    expires_at: session.expiresAt,
    warns_at: session.warnsAt,
    timeout_minutes: session.config.timeoutMinutes,
    auto_renew: session.config.autoRenew ? 1 : 0,
    max_duration_minutes: session.config.maxDurationMinutes,
    warning_threshold_minutes: session.config.warningThresholdMinutes,
    renewal_count: session.renewalCount,
    status: session.status,
    metadata: JSON.stringify(session.metadata),
    announced: session.announced,
    due_at: nextDue(session, session.announced)?.at ?? null,
  };
}

export type SessionTuple = [string, string, string, number, number, number, number, number, number, number, number, number, number, SessionRow['status'], string, SessionRow['announced']];
/** A session read by id, then its rowid: as a tuple, 4.9 µs with its mapping, against 7.5 µs as an object (in-process, measured). */
export type StoredSessionTuple = [...SessionTuple, number];

/** What the counts keep of a session read by id. */
export function countedOf(row: StoredSessionTuple): CountedSession {
  return { rowid: row[16], agent_id: row[1], user_id: row[2], expires_at: row[6], warns_at: row[7] };
}

export function sessionFromTuple(row: SessionTuple | StoredSessionTuple): SessionRecord {
  const [id, agentId, userId, createdAt, lastActivity, anchorAt, expiresAt, warnsAt, timeoutMinutes, autoRenew, maxDurationMinutes, warningThresholdMinutes, renewalCount, status, metadata, announced] = row;
  return {
    id,
    agentId,
    userId,
    createdAt,
    lastActivity,
    anchorAt,
    expiresAt,
    warnsAt,
    config: { timeoutMinutes, autoRenew: autoRenew === 1, maxDurationMinutes, warningThresholdMinutes },
    renewalCount,
    metadata: JSON.parse(metadata),
    status,
    announced,
  };
}


/** A due session as DUE_SESSIONS_SQL reads it: a listed session's tuple, then its entry's due time and its rowid. */
export type DueTuple = [...SessionTuple, number, number];
