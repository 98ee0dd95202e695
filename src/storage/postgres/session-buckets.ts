// Exact session counts without visiting the sessions: per-minute buckets of deadlines,
// kept in the transaction that changes the sessions (migration 5) by triggers: one per
// insert or delete statement, one per updated row whose deadline changes minute. A batch
// of creates adds its own (create-batch.ts, COUNTED_SETTING).
//
// A count of the sessions whose deadline (expires_at, or warns_at) is after T is the sum
// of the buckets after T's minute, plus the sessions within T's minute after T, counted
// in the deadline's index. It reads one bucket a minute of the horizon that holds
// sessions, and at most a minute's worth of sessions: not every session.
//
// Kinds: 'expiry' (every session, key ''), 'agent' and 'user' (by expires_at, keyed by
// the agent's or the user's id), 'warning' (every session, by warns_at, key '').
// Buckets that reach zero are deleted.

const MINUTE_MS = 60_000;

export type BucketKind = 'expiry' | 'agent' | 'user' | 'warning';

/** Each kind's deadline column and key column ('' for the global kinds). */
const KINDS: Record<BucketKind, { column: 'expires_at' | 'warns_at'; key: string | undefined }> = {
  expiry: { column: 'expires_at', key: undefined },
  agent: { column: 'expires_at', key: 'agent_id' },
  user: { column: 'expires_at', key: 'user_id' },
  warning: { column: 'warns_at', key: undefined },
};

/** The bucket changes of the sessions in `rows` (a transition table, or a query's name), each counting `sign`. */
export function deltasOf(rows: string, sign: 1 | -1): string {
  return Object.entries(KINDS)
    .map(([kind, { column, key }]) => `SELECT '${kind}'::text AS kind, ${key ?? "''::text"} AS key, ${column} / ${MINUTE_MS} AS minute, ${sign} AS n FROM ${rows}`)
    .join('\n      UNION ALL ');
}

/** The row NEW or OLD of a row trigger, as a table of the columns deltasOf reads. */
const rowOf = (row: 'NEW' | 'OLD') =>
  `(VALUES (${row}.agent_id, ${row}.user_id, ${row}.expires_at, ${row}.warns_at)) AS ${row.toLowerCase()}_row (agent_id, user_id, expires_at, warns_at)`;

/**
 * Adds `changes` (a query of kind, key, minute, n) to the buckets, in key order:
 * concurrent writers lock the buckets they share in the same order.
 */
export function addToBucketsSql(changes: string): string {
  return `INSERT INTO session_buckets AS b (kind, key, minute, n)
      SELECT kind, key, minute, sum(n) FROM (${changes}) AS change
      GROUP BY kind, key, minute HAVING sum(n) <> 0 ORDER BY kind, key, minute
      ON CONFLICT (kind, key, minute) DO UPDATE SET n = b.n + excluded.n`;
}

/**
 * Set (to 'on', for its transaction) by a statement that adds its inserted sessions to the
 * buckets itself (create-batch.ts): the insert trigger then leaves them. It fires at the
 * statement's end, after the event log's lock; every other writer takes bucket locks
 * before that lock, and so must the batch, or two of them deadlock.
 */
export const COUNTED_SETTING = 'sessions_api.buckets_counted';

/** A trigger function applying the bucket changes of `changes`, unless `skip` (an SQL condition) holds. */
function triggerFunction(name: string, changes: string, skip = 'false', create = 'CREATE'): string {
  return `
  ${create} FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    IF ${skip} THEN
      RETURN NULL;
    END IF;
    ${addToBucketsSql(changes)};
    DELETE FROM session_buckets AS b USING (SELECT DISTINCT kind, key, minute FROM (${changes}) AS change) AS touched
      WHERE b.n = 0 AND b.kind = touched.kind AND b.key = touched.key AND b.minute = touched.minute;
    RETURN NULL;
  END $$;`;
}

/** The insert trigger's skip: the statement counted its sessions itself. */
const INSERTED_COUNTED_BY_STATEMENT = `coalesce(current_setting('${COUNTED_SETTING}', true), '') = 'on'`;

/**
 * Migration 11: the insert trigger's function as migration 5 makes it, where it is not
 * (ad2351c's migration 5 made it without the skip). Replacing a function takes its owner:
 * where it is right already nothing is done, so a user that may only create tables
 * upgrades as before.
 */
export const SESSION_BUCKETS_INSERTED_AGAIN = `
  DO $migration$
  BEGIN
    IF position('${COUNTED_SETTING}' IN (SELECT prosrc FROM pg_proc WHERE oid = 'session_buckets_inserted'::regproc)) = 0 THEN
      EXECUTE $create$${triggerFunction('session_buckets_inserted', deltasOf('new_rows', 1), INSERTED_COUNTED_BY_STATEMENT, 'CREATE OR REPLACE')}$create$;
    END IF;
  END $migration$;`;

/** Migration 5: the buckets, their triggers, the index of warns_at, and the buckets of the sessions stored before. */
export const SESSION_BUCKETS_MIGRATION = `
  CREATE TABLE session_buckets (
    kind    text NOT NULL,
    key     text COLLATE "C" NOT NULL,
    minute  bigint NOT NULL,
    n       bigint NOT NULL,
    PRIMARY KEY (kind, key, minute)
  );
  -- The sessions within a minute, for the warning counts (expiry counts use the expiry indexes).
  CREATE INDEX sessions_by_warning ON sessions (warns_at);
  ${triggerFunction('session_buckets_inserted', deltasOf('new_rows', 1), INSERTED_COUNTED_BY_STATEMENT)}
  ${triggerFunction('session_buckets_deleted', deltasOf('old_rows', -1))}
  ${triggerFunction('session_buckets_moved', `${deltasOf(rowOf('NEW'), 1)}\n      UNION ALL ${deltasOf(rowOf('OLD'), -1)}`)}
  CREATE TRIGGER session_buckets_inserted AFTER INSERT ON sessions REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION session_buckets_inserted();
  CREATE TRIGGER session_buckets_deleted AFTER DELETE ON sessions REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION session_buckets_deleted();
  -- A row trigger, fired only when a deadline changes minute: a write rarely moves one
  -- (a heartbeat moves it by the time since the last), and a statement trigger's
  -- transition tables cost every UPDATE of one session about 90 µs of the database's CPU.
  CREATE TRIGGER session_buckets_moved AFTER UPDATE OF expires_at, warns_at, agent_id, user_id ON sessions FOR EACH ROW
    WHEN (OLD.expires_at / ${MINUTE_MS} <> NEW.expires_at / ${MINUTE_MS} OR OLD.warns_at / ${MINUTE_MS} <> NEW.warns_at / ${MINUTE_MS}
      OR OLD.agent_id <> NEW.agent_id OR OLD.user_id <> NEW.user_id)
    EXECUTE FUNCTION session_buckets_moved();
  INSERT INTO session_buckets (kind, key, minute, n)
    SELECT kind, key, minute, sum(n) FROM (${deltasOf('sessions', 1)}) AS stored GROUP BY kind, key, minute;
`;

/**
 * The sessions of `kind` with a key among `keys` (a text[] parameter) whose deadline is
 * after `after` (a bigint parameter), as an expression: the buckets after its minute, and
 * the sessions of its minute after it.
 */
export function countAfterSql(kind: BucketKind, after: string, keys: string): string {
  const { column, key } = KINDS[kind];
  const at = `${after}::bigint`;
  const ofKey = key ? `${key} = ANY(${keys}::text[]) AND ` : '';
  return `(coalesce((SELECT sum(n) FROM session_buckets WHERE kind = '${kind}' AND key = ANY(${keys}::text[]) AND minute > ${at} / ${MINUTE_MS}), 0)::bigint
    + (SELECT count(*) FROM sessions WHERE ${ofKey}${column} > ${at} AND ${column} < (${at} / ${MINUTE_MS} + 1) * ${MINUTE_MS}))`;
}
