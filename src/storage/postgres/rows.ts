// Rows of the PostgreSQL store and the records they hold. bigint columns arrive as
// numbers (epoch milliseconds and ids fit in 2^53), json columns as parsed JSON (the
// free text stored as JSON strings included: see migrations.ts).
import pg from 'pg';
import { nextDue } from '../../domain/timeout-policy.js';
import type { AgentRecord, ApiKeyRecord, DeliveryRecord, EventRecord, IdempotencyRecord, MessageRecord, SessionRecord, WebhookRecord } from '../store.js';
import { messageJson } from '../../views.js';

/** The pool's type parsers: bigint (int8) as a number. */
export const int8AsNumber = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === pg.types.builtins.INT8 ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

export interface AgentRow {
  id: string;
  name: string;
  bio: string | null;
  settings: AgentRecord['settings'];
  created_at: number;
}

export function toAgent(row: AgentRow): AgentRecord {
  const agent: AgentRecord = { id: row.id, name: row.name, settings: row.settings, createdAt: row.created_at };
  if (row.bio !== null) agent.bio = row.bio;
  return agent;
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
  auto_renew: boolean;
  max_duration_minutes: number;
  warning_threshold_minutes: number;
  renewal_count: number;
  status: SessionRecord['status'];
  metadata: SessionRecord['metadata'];
  announced: SessionRecord['announced'];
  due_at: number | null;
}

export function toSession(row: SessionRow): SessionRecord {
  return {
    id: row.id,
    agentId: row.agent_id,
    userId: row.user_id,
    createdAt: row.created_at,
    lastActivity: row.last_activity,
    anchorAt: row.anchor_at,
    expiresAt: row.expires_at,
    warnsAt: row.warns_at,
    config: {
      timeoutMinutes: row.timeout_minutes,
      autoRenew: row.auto_renew,
      maxDurationMinutes: row.max_duration_minutes,
      warningThresholdMinutes: row.warning_threshold_minutes,
    },
    renewalCount: row.renewal_count,
    metadata: row.metadata,
    status: row.status,
    announced: row.announced,
  };
}

/** The session's columns in SESSION_COLUMNS order, as query parameters. */
export function sessionValues(session: SessionRecord): unknown[] {
  return [
    session.id,
    session.agentId,
    session.userId,
    session.createdAt,
    session.lastActivity,
    session.anchorAt,
    session.expiresAt,
    session.warnsAt,
    session.config.timeoutMinutes,
    session.config.autoRenew,
    session.config.maxDurationMinutes,
    session.config.warningThresholdMinutes,
    session.renewalCount,
    session.status,
    JSON.stringify(session.metadata),
    session.announced,
    nextDue(session, session.announced)?.at ?? null,
  ];
}

export const SESSION_COLUMNS = [
  'id',
  'agent_id',
  'user_id',
  'created_at',
  'last_activity',
  'anchor_at',
  'expires_at',
  'warns_at',
  'timeout_minutes',
  'auto_renew',
  'max_duration_minutes',
  'warning_threshold_minutes',
  'renewal_count',
  'status',
  'metadata',
  'announced',
  'due_at',
] as const;

/** A session row from its columns' values in SESSION_COLUMNS order (a listing's JSON tuple). */
export function sessionRowOf(values: unknown[]): SessionRow {
  const row: Record<string, unknown> = {};
  SESSION_COLUMNS.forEach((column, i) => (row[column] = values[i]));
  return row as unknown as SessionRow;
}

/** Each session column's type (migrations.ts), for statements that take a column as an array. */
export const SESSION_COLUMN_TYPES: Record<(typeof SESSION_COLUMNS)[number], string> = {
  id: 'text',
  agent_id: 'text',
  user_id: 'text',
  created_at: 'bigint',
  last_activity: 'bigint',
  anchor_at: 'bigint',
  expires_at: 'bigint',
  warns_at: 'bigint',
  timeout_minutes: 'integer',
  auto_renew: 'boolean',
  max_duration_minutes: 'integer',
  warning_threshold_minutes: 'integer',
  renewal_count: 'integer',
  status: 'text',
  metadata: 'json',
  announced: 'text',
  due_at: 'bigint',
};

export function messageValues(message: MessageRecord): unknown[] {
  return [
    message.sessionId,
    message.position,
    message.id,
    message.createdAt,
    message.authorId,
    message.isAgent,
    JSON.stringify(message.content),
    JSON.stringify(message.attachments),
    JSON.stringify(message.metadata),
    messageJson(message),
  ];
}

export interface ApiKeyRow {
  id: string;
  name: string;
  key_hash: string;
  admin: boolean;
  agent_ids: string[];
  created_at: number;
  revoked_at: number | null;
}

export function toApiKey(row: ApiKeyRow): ApiKeyRecord {
  const key: ApiKeyRecord = { id: row.id, name: row.name, keyHash: row.key_hash, admin: row.admin, agentIds: row.agent_ids, createdAt: row.created_at };
  if (row.revoked_at !== null) key.revokedAt = row.revoked_at;
  return key;
}

export interface IdempotencyRow {
  scope: string;
  key: string;
  fingerprint: string;
  status: number;
  body: string;
  created_at: number;
  expires_at: number;
}

export function toIdempotencyRecord(row: IdempotencyRow): IdempotencyRecord {
  return {
    scope: row.scope,
    key: row.key,
    fingerprint: row.fingerprint,
    status: row.status,
    body: row.body,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
  };
}

export interface EventRow {
  id: number;
  type: EventRecord['type'];
  occurred_at: number;
  agent_id: string;
  session_id: string | null;
  user_id: string | null;
  data: EventRecord['data'];
}

export function toEvent(row: EventRow): EventRecord {
  const event: EventRecord = { id: String(row.id), type: row.type, occurredAt: row.occurred_at, agentId: row.agent_id, data: row.data };
  if (row.session_id !== null) event.sessionId = row.session_id;
  if (row.user_id !== null) event.userId = row.user_id;
  return event;
}

export interface WebhookRow {
  id: string;
  url: string;
  secret: string;
  types: WebhookRecord['types'] | null;
  agent_id: string | null;
  agent_ids: string[] | null;
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
  if (row.types !== null) webhook.types = row.types;
  if (row.agent_id !== null) webhook.agentId = row.agent_id;
  if (row.agent_ids !== null) webhook.agentIds = row.agent_ids;
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
