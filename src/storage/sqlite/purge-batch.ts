// One purge batch, in SQL alone: the sessions past the cutoff are copied into a temporary
// table, their messages deleted (bounded), the count totals lowered by grouped updates
// (for the sessions still above a count mark: the cutoff's mark is moved after the purge,
// so usually all of them, in the purge's own transaction), and the sessions deleted. SQL
// alone, so that the same batch runs on the store's own connection (an in-memory
// database) or on the purge worker's (purge-worker.ts), which runs the two functions below
// from their source text: they use nothing but their arguments.
import type Database from 'better-sqlite3';
import { aboveMarkSql, COUNTERS } from './expiry-counts.js';

/** A purge batch of N sessions deletes at most N times this many of their messages. */
export const PURGE_MESSAGES_PER_SESSION = 10;

export interface PurgeSql {
  setUp: string;
  clear: string;
  select: string;
  messages: string;
  /** Per counter: lower its totals by the batch's sessions above the marks (an upsert), then drop the emptied rows. */
  counts: string[];
  sessions: string;
}

/** A purge batch's sessions, found in the expiry index, and what they count for in the totals. */
export const PURGEABLE_SQL = 'SELECT rowid, id, agent_id, user_id, expires_at, warns_at FROM sessions WHERE expires_at <= @cutoff AND due_at IS NULL LIMIT @limit';

/** The SQL of a purge batch (a session counts above a mark when its column is after it, as in expiry-counts.ts). */
export function purgeSql(): PurgeSql {
  const counts = COUNTERS.flatMap((counter) => {
    const { kind, column } = counter;
    const key = 'key' in counter ? counter.key : "''";
    // On the lower mark's instant or after it: above it, or on it with a greater rowid.
    const aboveAMark = `FROM temp.purge_batch, session_count_marks AS m WHERE ${column} >= min(m.now_mark, m.cut_mark)`;
    // An upsert keyed by (kind, key): one primary-key lookup a key of the batch (an UPDATE ... FROM
    // scanned every row of the kind, 10^5 users' at 10^6 sessions).
    return [
      `INSERT INTO session_counts (kind, key, above_now, above_cut)
         SELECT '${kind}', ${key} AS k, -sum(${aboveMarkSql(column, 'rid', 'now_mark')}) AS n_now, -sum(${aboveMarkSql(column, 'rid', 'cut_mark')}) AS n_cut ${aboveAMark}
         GROUP BY k HAVING n_now <> 0 OR n_cut <> 0
         ON CONFLICT (kind, key) DO UPDATE SET above_now = above_now + excluded.above_now, above_cut = above_cut + excluded.above_cut`,
      `DELETE FROM session_counts WHERE kind = '${kind}' AND above_now = 0 AND above_cut = 0 AND key IN (SELECT ${key} ${aboveAMark})`,
    ];
  });
  return {
    setUp: `CREATE TEMP TABLE IF NOT EXISTS purge_batch (rid INTEGER PRIMARY KEY, id TEXT, agent_id TEXT, user_id TEXT, expires_at INTEGER, warns_at INTEGER)`,
    clear: 'DELETE FROM temp.purge_batch',
    select: `INSERT INTO temp.purge_batch (rid, id, agent_id, user_id, expires_at, warns_at) ${PURGEABLE_SQL}`,
    // Messages first and bounded: deleting a session cascades to all of its messages in
    // one statement, which for a long conversation would hold the write lock for long.
    messages: `DELETE FROM messages WHERE (session_id, position) IN
      (SELECT session_id, position FROM messages WHERE session_id IN (SELECT id FROM temp.purge_batch) LIMIT @limit)`,
    counts,
    sessions: 'DELETE FROM sessions WHERE rowid IN (SELECT rid FROM temp.purge_batch)',
  };
}

export interface PurgeStatements {
  clear: Database.Statement;
  select: Database.Statement;
  messages: Database.Statement;
  counts: Database.Statement[];
  sessions: Database.Statement;
}

/** Prepares a batch's statements on a connection. Self-contained (run from its source by the worker). */
export function preparePurge(db: Database.Database, sql: PurgeSql): PurgeStatements {
  db.exec(sql.setUp);
  return {
    clear: db.prepare(sql.clear),
    select: db.prepare(sql.select),
    messages: db.prepare(sql.messages),
    counts: sql.counts.map((text) => db.prepare(text)),
    sessions: db.prepare(sql.sessions),
  };
}

/**
 * One batch, inside the caller's transaction: up to `limit` sessions expired by `cutoff`.
 * When their messages exceed the bound, only messages go in this batch (purged 0, more).
 * Self-contained (run from its source by the worker).
 */
export function runPurgeBatch(statements: PurgeStatements, cutoff: number, limit: number, messagesPerSession: number): { purged: number; more: boolean } {
  statements.clear.run();
  const found = statements.select.run({ cutoff, limit }).changes;
  if (found === 0) return { purged: 0, more: false };
  const messageLimit = limit * messagesPerSession;
  if (statements.messages.run({ limit: messageLimit }).changes === messageLimit) return { purged: 0, more: true };
  for (const statement of statements.counts) statement.run();
  const purged = statements.sessions.run().changes;
  statements.clear.run();
  return { purged, more: found === limit };
}
