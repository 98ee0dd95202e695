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
import type Database from 'better-sqlite3';

/** What a session contributes to the counters. */
export interface CountedSession {
  agent_id: string;
  user_id: string;
  expires_at: number;
  warns_at: number;
}

export type Mark = 'now_mark' | 'cut_mark';

/** The counters: which column each counts, keyed by which (none: one row, key ''). */
export const COUNTERS = [
  { kind: 'expiry', column: 'expires_at' },
  { kind: 'warning', column: 'warns_at' },
  { kind: 'agent', column: 'expires_at', key: 'agent_id' },
  { kind: 'user', column: 'expires_at', key: 'user_id' },
] as const;
export type CounterKind = (typeof COUNTERS)[number]['kind'];

const MARKS_SQL = 'SELECT now_mark, cut_mark FROM session_count_marks';
const ADD_SQL = `INSERT INTO session_counts (kind, key, above_now, above_cut) VALUES (@kind, @key, @now, @cut)
  ON CONFLICT (kind, key) DO UPDATE SET above_now = above_now + excluded.above_now, above_cut = above_cut + excluded.above_cut`;
const PRUNE_SQL = 'DELETE FROM session_counts WHERE kind = @kind AND key = @key AND above_now = 0 AND above_cut = 0';

/**
 * Sessions of `kind` (and key @key) whose column is after @after: the total above the
 * mark nearest @after, less the sessions between that mark and @after (or plus, when
 * @after is below the mark). The unary + keeps SQLite on the column's index.
 */
export function countAfterSql(kind: CounterKind): string {
  const counter = COUNTERS.find((c) => c.kind === kind)!;
  const column = counter.column;
  const ofKey = 'key' in counter ? `+${counter.key} = @key AND ` : '';
  return `SELECT coalesce((SELECT CASE WHEN m.near_now THEN above_now ELSE above_cut END FROM session_counts WHERE kind = '${kind}' AND key = @key), 0)
      - (SELECT count(*) FROM sessions WHERE ${ofKey}${column} > m.mark AND ${column} <= @after)
      + (SELECT count(*) FROM sessions WHERE ${ofKey}${column} > @after AND ${column} <= m.mark) AS n
    FROM (SELECT near_now, CASE WHEN near_now THEN now_mark ELSE cut_mark END AS mark
          FROM (SELECT abs(@after - now_mark) <= abs(@after - cut_mark) AS near_now, now_mark, cut_mark FROM session_count_marks)) AS m`;
}

/** The sessions that pass a mark moved forward, in expiry order (a batch). */
export const PASSING_SQL = 'SELECT agent_id, user_id, expires_at FROM sessions WHERE expires_at > @from AND expires_at <= @to ORDER BY expires_at LIMIT @limit';
const PASSING_AT_SQL = 'SELECT agent_id, user_id, expires_at FROM sessions WHERE expires_at = ?';
const WARNINGS_PASSING_SQL = 'SELECT count(*) FROM sessions WHERE warns_at > @from AND warns_at <= @to';

export interface ExpiryCounts {
  /** A session stored (+1) or removed (-1). */
  note(session: CountedSession, sign: 1 | -1): void;
  /** A session rewritten: the difference between its old and new deadlines. */
  noteChange(before: CountedSession, after: CountedSession): void;
  /** How many notes there are: a write takes its notes back with `rollbackTo`. */
  mark(): number;
  rollbackTo(mark: number): void;
  /** Writes the batch's notes (inside its transaction) and forgets them. */
  flush(): void;
  /** Forgets the notes of a batch that did not commit. */
  discard(): void;
  /**
   * Moves a mark forward toward `to` by at most about `limit` sessions, inside the caller's
   * transaction and with no notes pending (the sessions it passes are read from the table).
   */
  advance(mark: Mark, to: number, limit: number): { passed: number; more: boolean };
}

type Deltas = Map<string, [CounterKind, string, number, number]>;

export function expiryCounts(db: Database.Database): ExpiryCounts {
  const marks = db.prepare<[], Record<Mark, number>>(MARKS_SQL);
  const add = db.prepare(ADD_SQL);
  const prune = db.prepare(PRUNE_SQL);
  const passing = db.prepare<{ from: number; to: number; limit: number }, CountedSession>(PASSING_SQL);
  const passingAt = db.prepare<[number], CountedSession>(PASSING_AT_SQL);
  const warningsPassing = db.prepare<{ from: number; to: number }, number>(WARNINGS_PASSING_SQL).pluck();
  const setMark = { now_mark: db.prepare('UPDATE session_count_marks SET now_mark = ?'), cut_mark: db.prepare('UPDATE session_count_marks SET cut_mark = ?') };
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
      notes.push([before, -1], [after, 1]);
    },
    mark: () => notes.length,
    rollbackTo(mark) {
      notes.length = mark;
    },
    flush() {
      if (notes.length === 0) return;
      const { now_mark, cut_mark } = marks.get()!;
      const deltas: Deltas = new Map();
      for (const [session, sign] of notes) {
        for (const counter of COUNTERS) {
          const at = session[counter.column];
          const key = 'key' in counter ? session[counter.key] : '';
          addTo(deltas, counter.kind, key, at > now_mark ? sign : 0, at > cut_mark ? sign : 0);
        }
      }
      notes = [];
      write(deltas);
    },
    discard() {
      notes = [];
    },
    advance(mark, to, limit) {
      const from = marks.get()![mark];
      if (to <= from) return { passed: 0, more: false };
      let rows = passing.all({ from, to, limit });
      let reached = to;
      if (rows.length === limit) {
        const last = rows[limit - 1]!.expires_at;
        // A batch ends between two instants; one instant holding the whole batch goes whole.
        const oneInstant = rows[0]!.expires_at === last;
        rows = oneInstant ? passingAt.all(last) : rows.filter((row) => row.expires_at < last);
        reached = oneInstant ? last : last - 1;
      }
      const deltas: Deltas = new Map();
      const lower = (kind: CounterKind, key: string, n: number) => addTo(deltas, kind, key, mark === 'now_mark' ? -n : 0, mark === 'cut_mark' ? -n : 0);
      lower('expiry', '', rows.length);
      lower('warning', '', warningsPassing.get({ from, to: reached })!);
      for (const row of rows) {
        lower('agent', row.agent_id, 1);
        lower('user', row.user_id, 1);
      }
      write(deltas);
      setMark[mark].run(reached);
      return { passed: rows.length, more: reached < to };
    },
  };
}
