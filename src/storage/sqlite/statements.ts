// Every statement the SQLite store prepares once, at open.
import type Database from 'better-sqlite3';
import type { MessageQuery } from '../store.js';
import { NEXT_EVENT_ID_SQL } from './event-log.js';
import { countAfterSql, type CountedSession, type CounterKind } from './expiry-counts.js';
import { PASSABLE_SQL } from './mark-batch.js';
import { ANNOUNCED_NOW_SQL, DUE_SESSIONS_SQL, MARK_EXPIRED_SQL, MESSAGE_PAGE_SQL, MESSAGE_VIEW_PAGE_SQL, SESSION_COLUMNS_BUT_ANNOUNCED } from './queries.js';
import type { AgentRow, ApiKeyRow, DeliveryRow, DueTuple, MessageRow, MessageTuple, SessionRow, StoredSessionTuple, WebhookRow } from './rows.js';

type MessageBounds = { sessionId: string; before: number; after: number; limit: number };

function messagePageStatements(db: Database.Database) {
  return {
    messagesBackward: db.prepare<MessageBounds, MessageTuple>(MESSAGE_PAGE_SQL.backward).raw(true),
    messagesForward: db.prepare<MessageBounds, MessageTuple>(MESSAGE_PAGE_SQL.forward).raw(true),
    viewsBackward: db.prepare<MessageBounds, [number, string]>(MESSAGE_VIEW_PAGE_SQL.backward).raw(true),
    viewsForward: db.prepare<MessageBounds, [number, string]>(MESSAGE_VIEW_PAGE_SQL.forward).raw(true),
  };
}

/** Sessions of a counter (of agent or user @key) whose deadline is after @after (expiry-counts.ts). */
function countAfterStatement(db: Database.Database, kind: CounterKind) {
  return db.prepare<{ after: number; key: string }, { n: number }>(countAfterSql(kind));
}

export function prepareStatements(db: Database.Database) {
  return {
    insertAgent: db.prepare<[AgentRow]>(
      'INSERT INTO agents (id, name, bio, settings, created_at) VALUES (@id, @name, @bio, @settings, @created_at)',
    ),
    getAgent: db.prepare<[string], AgentRow>('SELECT * FROM agents WHERE id = ?'),
    listAgents: db.prepare<[], AgentRow>('SELECT * FROM agents ORDER BY created_at, id'),
    deleteAgent: db.prepare<[string]>('DELETE FROM agents WHERE id = ?'),
    // "Active" is the timeout policy's "not expired": expires_at > now (see isExpired).
    countActiveSessionsOfAgent: db.prepare<{ agentId: string; now: number }, { n: number }>(
      "SELECT count(*) AS n FROM sessions WHERE agent_id = @agentId AND status = 'active' AND expires_at > @now",
    ),
    deleteSessionsOfAgent: db.prepare<[string]>('DELETE FROM sessions WHERE agent_id = ?'),
    countedSessionsOfAgent: db.prepare<[string], CountedSession>('SELECT rowid, agent_id, user_id, expires_at, warns_at FROM sessions WHERE agent_id = ?'),
    insertSession: db.prepare<[SessionRow]>(
      `INSERT INTO sessions (id, agent_id, user_id, created_at, last_activity, anchor_at, expires_at, warns_at,
         timeout_minutes, auto_renew, max_duration_minutes, warning_threshold_minutes, renewal_count, status, metadata, announced, due_at, first_event_id)
       VALUES (@id, @agent_id, @user_id, @created_at, @last_activity, @anchor_at, @expires_at, @warns_at,
         @timeout_minutes, @auto_renew, @max_duration_minutes, @warning_threshold_minutes, @renewal_count, @status, @metadata,
         @announced, @due_at, ${NEXT_EVENT_ID_SQL})`,
    ),
    // With its rowid: the count marks compare rowids within an instant (expiry-counts.ts).
    getSession: db.prepare<[string], StoredSessionTuple>(`SELECT ${SESSION_COLUMNS_BUT_ANNOUNCED}, ${ANNOUNCED_NOW_SQL}, sessions.rowid FROM sessions WHERE id = ?`).raw(),
    // Where the replay of one session starts reading the log (no index of the log by session).
    firstEventIdOf: db.prepare<[string], number | null>('SELECT first_event_id FROM sessions WHERE id = ?').pluck(),
    updateSession: db.prepare<[SessionRow]>(
      `UPDATE sessions SET last_activity = @last_activity, anchor_at = @anchor_at, expires_at = @expires_at,
         warns_at = @warns_at, timeout_minutes = @timeout_minutes, auto_renew = @auto_renew,
         max_duration_minutes = @max_duration_minutes, warning_threshold_minutes = @warning_threshold_minutes,
         renewal_count = @renewal_count, status = @status, metadata = @metadata,
         announced = @announced, due_at = @due_at
       WHERE id = @id`,
    ),
    deleteSession: db.prepare<[string]>('DELETE FROM sessions WHERE id = ?'),
    countExpiringAfter: countAfterStatement(db, 'expiry'),
    countWarningAfter: countAfterStatement(db, 'warning'),
    countAgentExpiringAfter: countAfterStatement(db, 'agent'),
    countUserExpiringAfter: countAfterStatement(db, 'user'),
    markExpired: db.prepare<{ now: number; limit: number }>(MARK_EXPIRED_SQL),
    anyPurgeable: db.prepare<[number], number>('SELECT 1 FROM sessions WHERE expires_at <= ? LIMIT 1').pluck(),
    countMarks: db.prepare<[], { now_mark: number; now_row: number; cut_mark: number; cut_row: number }>('SELECT now_mark, now_row, cut_mark, cut_row FROM session_count_marks'),
    passable: db.prepare<{ fromAt: number; fromRow: number; toAt: number; limit: number }, number>(PASSABLE_SQL).pluck(),
    insertMessage: db.prepare<[MessageRow]>(
      `INSERT INTO messages (id, session_id, position, created_at, author_id, is_agent, content, attachments, metadata, view)
       VALUES (@id, @session_id, @position, @created_at, @author_id, @is_agent, @content, @attachments, @metadata, @view)`,
    ),
    lastMessagePosition: db.prepare<[string], { position: number | null }>(
      'SELECT max(position) AS position FROM messages WHERE session_id = ?',
    ),
    ...messagePageStatements(db),
    insertApiKey: db.prepare<[ApiKeyRow]>(
      `INSERT INTO api_keys (id, name, key_hash, admin, agent_ids, created_at, revoked_at)
       VALUES (@id, @name, @key_hash, @admin, @agent_ids, @created_at, @revoked_at)`,
    ),
    findApiKey: db.prepare<[string], ApiKeyRow>('SELECT * FROM api_keys WHERE key_hash = ?'),
    listApiKeys: db.prepare<[], ApiKeyRow>('SELECT * FROM api_keys ORDER BY created_at, id'),
    // An id before a name: a key may be named after another key's id.
    liveApiKey: db.prepare<{ idOrName: string }, ApiKeyRow>('SELECT * FROM api_keys WHERE (id = @idOrName OR name = @idOrName) AND revoked_at IS NULL ORDER BY id = @idOrName DESC LIMIT 1'),
    revokeApiKey: db.prepare<{ id: string; now: number }>('UPDATE api_keys SET revoked_at = @now WHERE id = @id'),
    hasApiKeys: db.prepare<[], number>('SELECT EXISTS (SELECT 1 FROM api_keys)').pluck(),
    ping: db.prepare('SELECT 1 FROM sessions LIMIT 1'),
    probeWrite: db.prepare<[number]>(
      'INSERT INTO health_probe (id, checked_at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at',
    ),
    dueSessions: db.prepare<{ now: number; limit: number }, DueTuple>(DUE_SESSIONS_SQL).raw(true),
    anyDue: db.prepare<[number], number>('SELECT 1 FROM due_announcements WHERE due_at <= ? LIMIT 1').pluck(),
    // The entries a batch read, up to its last one announced (a range of the primary key).
    dropEntriesThrough: db.prepare<[number, number]>('DELETE FROM due_announcements WHERE (due_at, session_rowid) <= (?, ?)'),
    // A warning announced: its session's entry moves to the expiry; the row stays as it is.
    // @warned: a JSON array of [session rowid, expires_at].
    addExpiryEntries: db.prepare<[string]>(
      `INSERT OR IGNORE INTO due_announcements (due_at, session_rowid) SELECT value ->> 1, value ->> 0 FROM json_each(?)`,
    ),
    // An expiry announced: the row says so (a trigger drops its entry). @expired: a JSON array
    // of [session rowid, status]; an UPDATE that sets no status (the sweeper marked it already)
    // leaves the partial index on status (sessions_unmarked_expiry) alone.
    markExpiryAnnounced: db.prepare<[string]>(
      `UPDATE sessions SET announced = 'expiry', status = expired.value ->> 1, due_at = NULL
       FROM json_each(?) AS expired WHERE sessions.rowid = expired.value ->> 0`,
    ),
    markExpiryAnnouncedOnly: db.prepare<[string]>(
      `UPDATE sessions SET announced = 'expiry', due_at = NULL FROM json_each(?) AS expired WHERE sessions.rowid = expired.value ->> 0`,
    ),
    insertWebhook: db.prepare<[WebhookRow]>(
      `INSERT INTO webhooks (id, url, secret, types, agent_id, agent_ids, created_at, cursor, attempts, next_attempt_at, failing_since, disabled_at)
       VALUES (@id, @url, @secret, @types, @agent_id, @agent_ids, @created_at, @cursor, @attempts, @next_attempt_at, @failing_since, @disabled_at)`,
    ),
    listWebhooks: db.prepare<[], WebhookRow>('SELECT * FROM webhooks ORDER BY created_at, rowid'),
    deleteWebhook: db.prepare<[string]>('DELETE FROM webhooks WHERE id = ?'),
    updateWebhookState: db.prepare<{ id: string; cursor: number; attempts: number; next_attempt_at: number; failing_since: number | null; disabled_at: number | null }>(
      `UPDATE webhooks SET cursor = @cursor, attempts = @attempts, next_attempt_at = @next_attempt_at,
         failing_since = @failing_since, disabled_at = @disabled_at WHERE id = @id`,
    ),
    insertDelivery: db.prepare<[DeliveryRow]>(
      `INSERT INTO webhook_deliveries (webhook_id, event_id, attempt, attempted_at, status_code, error, next_retry_at)
       VALUES (@webhook_id, @event_id, @attempt, @attempted_at, @status_code, @error, @next_retry_at)`,
    ),
    // Only the latest attempts are kept: what listWebhookDeliveries can show.
    trimDeliveries: db.prepare<[string, string]>(
      'DELETE FROM webhook_deliveries WHERE webhook_id = ? AND id <= (SELECT id FROM webhook_deliveries WHERE webhook_id = ? ORDER BY id DESC LIMIT 1 OFFSET 100)',
    ),
    listDeliveries: db.prepare<[string, number], DeliveryRow>('SELECT * FROM webhook_deliveries WHERE webhook_id = ? ORDER BY id DESC LIMIT ?'),
  };
}

/** One page of a session's messages, newest first, read by one of a pair of statements. */
export function messagePage<Row, Item>(
  { sessionId, limit, before, after }: MessageQuery,
  forwardStatement: Database.Statement<MessageBounds, Row>,
  backwardStatement: Database.Statement<MessageBounds, Row>,
  toItem: (row: Row) => Item,
): { messages: Item[]; hasMore: boolean } {
  // Only `after`: walk forward from it; otherwise walk back from `before` (or the newest).
  const forward = after !== undefined && before === undefined;
  const bounds = { sessionId, before: before ?? Number.MAX_SAFE_INTEGER, after: after ?? -1, limit: limit + 1 };
  const rows = (forward ? forwardStatement : backwardStatement).all(bounds);
  const page = rows.slice(0, limit).map(toItem);
  return { messages: forward ? page.reverse() : page, hasMore: rows.length > limit };
}
