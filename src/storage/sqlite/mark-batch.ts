// One move of the count marks (expiry-counts.ts), in SQL alone: the cutoff's mark first,
// then the now mark, together by at most `limit` sessions, in the caller's transaction.
// The sessions a mark passes are copied into a temporary table and each counter's totals
// lowered by one grouped upsert, so that a batch of 1,000 sessions is a handful of
// statements. SQL alone, so that the same batch runs on the store's own connection (few
// sessions, or an in-memory database) or on the purge worker's (purge-worker.ts), which
// runs the two functions below from their source text: they use nothing but their
// arguments. Measured at 10^5 sessions, moving the marks 100 sessions a transaction on
// the event loop took about as long as the whole expiring pass's other work: each batch
// dirties the totals of ~100 agents on scattered pages.
import type Database from 'better-sqlite3';
import { COUNTERS, WARNINGS_PASSING_SQL, WHOLE_INSTANT, type Mark } from './expiry-counts.js';

/** The sessions between (@fromAt, @fromRow) excluded and (@toAt, @toRow) included, in the expiry index's order. */
const BETWEEN_MARKS = `expires_at >= @fromAt AND expires_at <= @toAt AND (expires_at > @fromAt OR rowid > @fromRow) AND (expires_at < @toAt OR rowid <= @toRow)`;

/** The first @limit sessions after a mark, at most: fewer than @limit means the mark can go to @to at once. */
export const PASSABLE_SQL = `SELECT count(*) FROM (SELECT 1 FROM sessions WHERE ${BETWEEN_MARKS.replace('@toRow', String(WHOLE_INSTANT))} LIMIT @limit)`;
/** The @skip-th session after a mark on its own instant... */
export const NTH_AT_SQL = 'SELECT expires_at AS at, rowid AS row FROM sessions WHERE expires_at = @at AND rowid > @row ORDER BY rowid LIMIT 1 OFFSET @skip';
/** ...or after its instant, up to @to. */
export const NTH_AFTER_SQL = 'SELECT expires_at AS at, rowid AS row FROM sessions WHERE expires_at > @from AND expires_at <= @to ORDER BY expires_at, rowid LIMIT 1 OFFSET @skip';
/** The sessions a batch passes (their keys), read once from the table. */
export const MARK_BATCH_SQL = `INSERT INTO temp.mark_batch (agent_id, user_id) SELECT agent_id, user_id FROM sessions WHERE ${BETWEEN_MARKS}`;

export interface MarkSql {
  setUp: string;
  clear: string;
  marks: string;
  onInstant: string;
  nthAt: string;
  nthAfter: string;
  batch: string;
  warnings: string;
  /** Per mark: lower each counter's totals by the batch, drop the emptied rows, set the mark. */
  lower: Record<Mark, string[]>;
  setMark: Record<Mark, string>;
}

export function markSql(): MarkSql {
  const lower = (mark: Mark) => {
    // The pair of deltas for (above_now, above_cut), from a count n.
    const deltas = (n: string) => (mark === 'now_mark' ? `-(${n}), 0` : `0, -(${n})`);
    const upsert = `ON CONFLICT (kind, key) DO UPDATE SET above_now = above_now + excluded.above_now, above_cut = above_cut + excluded.above_cut`;
    return [
      ...COUNTERS.map((counter) => {
        if (!('key' in counter)) {
          const n = counter.kind === 'expiry' ? '@passed' : '@warnings';
          return `INSERT INTO session_counts (kind, key, above_now, above_cut) SELECT '${counter.kind}', '', ${deltas(n)} WHERE ${n} > 0 ${upsert}`;
        }
        return `INSERT INTO session_counts (kind, key, above_now, above_cut)
          SELECT '${counter.kind}', ${counter.key}, ${deltas('count(*)')} FROM temp.mark_batch WHERE true GROUP BY ${counter.key} ${upsert}`;
      }),
      `DELETE FROM session_counts WHERE kind IN ('expiry', 'warning') AND key = '' AND above_now = 0 AND above_cut = 0`,
      ...COUNTERS.filter((counter) => 'key' in counter).map(
        (counter) => `DELETE FROM session_counts WHERE kind = '${counter.kind}' AND key IN (SELECT ${counter.key} FROM temp.mark_batch) AND above_now = 0 AND above_cut = 0`,
      ),
    ];
  };
  return {
    setUp: 'CREATE TEMP TABLE IF NOT EXISTS mark_batch (agent_id TEXT, user_id TEXT)',
    clear: 'DELETE FROM temp.mark_batch',
    marks: 'SELECT now_mark, now_row, cut_mark, cut_row FROM session_count_marks',
    onInstant: PASSABLE_SQL,
    nthAt: NTH_AT_SQL,
    nthAfter: NTH_AFTER_SQL,
    batch: MARK_BATCH_SQL,
    warnings: WARNINGS_PASSING_SQL,
    lower: { now_mark: lower('now_mark'), cut_mark: lower('cut_mark') },
    setMark: { now_mark: 'UPDATE session_count_marks SET now_mark = @at, now_row = @row', cut_mark: 'UPDATE session_count_marks SET cut_mark = @at, cut_row = @row' },
  };
}

export interface MarkStatements {
  clear: Database.Statement;
  marks: Database.Statement;
  onInstant: Database.Statement;
  nthAt: Database.Statement;
  nthAfter: Database.Statement;
  batch: Database.Statement;
  warnings: Database.Statement;
  lower: Record<Mark, Database.Statement[]>;
  setMark: Record<Mark, Database.Statement>;
}

/** Prepares a move's statements on a connection. Self-contained (run from its source by the worker). */
export function prepareMarks(db: Database.Database, sql: MarkSql): MarkStatements {
  db.exec(sql.setUp);
  return {
    clear: db.prepare(sql.clear),
    marks: db.prepare(sql.marks),
    onInstant: db.prepare(sql.onInstant).pluck(),
    nthAt: db.prepare(sql.nthAt),
    nthAfter: db.prepare(sql.nthAfter),
    batch: db.prepare(sql.batch),
    warnings: db.prepare(sql.warnings).pluck(),
    lower: { now_mark: sql.lower.now_mark.map((text) => db.prepare(text)), cut_mark: sql.lower.cut_mark.map((text) => db.prepare(text)) },
    setMark: { now_mark: db.prepare(sql.setMark.now_mark), cut_mark: db.prepare(sql.setMark.cut_mark) },
  };
}

/**
 * Moves one mark toward `to` (past its whole instant when it gets there) by at most `max`
 * sessions. Self-contained (run from its source by the worker; a top-level function, as a
 * nested one would carry a TypeScript loader's name helper into the worker).
 */
export function advanceMark(statements: MarkStatements, mark: Mark, to: number, max: number, wholeInstant: number): { passed: number; more: boolean } {
  const marks = statements.marks.get() as Record<string, number>;
  const fromAt = marks[mark]!;
  const fromRow = marks[mark === 'now_mark' ? 'now_row' : 'cut_row']!;
  if (to < fromAt || (to === fromAt && fromRow === wholeInstant)) return { passed: 0, more: false };
  // Where the mark stops: on its max-th session, or at `to` past its whole instant.
  let stop = { at: to, row: wholeInstant };
  let full = false;
  const onInstant = fromRow === wholeInstant ? 0 : (statements.onInstant.get({ fromAt, fromRow, toAt: fromAt, limit: max }) as number);
  if (onInstant === max) {
    stop = statements.nthAt.get({ at: fromAt, row: fromRow, skip: max - 1 }) as { at: number; row: number };
    full = true;
  } else if (to > fromAt) {
    const nth = statements.nthAfter.get({ from: fromAt, to, skip: max - onInstant - 1 }) as { at: number; row: number } | undefined;
    if (nth) {
      stop = nth;
      full = true;
    }
  }
  const range = { fromAt, fromRow, toAt: stop.at, toRow: stop.row };
  statements.clear.run();
  const passed = statements.batch.run(range).changes;
  const warnings = statements.warnings.get(range) as number;
  for (const statement of statements.lower[mark]) statement.run({ passed, warnings });
  statements.clear.run();
  statements.setMark[mark].run(stop);
  return { passed, more: full };
}

/**
 * Moves the cutoff's mark toward `cutoff`, then the now mark toward `now`, by at most
 * `limit` sessions in all, inside the caller's transaction, with no count notes pending
 * on this connection. `more`: call again. The sweeper moves the marks after its purge,
 * which lowered the totals of the sessions it deleted: the cutoff's mark then has none to
 * pass. Self-contained (run from its source by the worker, beside advanceMark).
 */
export function runMarkMove(statements: MarkStatements, now: number, cutoff: number, limit: number, wholeInstant: number): { passed: number; more: boolean } {
  const cut = advanceMark(statements, 'cut_mark', cutoff, limit, wholeInstant);
  if (cut.more || cut.passed >= limit) return { passed: cut.passed, more: true };
  const moved = advanceMark(statements, 'now_mark', now, limit - cut.passed, wholeInstant);
  return { passed: cut.passed + moved.passed, more: moved.more };
}
