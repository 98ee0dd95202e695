// The SQL the PostgreSQL store sends, built from its columns (rows.ts) and a query's filters.
import { agentsOfQuery, type EventQuery, type SessionQuery, type SessionRecord } from '../store.js';
import { SESSION_COLUMNS, sessionValues } from './rows.js';
import { type BucketKind, countAfterSql } from './session-buckets.js';

/** Fails (AGENT_CHANGED) unless the kept agent is still the stored one: deleted and created again since, it is another. */
export const AGENT_CHECK = 'SELECT 1 / (SELECT count(*)::int FROM agents WHERE id = $1 AND created_at = $2)';
export const SESSION_INSERT = `INSERT INTO sessions (${SESSION_COLUMNS.join(', ')}) VALUES (${SESSION_COLUMNS.map((_, i) => `$${i + 1}`).join(', ')})`;
/** A session's agent, user and creation never change: the update sets the rest. */
const UPDATED_COLUMNS = SESSION_COLUMNS.filter((column) => !['id', 'agent_id', 'user_id', 'created_at'].includes(column));
export const SESSION_UPDATE = `UPDATE sessions SET ${UPDATED_COLUMNS.map((column, i) => `${column} = $${i + 2}`).join(', ')} WHERE id = $1`;
export function sessionUpdateValues(session: SessionRecord): unknown[] {
  const values = sessionValues(session);
  return [session.id, ...UPDATED_COLUMNS.map((column) => values[SESSION_COLUMNS.indexOf(column)])];
}
export const MESSAGE_INSERT =
  'INSERT INTO messages (session_id, position, id, created_at, author_id, is_agent, content, attachments, metadata, view) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)';

const STATUS_TERMS: Record<SessionQuery['status'], string> = {
  active: 'expires_at > $now',
  expired: 'expires_at <= $now AND expires_at > $purgeCutoff',
  all: 'expires_at > $purgeCutoff',
};

/** Numbers named parameters ($name) in order of first use. */
function named(sql: string, values: Record<string, unknown>): { text: string; values: unknown[] } {
  const order: string[] = [];
  const text = sql.replace(/\$([a-zA-Z]+)/g, (_, name: string) => {
    if (!(name in values)) throw new Error(`no value for $${name}`);
    let index = order.indexOf(name);
    if (index < 0) index = order.push(name) - 1;
    return `$${index + 1}`;
  });
  return { text, values: order.map((name) => values[name]) };
}

export function listSessionsSql(query: SessionQuery): { page: { text: string; values: unknown[] }; count: { text: string; values: unknown[] } } {
  const filters = [
    query.agentId !== undefined ? 'agent_id = $agentId' : undefined,
    query.agentIds !== undefined ? 'agent_id = ANY($agentIds::text[])' : undefined,
    query.userId !== undefined ? 'user_id = $userId' : undefined,
    STATUS_TERMS[query.status],
  ].filter(Boolean);
  const values: Record<string, unknown> = { now: query.now, purgeCutoff: query.purgeCutoff };
  if (query.agentId !== undefined) values.agentId = query.agentId;
  if (query.agentIds !== undefined) values.agentIds = [...query.agentIds];
  if (query.userId !== undefined) values.userId = query.userId;
  const where = filters.join(' AND ');
  const count = named(`SELECT count(*)::bigint AS n FROM sessions WHERE ${where}`, values);
  const keyset = query.after !== undefined ? ' AND (created_at, id) < ($afterCreatedAt, $afterId)' : '';
  const pageValues = { ...values, afterCreatedAt: query.after?.createdAt, afterId: query.after?.id, limit: query.limit + 1, offset: query.offset };
  // One row more than the page: it tells whether there are more. The rows come as one JSON
  // array of tuples (SESSION_COLUMNS), parsed at once: 21 rows as rows cost this process
  // about 80 µs of CPU in the driver, as one JSON text about 35; PostgreSQL's CPU is about
  // the same either way (README, PostgreSQL).
  const page = named(
    `SELECT coalesce(json_agg(json_build_array(${SESSION_COLUMNS.join(', ')}) ORDER BY created_at DESC, id DESC), '[]')::text AS page
       FROM (SELECT * FROM sessions WHERE ${where}${keyset} ORDER BY created_at DESC, id DESC LIMIT $limit OFFSET $offset) AS page`,
    pageValues,
  );
  return { page, count };
}

/**
 * Sent before a listing's page in its message: without sorts, the planner reads the page in
 * order from the index of its filter (`created_at, id` after the agent, the user or nothing).
 * With statistics older than the sessions (an agent's 20,000 sessions taken for 28 until
 * autovacuum's next ANALYZE) it read every session of the agent through another index and
 * sorted them: 5.5 ms a page against 0.1. `SET LOCAL` lasts to the end of the message (one
 * transaction).
 */
export const IN_INDEX_ORDER = ['SET LOCAL enable_sort = off', 'SET LOCAL enable_incremental_sort = off'];

/** countSessions: every session after the purge cutoff ($1), those active at $2, and those whose warning is after $2. */
export const COUNT_SESSIONS = {
  name: 'sessions_api_count_sessions',
  text: `SELECT ${countAfterSql('expiry', '$1', '$3')} AS total, ${countAfterSql('expiry', '$2', '$3')} AS active, ${countAfterSql('warning', '$2', '$3')} AS warning`,
};

/** A listing's total from the buckets (session-buckets.ts); none when it filters by agent and by user at once (counted in the listing's own index range). */
export function bucketTotal(query: SessionQuery): { text: string; values: unknown[] } | undefined {
  const agents = agentsOfQuery(query);
  if (query.userId !== undefined && agents !== undefined) return undefined;
  const [kind, keys]: [BucketKind, string[]] =
    agents !== undefined ? ['agent', [...agents]]
    : query.userId !== undefined ? ['user', [query.userId]]
    : ['expiry', ['']];
  if (query.status === 'active') return { text: `SELECT ${countAfterSql(kind, '$1', '$2')} AS n`, values: [query.now, keys] };
  if (query.status === 'all') return { text: `SELECT ${countAfterSql(kind, '$1', '$2')} AS n`, values: [query.purgeCutoff, keys] };
  return { text: `SELECT ${countAfterSql(kind, '$1', '$3')} - ${countAfterSql(kind, '$2', '$3')} AS n`, values: [query.purgeCutoff, query.now, keys] };
}

/** The largest id an event can have (PostgreSQL's bigint). */
export const MAX_EVENT_ID = 9223372036854775807n;

export function listEventsSql(query: EventQuery): { text: string; values: unknown[] } {
  // As text, cast by PostgreSQL: a JavaScript number loses digits past 2^53.
  const values: Record<string, unknown> = { after: query.after ?? '0', limit: query.limit };
  const filters = ['id > $after::bigint'];
  if (query.sessionId !== undefined) (filters.push('session_id = $sessionId'), (values.sessionId = query.sessionId));
  if (query.agentId !== undefined) (filters.push('agent_id = $agentId'), (values.agentId = query.agentId));
  if (query.agentIds !== undefined) (filters.push('agent_id = ANY($agentIds::text[])'), (values.agentIds = [...query.agentIds]));
  if (query.userId !== undefined) (filters.push('user_id = $userId'), (values.userId = query.userId));
  if (query.types !== undefined) (filters.push('type = ANY($types::text[])'), (values.types = [...query.types]));
  const page = `SELECT * FROM events WHERE ${filters.join(' AND ')} ORDER BY id LIMIT $limit`;
  if (query.maxChars === undefined) return named(page, values);
  values.maxChars = query.maxChars;
  // Up to the event whose data reaches maxChars: the events before it hold less.
  return named(
    `SELECT id, type, occurred_at, agent_id, session_id, user_id, data, in_page FROM (
       SELECT *, sum(octet_length(data::text)) OVER (ORDER BY id) - octet_length(data::text) AS before, count(*) OVER () AS in_page FROM (${page}) page
     ) counted WHERE before < $maxChars ORDER BY id`,
    values,
  );
}
