// The SQL of the store's reads that the tests also check (their query plans, their
// parameters): the listing and its count, the message pages, the due announcements.
import type { SessionQuery } from '../store.js';

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

/** A page of one session's messages (their stored views) is a range of the (session_id, position) primary key. */
const MESSAGE_RANGE = 'FROM messages WHERE session_id = @sessionId AND position < @before AND position > @after';
export const MESSAGE_VIEW_PAGE_SQL = {
  backward: `SELECT position, view ${MESSAGE_RANGE} ORDER BY position DESC LIMIT @limit`,
  forward: `SELECT position, view ${MESSAGE_RANGE} ORDER BY position ASC LIMIT @limit`,
};

/**
 * What a session row has announced as of now: its `announced` column is what it had at
 * its last write; a warning the event pump announced since moved its entry in
 * due_announcements from warns_at to expires_at without writing the row (migration 18).
 */
export const ANNOUNCED_NOW_SQL = `CASE WHEN sessions.announced = 'nothing' AND sessions.warns_at < sessions.expires_at
  AND NOT EXISTS (SELECT 1 FROM due_announcements AS due WHERE due.due_at = sessions.warns_at AND due.session_rowid = sessions.rowid)
  THEN 'warning' ELSE sessions.announced END`;

/** A listed session's columns, read as a tuple (raw rows cost half as much as objects). */
export const SESSION_COLUMNS_BUT_ANNOUNCED = `sessions.id, agent_id, user_id, created_at, last_activity, anchor_at, expires_at, warns_at, timeout_minutes,
  auto_renew, max_duration_minutes, warning_threshold_minutes, renewal_count, status, metadata`;
// A warning not yet due (@now) cannot have been announced: no lookup of its entry then.
const SESSION_COLUMNS = `${SESSION_COLUMNS_BUT_ANNOUNCED}, ${ANNOUNCED_NOW_SQL.replace('CASE WHEN', 'CASE WHEN sessions.warns_at <= @now AND')}`;

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

