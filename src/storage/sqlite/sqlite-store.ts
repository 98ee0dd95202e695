// The SQLite store: one file (or :memory:), WAL, prepared statements, one transaction
// per read-modify-write.
import { mkdirSync, statSync, statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { nextDue } from '../../domain/timeout-policy.js';
import {
  agentsOfQuery,
  type AgentRecord,
  type ApiKeyRecord,
  type Carried,
  type DeleteAgentOutcome,
  type EventInput,
  type EventRecord,
  type Announcement,
  type DeliveryRecord,
  type WebhookRecord,
  type MessageQuery,
  type MessageRecord,
  type SessionQuery,
  type SessionRecord,
  type Store,
} from '../store.js';
import { apiKeyCache } from './api-key-cache.js';
import { eventLog, NEXT_EVENT_ID_SQL } from './event-log.js';
import { externalCommits } from './external-commits.js';
import { groupCommit, type RunWrite } from './group-commit.js';
import { migrate } from './migrations.js';
import { idempotencyRecords } from './idempotency-records.js';
import { cachedAgents } from './agent-cache.js';
import { countAfterSql, countedSession, expiryCounts, WHOLE_INSTANT, type CountedSession, type CounterKind } from './expiry-counts.js';
import { checkOnOpen, fileInPlace, withStorageFaults } from './storage-faults.js';
import { checkpointer } from './checkpointer.js';
import { PURGE_MESSAGES_PER_SESSION, preparePurge, purgeSql, runPurgeBatch } from './purge-batch.js';
import { purgeWorker } from './purge-worker.js';
import { markSql, PASSABLE_SQL, prepareMarks, runMarkMove } from './mark-batch.js';
import { messageJson } from '../../http/views.js';

interface AgentRow {
  id: string;
  name: string;
  bio: string | null;
  settings: string;
  created_at: number;
}

interface SessionRow {
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

interface WebhookRow {
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
}

function toWebhook(row: WebhookRow): WebhookRecord {
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
  return webhook;
}

interface DeliveryRow {
  webhook_id: string;
  event_id: number;
  attempt: number;
  attempted_at: number;
  status_code: number | null;
  error: string | null;
  next_retry_at: number | null;
}

function toDelivery(row: DeliveryRow): DeliveryRecord {
  const delivery: DeliveryRecord = { webhookId: row.webhook_id, eventId: String(row.event_id), attempt: row.attempt, attemptedAt: row.attempted_at };
  if (row.status_code !== null) delivery.statusCode = row.status_code;
  if (row.error !== null) delivery.error = row.error;
  if (row.next_retry_at !== null) delivery.nextRetryAt = row.next_retry_at;
  return delivery;
}

interface MessageRow {
  id: string;
  session_id: string;
  position: number;
  created_at: number;
  author_id: string;
  is_agent: number;
  content: string;
  attachments: string;
  metadata: string;
  /** The message's API view in JSON (messageJson), written with it; pages of views read it alone. */
  view?: string;
}

function toMessage(row: MessageRow): MessageRecord {
  return {
    id: row.id,
    sessionId: row.session_id,
    position: row.position,
    createdAt: row.created_at,
    authorId: row.author_id,
    isAgent: row.is_agent === 1,
    content: row.content,
    attachments: JSON.parse(row.attachments),
    metadata: JSON.parse(row.metadata),
  };
}

function toMessageRow(message: MessageRecord): MessageRow {
  return {
    id: message.id,
    session_id: message.sessionId,
    position: message.position,
    created_at: message.createdAt,
    author_id: message.authorId,
    is_agent: message.isAgent ? 1 : 0,
    content: message.content,
    attachments: JSON.stringify(message.attachments),
    metadata: JSON.stringify(message.metadata),
    view: messageJson(message),
  };
}

interface ApiKeyRow {
  id: string;
  name: string;
  key_hash: string;
  admin: number;
  agent_ids: string;
  created_at: number;
  revoked_at: number | null;
}

function toApiKey(row: ApiKeyRow): ApiKeyRecord {
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

function toAgent(row: AgentRow): AgentRecord {
  const agent: AgentRecord = { id: row.id, name: row.name, settings: JSON.parse(row.settings), createdAt: row.created_at };
  if (row.bio !== null) agent.bio = row.bio;
  return agent;
}

function toSessionRow(session: SessionRecord): SessionRow {
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

// The page query walks an index in created_at order and stops after the page; the
// unary + keeps SQLite from using an expiry index for the status term instead.
const STATUS_TERMS: Record<SessionQuery['status'], { page: string; count: string }> = {
  active: { page: '+expires_at > @now', count: 'expires_at > @now' },
  expired: {
    page: '+expires_at <= @now AND +expires_at > @purgeCutoff',
    count: 'expires_at <= @now AND expires_at > @purgeCutoff',
  },
  all: { page: '+expires_at > @purgeCutoff', count: 'expires_at > @purgeCutoff' },
};

/** A page of one session's messages is a range of the (session_id, position) primary key. */
const MESSAGE_COLUMNS = 'session_id, position, id, created_at, author_id, is_agent, content, attachments, metadata';
export const MESSAGE_PAGE_SQL = {
  backward: `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE session_id = @sessionId AND position < @before AND position > @after ORDER BY position DESC LIMIT @limit`,
  forward: `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE session_id = @sessionId AND position < @before AND position > @after ORDER BY position ASC LIMIT @limit`,
};

type MessageBounds = { sessionId: string; before: number; after: number; limit: number };
/** A row as an array in MESSAGE_COLUMNS order: pages read rows raw, which halves their cost. */
type MessageTuple = [string, number, string, number, string, number, string, string, string];

function fromTuple([session_id, position, id, created_at, author_id, is_agent, content, attachments, metadata]: MessageTuple): MessageRecord {
  return toMessage({ session_id, position, id, created_at, author_id, is_agent, content, attachments, metadata });
}

/** The same pages, of the stored views only. */
export const MESSAGE_VIEW_PAGE_SQL = {
  backward: MESSAGE_PAGE_SQL.backward.replace(MESSAGE_COLUMNS, 'position, view'),
  forward: MESSAGE_PAGE_SQL.forward.replace(MESSAGE_COLUMNS, 'position, view'),
};

function messagePageStatements(db: Database.Database) {
  return {
    messagesBackward: db.prepare<MessageBounds, MessageTuple>(MESSAGE_PAGE_SQL.backward).raw(true),
    messagesForward: db.prepare<MessageBounds, MessageTuple>(MESSAGE_PAGE_SQL.forward).raw(true),
    viewsBackward: db.prepare<MessageBounds, [number, string]>(MESSAGE_VIEW_PAGE_SQL.backward).raw(true),
    viewsForward: db.prepare<MessageBounds, [number, string]>(MESSAGE_VIEW_PAGE_SQL.forward).raw(true),
  };
}

/** One page of a session's messages, newest first, read by one of a pair of statements. */
function messagePage<Row, Item>(
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

/**
 * What a session row has announced as of now: its `announced` column is what it had at
 * its last write; a warning the event pump announced since moved its entry in
 * due_announcements from warns_at to expires_at without writing the row (migration 18).
 */
export const ANNOUNCED_NOW_SQL = `CASE WHEN sessions.announced = 'nothing' AND sessions.warns_at < sessions.expires_at
  AND NOT EXISTS (SELECT 1 FROM due_announcements AS due WHERE due.due_at = sessions.warns_at AND due.session_rowid = sessions.rowid)
  THEN 'warning' ELSE sessions.announced END`;

/** A listed session's columns, read as a tuple (raw rows cost half as much as objects). */
const SESSION_COLUMNS_BUT_ANNOUNCED = `sessions.id, agent_id, user_id, created_at, last_activity, anchor_at, expires_at, warns_at, timeout_minutes,
  auto_renew, max_duration_minutes, warning_threshold_minutes, renewal_count, status, metadata`;
// A warning not yet due (@now) cannot have been announced: no lookup of its entry then.
const SESSION_COLUMNS = `${SESSION_COLUMNS_BUT_ANNOUNCED}, ${ANNOUNCED_NOW_SQL.replace('CASE WHEN', 'CASE WHEN sessions.warns_at <= @now AND')}`;
type SessionTuple = [string, string, string, number, number, number, number, number, number, number, number, number, number, SessionRow['status'], string, SessionRow['announced']];
/** A session read by id, then its rowid: as a tuple, 4.9 µs with its mapping, against 7.5 µs as an object (in-process, measured). */
type StoredSessionTuple = [...SessionTuple, number];

/** What the counts keep of a session read by id. */
function countedOf(row: StoredSessionTuple): CountedSession {
  return { rowid: row[16], agent_id: row[1], user_id: row[2], expires_at: row[6], warns_at: row[7] };
}

function sessionFromTuple(row: SessionTuple | StoredSessionTuple): SessionRecord {
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

/** The SQL of one page of listSessions and of its total, for the filters the query uses. */
export function listSessionsSql(query: Pick<SessionQuery, 'agentId' | 'agentIds' | 'userId' | 'status' | 'after'>): { page: string; count: string } {
  const filters = [
    query.agentId !== undefined ? 'agent_id = @agentId' : undefined,
    query.agentIds !== undefined ? 'agent_id IN (SELECT value FROM json_each(@agentIds))' : undefined,
    query.userId !== undefined ? 'user_id = @userId' : undefined,
  ].filter(Boolean);
  const terms = STATUS_TERMS[query.status];
  const where = (statusTerm: string) => [...filters, statusTerm].join(' AND ');
  const keyset = query.after !== undefined ? ' AND (created_at, id) < (@afterCreatedAt, @afterId)' : '';
  return {
    // One row more than the page: it tells whether there are more.
    page: `SELECT ${SESSION_COLUMNS} FROM sessions WHERE ${where(terms.page)}${keyset} ORDER BY created_at DESC, id DESC LIMIT @limit + 1 OFFSET @offset`,
    count: `SELECT count(*) AS n FROM sessions WHERE ${where(terms.count)}`,
  };
}

/**
 * The sessions whose announcements are due first: a range of due_announcements, each
 * session found by its rowid (migration 20). After a listed session's columns and what it
 * announced: the entry's due time (the warning's, warns_at, while it is due; the expiry's,
 * expires_at, once the warning went), and the session's rowid.
 */
export const DUE_SESSIONS_SQL = `SELECT ${SESSION_COLUMNS_BUT_ANNOUNCED},
    CASE WHEN sessions.announced = 'nothing' AND sessions.warns_at < sessions.expires_at AND due.due_at <> sessions.warns_at
      THEN 'warning' ELSE sessions.announced END,
    due.due_at, due.session_rowid
  FROM due_announcements AS due CROSS JOIN sessions ON sessions.rowid = due.session_rowid
  WHERE due.due_at <= @now ORDER BY due.due_at, due.session_rowid LIMIT @limit`;
/** A due session as DUE_SESSIONS_SQL reads it: a listed session's tuple, then its entry's due time and its rowid. */
type DueTuple = [...SessionTuple, number, number];

/** The sweeper's mark pass, from the partial index of unmarked sessions: a marked one leaves it. */
export const MARK_EXPIRED_SQL = `UPDATE sessions SET status = 'expired' WHERE rowid IN
  (SELECT rowid FROM sessions WHERE status = 'active' AND expires_at <= @now LIMIT @limit)`;

export { PURGEABLE_SQL } from './purge-batch.js';

/** Runs an insert: false when it breaks one of the constraints `codes` (an expected refusal), true when done. */
function insertUnless(codes: string | readonly string[], insert: () => unknown): boolean {
  try {
    insert();
    return true;
  } catch (error) {
    if (error instanceof Database.SqliteError && (typeof codes === 'string' ? error.code === codes : codes.includes(error.code))) return false;
    throw error;
  }
}

/** Sessions of a counter (of agent or user @key) whose deadline is after @after (expiry-counts.ts). */
function countAfterStatement(db: Database.Database, kind: CounterKind) {
  return db.prepare<{ after: number; key: string }, { n: number }>(countAfterSql(kind));
}

export interface SqliteOptions {
  /** NORMAL: a committed write survives the process dying; FULL: also a power loss (fsync per commit). */
  synchronous?: 'normal' | 'full';
  /** How long a write waits for another process's write lock before answering 503 (default 5000). */
  lockWaitMs?: number;
  /** Over this size the WAL is checkpointed and emptied even under constant writes (checkpointer.ts; default 16 MiB). */
  walCapBytes?: number;
  /** Log ids a read of the events walks per statement (default EVENT_SCAN_WINDOW, event-log.ts). */
  eventScanWindow?: number;
}

/**
 * SQLite's own busy wait sleeps on the event loop, so it is kept this short; longer lock
 * waits are retried asynchronously (group-commit.ts).
 */
const BUSY_TIMEOUT_MS = 5;
/**
 * A move of the count marks that passes fewer sessions than this runs on the store's own
 * connection (a pass every minute passes a minute's worth); more go to the purge worker:
 * 100 a batch on the event loop took ~1 ms (10^5 sessions, loaded), each dirtying the
 * totals of ~100 agents.
 */
const MARKS_ON_LOOP = 100;

/** The connection the store uses: WAL, the chosen durability, foreign keys on, schema migrated. */
export function openDatabase(path: string, options: SqliteOptions = {}): Database.Database {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${options.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
    db.pragma('foreign_keys = ON');
    // Every write of a group commit runs in a savepoint, which journals the original of
    // each page it touches: in memory, not in a temporary file (one pwrite a page a write).
    db.pragma('temp_store = MEMORY');
    // Migrations and the check on open may wait longer: nothing is served yet.
    db.pragma('busy_timeout = 5000');
    checkOnOpen(db, path === ':memory:' ? 0 : statSync(path).size);
    migrate(db);
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  } catch (error) {
    db.close();
    throw error;
  }
  return db;
}

/**
 * One small write at open, so that the WAL's header is written and synced now. SQLite
 * syncs the header whenever a write starts the WAL over (an empty WAL after open, or one a
 * checkpoint emptied), also with synchronous=NORMAL: left to the first write served, that
 * fsync ran inside a group commit on the event loop (52-97 ms in the first batch of a burst
 * of due warnings right after the server started, with the disk busy). Best effort: a
 * failing disk fails the writes that follow, as it would have.
 */
function startWal(db: Database.Database): void {
  try {
    db.prepare('INSERT INTO health_probe (id, checked_at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at').run(Date.now());
  } catch {
    // Read by nothing: the writes served report the storage's state.
  }
}

export function openSqliteStore(path: string, options: SqliteOptions = {}): Store {
  const db = openDatabase(path, options);
  if (path !== ':memory:') startWal(db);
  const commits = externalCommits(db, path);
  const keys = apiKeyCache(commits);

  const statements = {
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

  const counts = expiryCounts(db);
  const idempotency = idempotencyRecords(db);
  const agentCache = cachedAgents(commits, (id) => {
    const row = statements.getAgent.get(id);
    return row && toAgent(row);
  });

  const log = eventLog(db, { scanWindow: options.eventScanWindow });
  const eventListeners = new Set<(committed?: EventRecord[]) => void>();
  let eventsWritten = false;
  // The events the batch wrote, with their ids (known at its flush), and those of the last
  // commit: handed to the listeners as written, so that a reader of the log need not read them back.
  let recorded: EventRecord[] = [];
  let committed: EventRecord[] = [];
  // With no listener, events are not recorded (nobody to hand them to). A listener that
  // comes later is told to read the log until the commits it missed have been handed over.
  let unrecorded = false;
  let committedUnrecorded = false;
  function appendEvents(events: EventInput[]): void {
    if (events.length === 0) return;
    log.append(events);
    eventsWritten = true;
  }
  /** The group commit's last step: the batch's events, written in its transaction. */
  function flushEvents(): void {
    if (log.mark() === 0) return;
    const keep = eventListeners.size > 0;
    recorded = log.flush(keep);
    if (!keep) unrecorded = true;
  }

  /** Writes the rows a write carries, in the write's own transaction (call it inside). */
  function writeCarried<T>(carried: Carried<T> | undefined, written: T): void {
    appendEvents(carried?.events?.(written) ?? []);
    const record = carried?.idempotency?.(written);
    // Thrown, IdempotencyKeyTaken rolls the whole write back with it.
    if (record) idempotency.insert(record);
  }

  /** Rewrites a session read as `before` (none: nothing to rewrite), keeping the counts. */
  function updateSession(before: CountedSession | undefined, after: SessionRow): void {
    if (statements.updateSession.run(after).changes > 0 && before) counts.noteChange(before, after);
  }

  const deleteAgent = db.transaction((id: string, force: boolean, now: number, carried?: Carried<DeleteAgentOutcome>): DeleteAgentOutcome => {
    const agent = statements.getAgent.get(id);
    if (!agent) return { kind: 'not_found' };
    const active = statements.countActiveSessionsOfAgent.get({ agentId: id, now })?.n ?? 0;
    if (active > 0 && !force) return { kind: 'has_active_sessions', activeSessions: active };
    for (const session of statements.countedSessionsOfAgent.all(id)) counts.note(session, -1);
    const deletedSessions = statements.deleteSessionsOfAgent.run(id).changes;
    statements.deleteAgent.run(id);
    const outcome: DeleteAgentOutcome = { kind: 'deleted', deletedSessions, agent: toAgent(agent) };
    writeCarried(carried, outcome);
    return outcome;
  });

  const modifySession = db.transaction(
    (id: string, change: (current: SessionRecord | undefined) => SessionRecord, carried?: Carried<SessionRecord>) => {
      const row = statements.getSession.get(id);
      const next = change(row && sessionFromTuple(row));
      updateSession(row && countedOf(row), toSessionRow(next));
      writeCarried(carried, next);
      return next;
    },
  );

  /**
   * A batch of due announcements in order of due time: the `limit` entries of
   * due_announcements due first, read by one statement with their sessions. A session whose
   * next announcement also falls due within the batch's range (a warning, then its expiry,
   * after a jump of the clock) announces it in its place in that order; one due after the
   * batch's last (when the batch is full) is left to the next. A warning moves the session's
   * entry to its expiry and leaves the row alone; an expiry writes the row (what it
   * announced, its status). Neither changes the deadlines the counts keep.
   */
  const announceDue = db.transaction((now: number, limit: number, announce: (session: SessionRecord) => Announcement) => {
    const rows = statements.dueSessions.all({ now, limit });
    if (rows.length === 0) return 0;
    // Every due session was read when the batch is not full: then any follow-up due by now fires here.
    const lastDue = rows.length < limit ? now : rows.at(-1)![16];
    // Per session: its rowid, as read, and as the batch leaves it.
    const moved = new Map<string, { rowid: number; read: SessionRecord; last: SessionRecord }>();
    const events: EventInput[] = [];
    // Follow-ups due within the batch's range, in order of due time.
    const followUps: Array<{ at: number; session: SessionRecord; rowid: number }> = [];
    let announced = 0;
    const fire = (session: SessionRecord, rowid: number) => {
      const announcement = announce(session);
      const next = announcement.session;
      const entry = moved.get(session.id);
      if (entry) entry.last = next;
      else moved.set(session.id, { rowid, read: session, last: next });
      for (const event of announcement.events) events.push(event);
      announced += 1;
      const due = nextDue(next, next.announced)?.at;
      if (due !== undefined && due <= lastDue) {
        let at = followUps.length;
        while (at > 0 && followUps[at - 1]!.at > due) at -= 1;
        followUps.splice(at, 0, { at: due, session: next, rowid });
      }
    };
    const fireFollowUp = () => {
      const { session, rowid } = followUps.shift()!;
      fire(session, rowid);
    };
    let lastRead: DueTuple | undefined;
    for (const row of rows) {
      while (followUps.length > 0 && followUps[0]!.at < row[16] && announced < limit) fireFollowUp();
      if (announced >= limit) break;
      fire(sessionFromTuple(row as unknown as SessionTuple), row[17]); // reads the tuple's first 16 values
      lastRead = row;
    }
    while (followUps.length > 0 && announced < limit) fireFollowUp();
    // Every entry the batch read up to lastRead: the loop announced them all.
    statements.dropEntriesThrough.run(lastRead![16], lastRead![17]);
    const warned: Array<[rowid: number, expiresAt: number]> = [];
    const expiredKept: Array<[rowid: number, status: string]> = [];
    const expiredChanged: Array<[rowid: number, status: string]> = [];
    for (const { rowid, read, last } of moved.values()) {
      if (last.announced === 'expiry') (last.status === read.status ? expiredKept : expiredChanged).push([rowid, last.status]);
      else warned.push([rowid, last.expiresAt]);
    }
    if (warned.length > 0) statements.addExpiryEntries.run(JSON.stringify(warned));
    if (expiredKept.length > 0) statements.markExpiryAnnouncedOnly.run(JSON.stringify(expiredKept));
    if (expiredChanged.length > 0) statements.markExpiryAnnounced.run(JSON.stringify(expiredChanged));
    appendEvents(events);
    return announced;
  });

  const appendMessage = db.transaction(
    <T extends { session: SessionRecord; message: MessageRecord }>(
      sessionId: string,
      build: (current: SessionRecord | undefined, lastPosition: number | undefined) => T,
      carried: Carried<T> | undefined,
    ): T => {
      const row = statements.getSession.get(sessionId);
      const last = row ? (statements.lastMessagePosition.get(sessionId)?.position ?? undefined) : undefined;
      const built = build(row && sessionFromTuple(row), last);
      updateSession(row && countedOf(row), toSessionRow(built.session));
      statements.insertMessage.run(toMessageRow(built.message));
      writeCarried(carried, built);
      return built;
    },
  );

  const deleteSession = db.transaction(
    (id: string, check: (current: SessionRecord | undefined) => SessionRecord, carried?: Carried<SessionRecord>) => {
      const row = statements.getSession.get(id);
      const deleted = check(row && sessionFromTuple(row));
      if (row && statements.deleteSession.run(id).changes > 0) counts.note(countedOf(row), -1);
      writeCarried(carried, deleted);
    },
  );

  /** The count marks moved here, on the store's connection (few sessions to pass, or an in-memory database). */
  const markStatements = prepareMarks(db, markSql());
  const moveMarksHere = db.transaction((now: number, cutoff: number, limit: number) => runMarkMove(markStatements, now, cutoff, limit, WHOLE_INSTANT)).immediate;
  /** How many sessions the marks would pass, counted up to `upTo`. */
  function passable(now: number, cutoff: number, upTo: number): number {
    const m = statements.countMarks.get()!;
    const ahead = (fromAt: number, fromRow: number, toAt: number, limit: number) => (toAt < fromAt ? 0 : statements.passable.get({ fromAt, fromRow, toAt, limit })!);
    const cut = ahead(m.cut_mark, m.cut_row, cutoff, upTo);
    return cut + ahead(m.now_mark, m.now_row, now, upTo - cut);
  }

  const expiringAfter = (after: number) => statements.countExpiringAfter.get({ after, key: '' })?.n ?? 0;
  const agentExpiringAfter = (after: number, key: string) => statements.countAgentExpiringAfter.get({ after, key })?.n ?? 0;
  /** The counter of a query's sessions: one per agent it is limited to; none for agents and a user at once. */
  function counterFor(query: SessionQuery): ((after: number) => number) | undefined {
    const { userId } = query;
    const agents = agentsOfQuery(query);
    if (agents !== undefined && userId !== undefined) return undefined;
    if (agents !== undefined) return (after) => agents.reduce((sum, agent) => sum + agentExpiringAfter(after, agent), 0);
    if (userId !== undefined) return (after) => statements.countUserExpiringAfter.get({ after, key: userId })?.n ?? 0;
    return expiringAfter;
  }
  function totalOfStatus(query: SessionQuery, countAfter: (after: number) => number): number {
    const { status, now, purgeCutoff } = query;
    if (status === 'active') return countAfter(now);
    if (status === 'all') return countAfter(purgeCutoff);
    return countAfter(purgeCutoff) - countAfter(now);
  }

  // One prepared statement per combination of filters, made on first use.
  const listStatements = new Map<string, { page: Database.Statement; count: Database.Statement }>();
  function listStatementsFor(query: SessionQuery) {
    const key = `${query.agentId !== undefined}/${query.agentIds !== undefined}/${query.userId !== undefined}/${query.after !== undefined}/${query.status}`;
    let prepared = listStatements.get(key);
    if (!prepared) {
      const sql = listSessionsSql(query);
      prepared = { page: db.prepare(sql.page).raw(true), count: db.prepare(sql.count) };
      listStatements.set(key, prepared);
    }
    return prepared;
  }

  // Checkpoints run on a worker thread, never inside a group commit's COMMIT (an in-memory database has no WAL).
  const checkpoints = path === ':memory:' ? undefined : checkpointer(db, path, options.walCapBytes);
  // The purge runs on a worker thread with its own connection (purge-worker.ts); an in-memory database runs it here.
  const purger = path === ':memory:' ? undefined : purgeWorker(path, options.synchronous ?? 'normal');
  const purgeStatements = purger ? undefined : preparePurge(db, purgeSql());
  const assertFileInPlace = fileInPlace(path);
  const commitWrite = groupCommit(db, {
    lockWaitMs: options.lockWaitMs,
    beforeCommit: () => {
      assertFileInPlace(); // one stat a commit, not a write
      counts.flush();
      flushEvents();
    },
    afterAbort: () => {
      counts.discard();
      log.discard();
      idempotency.discard();
      recorded = [];
      unrecorded = false;
    },
    afterCommit: () => {
      commits.tookOwnCommit();
      idempotency.committed();
      checkpoints?.afterCommit();
      for (const event of recorded) committed.push(event);
      recorded = [];
      if (unrecorded) committedUnrecorded = true;
      unrecorded = false;
    },
    holdWhile: checkpoints && (() => checkpoints.truncating()),
  });
  /** The purge worker's last batch left more to purge (the pass goes on). */
  let purgeLeft = false;
  /** The purge worker stopped (the pass is done), and checkpoints at their usual pace again. */
  async function stopPurger(): Promise<void> {
    purgeLeft = false;
    try {
      await purger?.stop();
    } finally {
      checkpoints?.purging(false);
    }
  }
  /** A write, then word to the listeners of the event log once it has committed events. */
  const write: RunWrite = async (work) => {
    try {
      return await commitWrite(() => {
        // A write that throws is rolled back to its savepoint: so are its notes.
        const mark = counts.mark();
        const eventsBefore = log.mark();
        const recordsBefore = idempotency.mark();
        try {
          return work();
        } catch (error) {
          counts.rollbackTo(mark);
          log.rollbackTo(eventsBefore);
          idempotency.rollbackTo(recordsBefore);
          throw error;
        }
      });
    } finally {
      if (eventsWritten) {
        eventsWritten = false;
        const events = committedUnrecorded ? [] : committed;
        committed = [];
        committedUnrecorded = false;
        for (const listener of eventListeners) listener(events.length > 0 ? events : undefined);
      }
    }
  };

  return withStorageFaults({
    purgesOffEventLoop: purger !== undefined,
    async insertAgent(agent, carried) {
      const row = { id: agent.id, name: agent.name, bio: agent.bio ?? null, settings: JSON.stringify(agent.settings), created_at: agent.createdAt };
      return write(() => {
        if (!insertUnless('SQLITE_CONSTRAINT_PRIMARYKEY', () => statements.insertAgent.run(row))) return false;
        writeCarried(carried, agent);
        return true;
      });
    },
    async getAgent(id) {
      return agentCache.get(id);
    },
    async listAgents() {
      return statements.listAgents.all().map(toAgent);
    },
    async deleteAgent(id, { force, now }, carried) {
      agentCache.forget(id);
      return write(() => deleteAgent(id, force, now, carried)).finally(() => agentCache.forget(id));
    },
    async insertSession(session, carried) {
      const row = toSessionRow(session);
      return write(() => {
        let rowid = 0;
        if (!insertUnless('SQLITE_CONSTRAINT_FOREIGNKEY', () => (rowid = Number(statements.insertSession.run(row).lastInsertRowid)))) return false;
        counts.note(countedSession(row, rowid), 1);
        writeCarried(carried, session);
        return true;
      });
    },
    async getSession(id) {
      const row = statements.getSession.get(id);
      return row && sessionFromTuple(row);
    },
    async modifySession(id, change, carried) {
      return write(() => modifySession(id, change, carried));
    },
    async deleteSession(id, check, carried) {
      return write(() => deleteSession(id, check, carried));
    },
    async appendMessage(sessionId, build, carried) {
      // db.transaction() does not keep the generic: the value is what `build` returned.
      return write(() => appendMessage(sessionId, build, carried as Carried<unknown>) as ReturnType<typeof build>);
    },
    async listMessages(query) {
      return messagePage(query, statements.messagesForward, statements.messagesBackward, fromTuple);
    },
    async listMessageViews(query) {
      return messagePage(query, statements.viewsForward, statements.viewsBackward, ([position, json]) => ({ position, json }));
    },
    async listSessions(query) {
      const { page, count } = listStatementsFor(query);
      const { now, purgeCutoff, status, limit, offset, after, count: counted } = query;
      // Not `...query`: a spread of an object holding doubles is slow in V8 (see sessionWith in store.ts).
      const parameters = {
        now,
        purgeCutoff,
        status,
        limit,
        offset,
        agentId: query.agentId ?? null,
        agentIds: query.agentIds === undefined ? null : JSON.stringify(query.agentIds),
        userId: query.userId ?? null,
        afterCreatedAt: after?.createdAt ?? null,
        afterId: after?.id ?? null,
      };
      const rows = page.all(parameters) as SessionTuple[];
      const hasMore = rows.length > query.limit;
      if (hasMore) rows.pop();
      let total: number | undefined;
      if (counted !== false) {
        // Both filters at once: the user's sessions of that agent, counted in an index range.
        const counter = counterFor(query);
        total = counter ? totalOfStatus(query, counter) : (count.get(parameters) as { n: number }).n;
      }
      return { sessions: rows.map(sessionFromTuple), total, hasMore };
    },
    async countSessions({ now, purgeCutoff }) {
      const active = expiringAfter(now);
      // warns_at < expires_at always, so "warns_at <= now < expires_at" is a difference of two counts.
      const warningAfterNow = statements.countWarningAfter.get({ after: now, key: '' })?.n ?? 0;
      return { total: expiringAfter(purgeCutoff), active, expiringSoon: active - warningAfterNow };
    },
    async markExpired(now, limit) {
      return statements.markExpired.run({ now, limit }).changes;
    },
    async moveCountMarks(now, cutoff, limit) {
      // Outside the group commit, between two of its batches: no notes are pending, so the
      // sessions a mark passes are all in the table. Another connection holding the write
      // lock: the marks move on the next pass (the counts stay exact meanwhile).
      await checkpoints?.truncating();
      try {
        if (!purger || passable(now, cutoff, MARKS_ON_LOOP) < MARKS_ON_LOOP) return moveMarksHere(now, cutoff, limit);
        // Many to pass: on the purge worker, off the event loop (the thread goes with the pass when nothing is left to purge).
        checkpoints?.purging(true);
        const moved = await purger.moveMarks(now, cutoff, limit);
        checkpoints?.afterCommit(purger.walBytes());
        if (!moved.more && statements.anyPurgeable.get(cutoff) === undefined) await stopPurger();
        return moved;
      } catch (error) {
        if (error instanceof Database.SqliteError && error.code.startsWith('SQLITE_BUSY')) return { passed: 0, more: false };
        throw error;
      }
    },
    async purgeExpired(cutoff, limit) {
      if (!purger) return write(() => runPurgeBatch(purgeStatements!, cutoff, limit, PURGE_MESSAGES_PER_SESSION));
      // Between batches of a pass, the worker's last answer says whether more are left: no read
      // here (on the event loop, it could wait on the checkpointer's locks).
      if (!purgeLeft && statements.anyPurgeable.get(cutoff) === undefined) {
        // A thread left by a pass that ended early (a failure, the sweeper stopped) goes now.
        await stopPurger();
        return { purged: 0, more: false };
      }
      // The worker's commits grow the WAL too: they wait for it to be emptied, and may ask for it.
      await checkpoints?.truncating();
      checkpoints?.purging(true);
      const purged = await purger.purge(cutoff, limit);
      purgeLeft = purged.more;
      checkpoints?.afterCommit(purger.walBytes());
      // Nothing more to purge for now: the thread (and its memory) goes until the next pass needs it.
      if (!purged.more) await stopPurger();
      return purged;
    },
    async getIdempotencyRecord(scope, key, now) {
      return idempotency.get(scope, key, now);
    },
    async settleIdempotencyRecord(record, now) {
      return write(() => idempotency.settle(record, now));
    },
    async purgeIdempotencyRecords(now, limit) {
      return idempotency.purge(now, limit);
    },
    async insertApiKey(key) {
      const row: ApiKeyRow = {
        id: key.id,
        name: key.name,
        key_hash: key.keyHash,
        admin: key.admin ? 1 : 0,
        agent_ids: JSON.stringify(key.agentIds),
        created_at: key.createdAt,
        revoked_at: key.revokedAt ?? null,
      };
      return write(() => {
        keys.clear();
        // A live key of that name (the unique index), or a key with that id already.
        return insertUnless(['SQLITE_CONSTRAINT_UNIQUE', 'SQLITE_CONSTRAINT_PRIMARYKEY'], () => statements.insertApiKey.run(row));
      });
    },
    async findApiKey(keyHash) {
      return keys.findApiKey(keyHash, () => {
        const row = statements.findApiKey.get(keyHash);
        return row && toApiKey(row);
      });
    },
    async listApiKeys() {
      return statements.listApiKeys.all().map(toApiKey);
    },
    async revokeApiKey(idOrName, now) {
      return write(() => {
        const row = statements.liveApiKey.get({ idOrName });
        if (!row) return undefined;
        keys.clear();
        statements.revokeApiKey.run({ id: row.id, now });
        return toApiKey({ ...row, revoked_at: now });
      });
    },
    hasApiKeys() {
      return keys.hasApiKeys(() => statements.hasApiKeys.get() === 1);
    },
    async listEvents(query) {
      const after = query.after === undefined ? 0 : Number(query.after);
      return log.read(query, query.sessionId === undefined ? after : Math.max(after, (statements.firstEventIdOf.get(query.sessionId) ?? 1) - 1));
    },
    async lastEventId() {
      const id = log.lastId();
      return id === undefined ? undefined : String(id);
    },
    onEventsWritten(listener) {
      eventListeners.add(listener);
      return () => eventListeners.delete(listener);
    },
    async announceDue(now, limit, announce) {
      // Most ticks find nothing due: they take no write lock then.
      if (statements.anyDue.get(now) === undefined) return 0;
      return write(() => announceDue(now, limit, announce));
    },
    async purgeEvents(cutoff, limit) {
      return write(() => log.trim(cutoff, limit));
    },
    async insertWebhook(webhook, carried) {
      const row: WebhookRow = {
        id: webhook.id,
        url: webhook.url,
        secret: webhook.secret,
        types: webhook.types ? JSON.stringify(webhook.types) : null,
        agent_id: webhook.agentId ?? null,
        agent_ids: webhook.agentIds ? JSON.stringify(webhook.agentIds) : null,
        created_at: webhook.createdAt,
        cursor: Number(webhook.cursor),
        attempts: webhook.attempts,
        next_attempt_at: webhook.nextAttemptAt,
        failing_since: webhook.failingSince ?? null,
        disabled_at: webhook.disabledAt ?? null,
      };
      return write(() => {
        statements.insertWebhook.run(row);
        writeCarried(carried, webhook);
      });
    },
    async listWebhooks() {
      return statements.listWebhooks.all().map(toWebhook);
    },
    async deleteWebhook(id) {
      return write(() => statements.deleteWebhook.run(id).changes > 0);
    },
    async recordDelivery(delivery, state) {
      return write(() => {
        const moved = statements.updateWebhookState.run({
          id: state.id,
          cursor: Number(state.cursor),
          attempts: state.attempts,
          next_attempt_at: state.nextAttemptAt,
          failing_since: state.failingSince ?? null,
          disabled_at: state.disabledAt ?? null,
        });
        if (moved.changes === 0) return false; // deleted meanwhile
        statements.insertDelivery.run({
          webhook_id: delivery.webhookId,
          event_id: Number(delivery.eventId),
          attempt: delivery.attempt,
          attempted_at: delivery.attemptedAt,
          status_code: delivery.statusCode ?? null,
          error: delivery.error ?? null,
          next_retry_at: delivery.nextRetryAt ?? null,
        });
        statements.trimDeliveries.run(delivery.webhookId, delivery.webhookId);
        return true;
      });
    },
    async listDeliveries(webhookId, limit) {
      return statements.listDeliveries.all(webhookId, limit).map(toDelivery);
    },
    async ping() {
      statements.ping.get();
    },
    async probeWrite() {
      await write(() => statements.probeWrite.run(Date.now()));
    },
    async freeDiskBytes() {
      if (path === ':memory:') return undefined;
      const { bavail, bsize } = statfsSync(dirname(path));
      return bavail * bsize;
    },
    async close() {
      if (!db.open) return;
      // Writes still queued commit first (or fail, if the storage does).
      await write(() => undefined).catch(() => undefined);
      await purger?.stop().catch(() => undefined);
      await checkpoints?.stop();
      commits.close();
      db.close();
    },
  });
}
