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
const BUCKET_OF = { minute: minuteOf, hour: (ms: number) => Math.trunc(minuteOf(ms) / 60) };

const UPSERT = (table: string, unit: 'minute' | 'hour', key?: string) => {
  const keyColumn = key ? `${key}, ` : '';
  const keyValue = key ? '@key, ' : '';
  const keyTerm = key ? `${key} = @key AND ` : '';
  return {
    add: `INSERT INTO ${table} (${keyColumn}${unit}, sessions) VALUES (${keyValue}@bucket, @delta)
            ON CONFLICT (${keyColumn}${unit}) DO UPDATE SET sessions = sessions + excluded.sessions`,
    prune: `DELETE FROM ${table} WHERE ${keyTerm}${unit} = @bucket AND sessions = 0`,
  };
};

// The hour histograms (migration 13) sum their minutes: a count reads whole hours, then
// at most 59 minutes (see countAfterStatement). A user has few sessions, so few minutes:
// theirs has no hours.
export const HISTOGRAMS = [
  { table: 'session_expiry_minutes', column: 'expires_at', unit: 'minute' },
  { table: 'session_warning_minutes', column: 'warns_at', unit: 'minute' },
  { table: 'session_expiry_minutes_by_agent', column: 'expires_at', unit: 'minute', key: 'agent_id' },
  { table: 'session_expiry_minutes_by_user', column: 'expires_at', unit: 'minute', key: 'user_id' },
  { table: 'session_expiry_hours', column: 'expires_at', unit: 'hour' },
  { table: 'session_warning_hours', column: 'warns_at', unit: 'hour' },
  { table: 'session_expiry_hours_by_agent', column: 'expires_at', unit: 'hour', key: 'agent_id' },
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
    const sql = UPSERT(histogram.table, histogram.unit, 'key' in histogram ? histogram.key : undefined);
    return { add: db.prepare(sql.add), prune: db.prepare(sql.prune) };
  });
  // One entry per histogram row touched: [histogram index, key, minute or hour, delta].
  let notes: Array<[number, string, number, number]> = [];

  function note(session: CountedSession, sign: 1 | -1): void {
    HISTOGRAMS.forEach((histogram, i) => {
      const key = 'key' in histogram ? session[histogram.key] : '';
      notes.push([i, key, BUCKET_OF[histogram.unit](session[histogram.column]), sign]);
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
      for (const [i, key, bucket, delta] of notes) {
        const id = `${i}\u0000${key}\u0000${bucket}`;
        const sum = sums.get(id);
        if (sum) sum[3] += delta;
        else sums.set(id, [i, key, bucket, delta]);
      }
      notes = [];
      for (const [i, key, bucket, delta] of sums.values()) {
        if (delta === 0) continue;
        const { add, prune } = statements[i]!;
        const keyed = 'key' in HISTOGRAMS[i]!;
        add.run(keyed ? { key, bucket, delta } : { bucket, delta });
        if (delta < 0) prune.run(keyed ? { key, bucket } : { bucket });
      }
    },
    discard() {
      notes = [];
    },
  };
}
