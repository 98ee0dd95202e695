// The minute histograms that make counts cheap (migrations 3, 5 and 6): how many sessions
// expire (warn) in each minute, in all, per agent and per user. Since migration 11 the
// store keeps them itself instead of four row triggers: every write notes what it changes
// of a session's minutes, and the group commit adds up the notes of its whole batch and
// writes each histogram row once, in the same transaction, before COMMIT. Fifty creates
// of one agent in one minute cost three upserts plus one per user, not two hundred; a
// write rolled back to its savepoint takes its notes back with it.
import type Database from 'better-sqlite3';

/** What a session contributes to the histograms. */
export interface CountedSession {
  agent_id: string;
  user_id: string;
  expires_at: number;
  warns_at: number;
}

/** SQLite's integer division (truncates toward zero). */
const minuteOf = (ms: number) => Math.trunc(ms / 60000);

const UPSERT = (table: string, key?: string) => {
  const keyColumn = key ? `${key}, ` : '';
  const keyValue = key ? '@key, ' : '';
  const keyTerm = key ? `${key} = @key AND ` : '';
  return {
    add: `INSERT INTO ${table} (${keyColumn}minute, sessions) VALUES (${keyValue}@minute, @delta)
            ON CONFLICT (${keyColumn}minute) DO UPDATE SET sessions = sessions + excluded.sessions`,
    prune: `DELETE FROM ${table} WHERE ${keyTerm}minute = @minute AND sessions = 0`,
  };
};

const HISTOGRAMS = [
  { table: 'session_expiry_minutes', column: 'expires_at' },
  { table: 'session_warning_minutes', column: 'warns_at' },
  { table: 'session_expiry_minutes_by_agent', column: 'expires_at', key: 'agent_id' },
  { table: 'session_expiry_minutes_by_user', column: 'expires_at', key: 'user_id' },
] as const;

export interface ExpiryCounts {
  /** A session stored (+1) or removed (-1). */
  note(session: CountedSession, sign: 1 | -1): void;
  /** A session rewritten: the difference between its old and new minutes. */
  noteChange(before: CountedSession, after: CountedSession): void;
  /** How many notes there are: a write takes its notes back with `rollbackTo`. */
  mark(): number;
  rollbackTo(mark: number): void;
  /** Writes the batch's notes (inside its transaction) and forgets them. */
  flush(): void;
  /** Forgets the notes of a batch that did not commit. */
  discard(): void;
}

export function expiryCounts(db: Database.Database): ExpiryCounts {
  const statements = HISTOGRAMS.map((histogram) => {
    const sql = UPSERT(histogram.table, 'key' in histogram ? histogram.key : undefined);
    return { add: db.prepare(sql.add), prune: db.prepare(sql.prune) };
  });
  // One entry per histogram row touched: [histogram index, key, minute, delta].
  let notes: Array<[number, string, number, number]> = [];

  function note(session: CountedSession, sign: 1 | -1): void {
    HISTOGRAMS.forEach((histogram, i) => {
      const key = 'key' in histogram ? session[histogram.key] : '';
      notes.push([i, key, minuteOf(session[histogram.column]), sign]);
    });
  }

  return {
    note,
    noteChange(before, after) {
      if (minuteOf(before.expires_at) === minuteOf(after.expires_at) && minuteOf(before.warns_at) === minuteOf(after.warns_at)) return;
      note(before, -1);
      note(after, 1);
    },
    mark: () => notes.length,
    rollbackTo(mark) {
      notes.length = mark;
    },
    flush() {
      if (notes.length === 0) return;
      const sums = new Map<string, [number, string, number, number]>();
      for (const [i, key, minute, delta] of notes) {
        const id = `${i}\u0000${key}\u0000${minute}`;
        const sum = sums.get(id);
        if (sum) sum[3] += delta;
        else sums.set(id, [i, key, minute, delta]);
      }
      notes = [];
      for (const [i, key, minute, delta] of sums.values()) {
        if (delta === 0) continue;
        const { add, prune } = statements[i]!;
        const keyed = 'key' in HISTOGRAMS[i]!;
        add.run(keyed ? { key, minute, delta } : { minute, delta });
        if (delta < 0) prune.run(keyed ? { key, minute } : { minute });
      }
    },
    discard() {
      notes = [];
    },
  };
}
