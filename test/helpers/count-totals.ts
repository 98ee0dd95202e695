// The SQLite store's running count totals (migration 16, expiry-counts.ts) recounted from
// the stored rows: every total equals a count of the sessions above its mark, and no row
// holds two zeros.
import Database from 'better-sqlite3';
import { expect } from 'vitest';
import { aboveMarkSql, COUNTERS } from '../../src/storage/sqlite/expiry-counts.js';

export function expectCountTotalsExact(path: string): void {
  const db = new Database(path, { readonly: true });
  try {
    for (const counter of COUNTERS) {
      const key = 'key' in counter ? counter.key : "''";
      const recount = db
        .prepare(
          `SELECT ${key} AS key, sum(${aboveMarkSql(counter.column, 'sessions.rowid', 'now_mark')}) AS aboveNow, sum(${aboveMarkSql(counter.column, 'sessions.rowid', 'cut_mark')}) AS aboveCut
             FROM sessions, session_count_marks AS m GROUP BY 1 HAVING aboveNow > 0 OR aboveCut > 0 ORDER BY 1`,
        )
        .all();
      const kept = db.prepare('SELECT key, above_now AS aboveNow, above_cut AS aboveCut FROM session_counts WHERE kind = ? ORDER BY key').all(counter.kind);
      expect(kept, counter.kind).toEqual(recount);
    }
  } finally {
    db.close();
  }
}
