// Every statement the SQLite store prepares once, at open.
import Database from 'better-sqlite3';
import { DELIVERIES_KEPT, type MessageQuery, type MessageView } from '../store.js';
import { pageOfViews } from '../message-pages.js';
import { NEXT_EVENT_ID_SQL } from './event-log.js';
import { countAfterSql, type CountedSession, type CounterKind } from './expiry-counts.js';
import { PASSABLE_SQL } from './mark-batch.js';
import { ANNOUNCED_NOW_SQL, DUE_SESSIONS_SQL, MESSAGE_VIEW_PAGE_SQL, SESSION_COLUMNS_BUT_ANNOUNCED } from './queries.js';
import type { AgentRow, ApiKeyRow, DeliveryRow, DueTuple, MessageRow, SessionRow, StoredSessionTuple, WebhookRow } from './rows.js';

/** The bound parameters of a statement: a tuple, or one object of named ones. */
type Params<P> = P extends unknown[] ? P : [P];
/**
 * What the store calls of a prepared statement. Declared here because the type
 * better-sqlite3 gives one cannot be named in this module's declarations.
 */
export interface Prepared<P extends unknown[] | object = unknown[], R = unknown> {
  run(...params: Params<P>): Database.RunResult;
  get(...params: Params<P>): R | undefined;
  all(...params: Params<P>): R[];
  iterate(...params: Params<P>): IterableIterator<R>;
}

/** `raw`: rows as arrays; `pluck`: the first column alone. */
function prepare<P extends unknown[] | object = unknown[], R = unknown>(db: Database.Database, sql: string, mode?: 'raw' | 'pluck'): Prepared<P, R> {
  const statement = db.prepare<P, R>(sql);
  if (mode === 'raw') statement.raw(true);
  if (mode === 'pluck') statement.pluck();
  return statement as unknown as Prepared<P, R>;
}

type MessageBounds = { sessionId: string; before: number; after: number; limit: number };

function messagePageStatements(db: Database.Database) {
  return {
    viewsBackward: prepare<MessageBounds, [number, string]>(db, MESSAGE_VIEW_PAGE_SQL.backward, 'raw'),
    viewsForward: prepare<MessageBounds, [number, string]>(db, MESSAGE_VIEW_PAGE_SQL.forward, 'raw'),
  };
}

/** Sessions of a counter (of agent or user @key) whose deadline is after @after (expiry-counts.ts). */
function countAfterStatement(db: Database.Database, kind: CounterKind) {
  return prepare<{ after: number; key: string }, { n: number }>(db, countAfterSql(kind));
}

export function prepareStatements(db: Database.Database) {
  return {
    insertAgent: prepare<[AgentRow]>(
      db,
      'INSERT INTO agents (id, name, bio, settings, created_at) VALUES (@id, @name, @bio, @settings, @created_at)',
    ),
    getAgent: prepare<[string], AgentRow>(db, 'SELECT * FROM agents WHERE id = ?'),
    listAgents: prepare<[], AgentRow>(db, 'SELECT * FROM agents ORDER BY created_at, id'),
    deleteAgent: prepare<[string]>(db, 'DELETE FROM agents WHERE id = ?'),
    // "Active" is the timeout policy's "not expired": expires_at > now and its expiry not
    // announced (see lifecycle); announcing an expiry sets status 'expired'.
    countActiveSessionsOfAgent: prepare<{ agentId: string; now: number }, { n: number }>(
      db,
      "SELECT count(*) AS n FROM sessions WHERE agent_id = @agentId AND status = 'active' AND expires_at > @now",
    ),
    deleteSessionsOfAgent: prepare<[string]>(db, 'DELETE FROM sessions WHERE agent_id = ?'),
    countedSessionsOfAgent: prepare<[string], CountedSession>(db, 'SELECT rowid, agent_id, user_id, expires_at, warns_at FROM sessions WHERE agent_id = ?'),
    retainedSessionsOfAgent: prepare<{ agentId: string; purgeCutoff: number }, StoredSessionTuple>(
      db,
      `SELECT ${SESSION_COLUMNS_BUT_ANNOUNCED}, ${ANNOUNCED_NOW_SQL}, sessions.rowid FROM sessions WHERE agent_id = @agentId AND expires_at > @purgeCutoff`,
      'raw',
    ),
    insertSession: prepare<[SessionRow]>(
      db,
      `INSERT INTO sessions (id, agent_id, user_id, created_at, last_activity, anchor_at, expires_at, warns_at,
         timeout_minutes, auto_renew, max_duration_minutes, warning_threshold_minutes, renewal_count, status, metadata, announced, due_at, first_event_id)
       VALUES (@id, @agent_id, @user_id, @created_at, @last_activity, @anchor_at, @expires_at, @warns_at,
         @timeout_minutes, @auto_renew, @max_duration_minutes, @warning_threshold_minutes, @renewal_count, @status, @metadata,
         @announced, @due_at, ${NEXT_EVENT_ID_SQL})`,
    ),
    // With its rowid: the count marks compare rowids within an instant (expiry-counts.ts).
    getSession: prepare<[string], StoredSessionTuple>(db, `SELECT ${SESSION_COLUMNS_BUT_ANNOUNCED}, ${ANNOUNCED_NOW_SQL}, sessions.rowid FROM sessions WHERE id = ?`, 'raw'),
    // Where the replay of one session starts reading the log (no index of the log by session).
    firstEventIdOf: prepare<[string], number | null>(db, 'SELECT first_event_id FROM sessions WHERE id = ?', 'pluck'),
    updateSession: prepare<[SessionRow]>(
      db,
      `UPDATE sessions SET last_activity = @last_activity, anchor_at = @anchor_at, expires_at = @expires_at,
         warns_at = @warns_at, timeout_minutes = @timeout_minutes, auto_renew = @auto_renew,
         max_duration_minutes = @max_duration_minutes, warning_threshold_minutes = @warning_threshold_minutes,
         renewal_count = @renewal_count, status = @status, metadata = @metadata,
         announced = @announced, due_at = @due_at
       WHERE id = @id`,
    ),
    deleteSession: prepare<[string]>(db, 'DELETE FROM sessions WHERE id = ?'),
    countExpiringAfter: countAfterStatement(db, 'expiry'),
    countWarningAfter: countAfterStatement(db, 'warning'),
    countAgentExpiringAfter: countAfterStatement(db, 'agent'),
    countUserExpiringAfter: countAfterStatement(db, 'user'),
    anyPurgeable: prepare<[number], number>(db, 'SELECT 1 FROM sessions WHERE expires_at <= ? AND due_at IS NULL LIMIT 1', 'pluck'),
    countMarks: prepare<[], { now_mark: number; now_row: number; cut_mark: number; cut_row: number }>(db, 'SELECT now_mark, now_row, cut_mark, cut_row FROM session_count_marks'),
    passable: prepare<{ fromAt: number; fromRow: number; toAt: number; limit: number }, number>(db, PASSABLE_SQL, 'pluck'),
    insertMessage: prepare<[MessageRow]>(
      db,
      'INSERT INTO messages (session_id, position, view) VALUES (@session_id, @position, @view)',
    ),
    lastMessagePosition: prepare<[string], { position: number | null }>(
      db,
      'SELECT max(position) AS position FROM messages WHERE session_id = ?',
    ),
    ...messagePageStatements(db),
    insertApiKey: prepare<[ApiKeyRow]>(
      db,
      `INSERT INTO api_keys (id, name, key_hash, admin, agent_ids, created_at, revoked_at)
       VALUES (@id, @name, @key_hash, @admin, @agent_ids, @created_at, @revoked_at)`,
    ),
    findApiKey: prepare<[string], ApiKeyRow>(db, 'SELECT * FROM api_keys WHERE key_hash = ?'),
    listApiKeys: prepare<[], ApiKeyRow>(db, 'SELECT * FROM api_keys ORDER BY created_at, id'),
    // An id before a name: a key may be named after another key's id.
    liveApiKey: prepare<{ idOrName: string }, ApiKeyRow>(db, 'SELECT * FROM api_keys WHERE (id = @idOrName OR name = @idOrName) AND revoked_at IS NULL ORDER BY id = @idOrName DESC LIMIT 1'),
    revokeApiKey: prepare<{ id: string; now: number }>(db, 'UPDATE api_keys SET revoked_at = @now WHERE id = @id'),
    disableWebhooksOfKey: prepare<{ id: string; now: number }>(db, 'UPDATE webhooks SET disabled_at = @now WHERE created_by_key = @id AND disabled_at IS NULL'),
    hasApiKeys: prepare<[], number>(db, 'SELECT EXISTS (SELECT 1 FROM api_keys)', 'pluck'),
    ping: prepare(db, 'SELECT 1 FROM sessions LIMIT 1'),
    probeWrite: prepare<[number]>(
      db,
      'INSERT INTO health_probe (id, checked_at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at',
    ),
    dueSessions: prepare<{ now: number; limit: number }, DueTuple>(db, DUE_SESSIONS_SQL, 'raw'),
    anyDue: prepare<[number], number>(db, 'SELECT 1 FROM due_announcements WHERE due_at <= ? LIMIT 1', 'pluck'),
    // The entries a batch read, up to its last one announced (a range of the primary key).
    dropEntriesThrough: prepare<[number, number]>(db, 'DELETE FROM due_announcements WHERE (due_at, session_rowid) <= (?, ?)'),
    // A warning announced: its session's entry moves to the expiry; the row stays as it is.
    // @warned: a JSON array of [session rowid, expires_at].
    addExpiryEntries: prepare<[string]>(
      db,
      `INSERT OR IGNORE INTO due_announcements (due_at, session_rowid) SELECT value ->> 1, value ->> 0 FROM json_each(?)`,
    ),
    // An expiry announced: the row says so (a trigger drops its entry). @expired: a JSON array
    // of [session rowid, status] (a session from before migration 26 may be marked expired already).
    markExpiryAnnounced: prepare<[string]>(
      db,
      `UPDATE sessions SET announced = 'expiry', status = expired.value ->> 1, due_at = NULL
       FROM json_each(?) AS expired WHERE sessions.rowid = expired.value ->> 0`,
    ),
    markExpiryAnnouncedOnly: prepare<[string]>(
      db,
      `UPDATE sessions SET announced = 'expiry', due_at = NULL FROM json_each(?) AS expired WHERE sessions.rowid = expired.value ->> 0`,
    ),
    insertWebhook: prepare<[WebhookRow]>(
      db,
      `INSERT INTO webhooks (id, url, secret, types, agent_id, agent_ids, created_at, cursor, attempts, next_attempt_at, failing_since, disabled_at, created_by_key)
       VALUES (@id, @url, @secret, @types, @agent_id, @agent_ids, @created_at, @cursor, @attempts, @next_attempt_at, @failing_since, @disabled_at, @created_by_key)`,
    ),
    keyRevoked: prepare<[string], number>(db, 'SELECT 1 FROM api_keys WHERE id = ? AND revoked_at IS NOT NULL', 'pluck'),
    webhooksOfKey: prepare<[string], number>(db, 'SELECT count(*) FROM webhooks WHERE created_by_key = ?', 'pluck'),
    listWebhooks: prepare<[], WebhookRow>(db, 'SELECT * FROM webhooks ORDER BY created_at, rowid'),
    getWebhook: prepare<[string], WebhookRow>(db, 'SELECT * FROM webhooks WHERE id = ?'),
    deleteWebhook: prepare<[string]>(db, 'DELETE FROM webhooks WHERE id = ?'),
    claimWebhook: prepare<{ id: string; holder: string; now: number; until: number; passed: number | null }, WebhookRow>(
      db,
      `UPDATE webhooks SET claimed_by = @holder, claimed_until = @until, cursor = max(cursor, coalesce(@passed, cursor))
        WHERE id = @id AND (claimed_by IS NULL OR claimed_by = @holder OR claimed_until <= @now OR (@until > @now AND claimed_until > 2 * @until - @now))
        RETURNING *`,
    ),
    updateWebhookState: prepare<{ id: string; holder: string; cursor: number; attempts: number; next_attempt_at: number; failing_since: number | null; disabled_at: number | null }>(
      db,
      `UPDATE webhooks SET cursor = max(cursor, @cursor), attempts = @attempts, next_attempt_at = @next_attempt_at,
         failing_since = @failing_since, disabled_at = coalesce(disabled_at, @disabled_at) WHERE id = @id AND claimed_by = @holder`,
    ),
    insertDelivery: prepare<[DeliveryRow]>(
      db,
      `INSERT INTO webhook_deliveries (webhook_id, event_id, attempt, attempted_at, status_code, error, next_retry_at)
       VALUES (@webhook_id, @event_id, @attempt, @attempted_at, @status_code, @error, @next_retry_at)`,
    ),
    // Only the latest attempts are kept: what listWebhookDeliveries can show.
    trimDeliveries: prepare<[string, string]>(
      db,
      `DELETE FROM webhook_deliveries WHERE webhook_id = ? AND id <= (SELECT id FROM webhook_deliveries WHERE webhook_id = ? ORDER BY id DESC LIMIT 1 OFFSET ${DELIVERIES_KEPT})`,
    ),
    listDeliveries: prepare<[string, number], DeliveryRow>(db, 'SELECT * FROM webhook_deliveries WHERE webhook_id = ? ORDER BY id DESC LIMIT ?'),
  };
}

/** One page of a session's stored message views, newest first (Store.listMessageViews). */
export function messageViewPage(
  statements: ReturnType<typeof prepareStatements>,
  { sessionId, limit, before, after, maxChars }: MessageQuery,
): { messages: MessageView[]; hasMore: boolean } {
  // Only `after`: walk forward from it; otherwise walk back from `before` (or the newest).
  const forward = after !== undefined && before === undefined;
  const bounds = { sessionId, before: before ?? Number.MAX_SAFE_INTEGER, after: after ?? -1, limit: limit + 1 };
  // Row by row: a page ended by its characters reads no further.
  const page = pageOfViews((forward ? statements.viewsForward : statements.viewsBackward).iterate(bounds), limit, maxChars);
  return { messages: forward ? page.messages.reverse() : page.messages, hasMore: page.hasMore };
}
