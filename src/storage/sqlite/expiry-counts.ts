// The running totals that make counts cheap (migration 16). Per counter (all sessions,
// their warnings, per agent, per user), session_counts holds how many sessions lie
// above each of two marks (session_count_marks): one the sweeper keeps near now, one
// near the purge cutoff. A count at an instant starts from the nearest mark and corrects
// by the sessions between the mark and the instant, read from the expiry (warning)
// index: a few rows once the sweeper has run, however many sessions and however long
// the horizon. Every write notes what it changes; the group commit applies the notes of
// its whole batch once, in its transaction, against the marks as that transaction sees
// them (so two connections on one file agree). A write rolled back to its savepoint
// takes its notes back with it.
//
// A mark is a place in the expiry index's own order, (instant, rowid) (migration 19): a
// session is above it when its column is after the instant, or on the instant with a
// greater rowid. So a mark moves a bounded batch at a time even through an instant that
// a million sessions share; a mark that has passed its whole instant has the rowid
// WHOLE_INSTANT. (Rowids of sessions never change: the store never runs VACUUM.)
import type Database from 'better-sqlite3';

/** What a session contributes to the counters. */
export interface CountedSession {
  rowid: number;
  agent_id: string;
  user_id: string;
  expires_at: number;
  warns_at: number;
}

export type Mark = 'now_mark' | 'cut_mark';

/** What the counts keep of a session row, copied field by field (a spread of a row holding doubles is slow in V8). */
export function countedSession({ agent_id, user_id, expires_at, warns_at }: Omit<CountedSession, 'rowid'>, rowid: number): CountedSession {
  return { rowid, agent_id, user_id, expires_at, warns_at };
}
/** Each mark's rowid column. */
const ROW_OF = { now_mark: 'now_row', cut_mark: 'cut_row' } as const;
/** The rowid of a mark past every session of its instant (above any rowid a session has). */
export const WHOLE_INSTANT = Number.MAX_SAFE_INTEGER;

/** The counters: which column each counts, keyed by which (none: one row, key ''). */
export const COUNTERS = [
  { kind: 'expiry', column: 'expires_at' },
  { kind: 'warning', column: 'warns_at' },
  { kind: 'agent', column: 'expires_at', key: 'agent_id' },
  { kind: 'user', column: 'expires_at', key: 'user_id' },
] as const;
export type CounterKind = (typeof COUNTERS)[number]['kind'];

/** SQL: whether the session (its `column`, its rowid `rowid`) lies above `mark` of session_count_marks `m`. */
export function aboveMarkSql(column: string, rowid: string, mark: Mark): string {
  return `(${column} > m.${mark} OR (${column} = m.${mark} AND ${rowid} > m.${ROW_OF[mark]}))`;
}

const above = (at: number, rowid: number, markAt: number, markRow: number) => at > markAt || (at === markAt && rowid > markRow);

type Marks = Record<Mark | 'now_row' | 'cut_row', number>;
const MARKS_SQL = 'SELECT now_mark, now_row, cut_mark, cut_row FROM session_count_marks';
const ADD_SQL = `INSERT INTO session_counts (kind, key, above_now, above_cut) VALUES (@kind, @key, @now, @cut)
  ON CONFLICT (kind, key) DO UPDATE SET above_now = above_now + excluded.above_now, above_cut = above_cut + excluded.above_cut`;
const PRUNE_SQL = 'DELETE FROM session_counts WHERE kind = @kind AND key = @key AND above_now = 0 AND above_cut = 0';

/**
 * Sessions of `kind` (and key @key) whose column is after @after: the total above the
 * mark nearest @after, less the sessions between that mark and @after (or plus, when
 * @after is below the mark), less those on the mark's instant above its rowid. The
 * unary + keeps SQLite on the column's index.
 */
export function countAfterSql(kind: CounterKind): string {
  const counter = COUNTERS.find((c) => c.kind === kind)!;
  const column = counter.column;
  const ofKey = 'key' in counter ? `+${counter.key} = @key AND ` : '';
  return `SELECT coalesce((SELECT CASE WHEN m.near_now THEN above_now ELSE above_cut END FROM session_counts WHERE kind = '${kind}' AND key = @key), 0)
      - (SELECT count(*) FROM sessions WHERE ${ofKey}${column} > m.mark AND ${column} <= @after)
      + (SELECT count(*) FROM sessions WHERE ${ofKey}${column} > @after AND ${column} <= m.mark)
      - (SELECT count(*) FROM sessions WHERE ${ofKey}${column} = m.mark AND rowid > m.row) AS n
    FROM (SELECT near_now, CASE WHEN near_now THEN now_mark ELSE cut_mark END AS mark, CASE WHEN near_now THEN now_row ELSE cut_row END AS row
          FROM (SELECT abs(@after - now_mark) <= abs(@after - cut_mark) AS near_now, now_mark, now_row, cut_mark, cut_row FROM session_count_marks)) AS m`;
}

/** The warnings between two marks, (@fromAt, @fromRow) excluded and (@toAt, @toRow) included. */
export const WARNINGS_PASSING_SQL = `SELECT
    (SELECT count(*) FROM sessions WHERE warns_at = @fromAt AND rowid > @fromRow AND rowid <= CASE WHEN @toAt = @fromAt THEN @toRow ELSE ${WHOLE_INSTANT} END)
  + (SELECT count(*) FROM sessions WHERE warns_at > @fromAt AND warns_at < @toAt)
  + (SELECT count(*) FROM sessions WHERE warns_at = @toAt AND @toAt > @fromAt AND rowid <= @toRow)`;

export interface ExpiryCounts {
  /** A session stored (+1) or removed (-1). */
  note(session: CountedSession, sign: 1 | -1): void;
  /** A session rewritten (its rowid stays): the difference between its old and new deadlines. */
  noteChange(before: CountedSession, after: Omit<CountedSession, 'rowid'>): void;
  /** How many notes there are: a write takes its notes back with `rollbackTo`. */
  mark(): number;
  rollbackTo(mark: number): void;
  /** Writes the batch's notes (inside its transaction) and forgets them. */
  flush(): void;
  /** Forgets the notes of a batch that did not commit. */
  discard(): void;
}

type Deltas = Map<string, [CounterKind, string, number, number]>;

export function expiryCounts(db: Database.Database): ExpiryCounts {
  const marks = db.prepare<[], Marks>(MARKS_SQL);
  const add = db.prepare(ADD_SQL);
  const prune = db.prepare(PRUNE_SQL);
  let notes: Array<[CountedSession, 1 | -1]> = [];

  function addTo(deltas: Deltas, kind: CounterKind, key: string, now: number, cut: number): void {
    if (now === 0 && cut === 0) return;
    const id = `${kind}\u0000${key}`;
    const sum = deltas.get(id);
    if (sum) {
      sum[2] += now;
      sum[3] += cut;
    } else deltas.set(id, [kind, key, now, cut]);
  }

  function write(deltas: Deltas): void {
    for (const [kind, key, now, cut] of deltas.values()) {
      if (now === 0 && cut === 0) continue;
      add.run({ kind, key, now, cut });
      if (now < 0 || cut < 0) prune.run({ kind, key });
    }
  }

  return {
    note(session, sign) {
      notes.push([session, sign]);
    },
    noteChange(before, after) {
      if (before.expires_at === after.expires_at && before.warns_at === after.warns_at) return;
      notes.push([before, -1], [countedSession(after, before.rowid), 1]);
    },
    mark: () => notes.length,
    rollbackTo(mark) {
      notes.length = mark;
    },
    flush() {
      if (notes.length === 0) return;
      const m = marks.get()!;
      const deltas: Deltas = new Map();
      for (const [session, sign] of notes) {
        for (const counter of COUNTERS) {
          const at = session[counter.column];
          const key = 'key' in counter ? session[counter.key] : '';
          const now = above(at, session.rowid, m.now_mark, m.now_row) ? sign : 0;
          addTo(deltas, counter.kind, key, now, above(at, session.rowid, m.cut_mark, m.cut_row) ? sign : 0);
        }
      }
      notes = [];
      write(deltas);
    },
    discard() {
      notes = [];
    },
  };
}
