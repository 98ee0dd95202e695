// One purge batch, in SQL alone: the sessions past the cutoff are copied into a temporary
// table, their messages deleted (bounded), the count histograms lowered by grouped
// updates, and the sessions deleted. SQL alone, so that the same batch runs on the store's
// own connection (an in-memory database) or on the purge worker's (purge-worker.ts),
// which runs the two functions below from their source text: they use nothing but their
// arguments.
import type Database from 'better-sqlite3';
import { HISTOGRAMS } from './expiry-counts.js';

/** A purge batch of N sessions deletes at most N times this many of their messages. */
export const PURGE_MESSAGES_PER_SESSION = 10;

export interface PurgeSql {
  setUp: string;
  clear: string;
  select: string;
  messages: string;
  /** Per histogram: lower its buckets by the batch's sessions, then drop the emptied ones. */
  histograms: string[];
  sessions: string;
}

/** A purge batch's sessions, found in the expiry index, and what they count for in the histograms. */
export const PURGEABLE_SQL = 'SELECT rowid, id, agent_id, user_id, expires_at, warns_at FROM sessions WHERE expires_at <= @cutoff LIMIT @limit';

/** The SQL of a purge batch (bucket arithmetic as expiry-counts.ts: SQLite's integer division). */
export function purgeSql(): PurgeSql {
  const histograms = HISTOGRAMS.flatMap((histogram) => {
    const bucket = histogram.unit === 'minute' ? `${histogram.column} / 60000` : `${histogram.column} / 60000 / 60`;
    const key = 'key' in histogram ? histogram.key : undefined;
    const keyColumns = key ? `${key}, ` : '';
    const keyTerm = key ? `${histogram.table}.${key} = d.${key} AND ` : '';
    return [
      `UPDATE ${histogram.table} SET sessions = sessions - d.n
         FROM (SELECT ${keyColumns}${bucket} AS b, count(*) AS n FROM temp.purge_batch GROUP BY ${keyColumns}b) AS d
         WHERE ${keyTerm}${histogram.table}.${histogram.unit} = d.b`,
      `DELETE FROM ${histogram.table} WHERE sessions = 0 AND (${keyColumns}${histogram.unit}) IN (SELECT ${keyColumns}${bucket} FROM temp.purge_batch)`,
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
    histograms,
    sessions: 'DELETE FROM sessions WHERE rowid IN (SELECT rid FROM temp.purge_batch)',
  };
}

export interface PurgeStatements {
  clear: Database.Statement;
  select: Database.Statement;
  messages: Database.Statement;
  histograms: Database.Statement[];
  sessions: Database.Statement;
}

/** Prepares a batch's statements on a connection. Self-contained (run from its source by the worker). */
export function preparePurge(db: Database.Database, sql: PurgeSql): PurgeStatements {
  db.exec(sql.setUp);
  return {
    clear: db.prepare(sql.clear),
    select: db.prepare(sql.select),
    messages: db.prepare(sql.messages),
    histograms: sql.histograms.map((text) => db.prepare(text)),
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
  for (const statement of statements.histograms) statement.run();
  const purged = statements.sessions.run().changes;
  statements.clear.run();
  return { purged, more: found === limit };
}
