// Versioned schema migrations of the PostgreSQL store, applied in order at start. The
// table schema_migrations holds the version reached; a transaction-wide advisory lock
// makes N instances starting at once migrate once (the others wait, then find nothing
// to do). Never edit a released migration: append a new one.
//
// Times are epoch milliseconds (bigint). Ids are `text COLLATE "C"`: ordered by bytes,
// as SQLite orders them, whatever the database's locale. JSON is stored as `json`, not
// `jsonb`: read back exactly as written (key order, and "\u0000", which jsonb refuses).
// Free text a client writes (agent name and bio, message content) is stored as a JSON
// string for the same reason: a text column cannot hold U+0000, which the API accepts.
import type pg from 'pg';
import { NoStore } from '../store.js';
import { SESSION_BUCKETS_INSERTED_AGAIN, SESSION_BUCKETS_MIGRATION } from './session-buckets.js';

export const migrations: readonly string[] = [
  // 1: the whole schema of SQLite's migrations 1-10, without its counting tables: totals
  // are counted in indexes here.
  `
  CREATE TABLE agents (
    id          text COLLATE "C" PRIMARY KEY,
    name        json NOT NULL,
    bio         json,
    settings    json NOT NULL,
    created_at  bigint NOT NULL
  );

  CREATE TABLE sessions (
    id                         text COLLATE "C" PRIMARY KEY,
    agent_id                   text COLLATE "C" NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    user_id                    text COLLATE "C" NOT NULL,
    created_at                 bigint NOT NULL,
    last_activity              bigint NOT NULL,
    anchor_at                  bigint NOT NULL,
    expires_at                 bigint NOT NULL,
    warns_at                   bigint NOT NULL,
    timeout_minutes            integer NOT NULL,
    auto_renew                 boolean NOT NULL,
    max_duration_minutes       integer NOT NULL,
    warning_threshold_minutes  integer NOT NULL,
    renewal_count              integer NOT NULL DEFAULT 0,
    status                     text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'expired')),
    metadata                   json NOT NULL,
    announced                  text NOT NULL DEFAULT 'nothing' CHECK (announced IN ('nothing', 'warning', 'expiry')),
    due_at                     bigint
  );

  -- Listing, newest first, with and without filters.
  CREATE INDEX sessions_by_created ON sessions (created_at, id);
  CREATE INDEX sessions_by_agent_created ON sessions (agent_id, created_at, id);
  CREATE INDEX sessions_by_user_created ON sessions (user_id, created_at, id);
  -- Counting (index-only scans) and purging.
  CREATE INDEX sessions_by_expiry ON sessions (expires_at, warns_at);
  CREATE INDEX sessions_by_agent_expiry ON sessions (agent_id, expires_at);
  CREATE INDEX sessions_by_user_expiry ON sessions (user_id, expires_at);
  -- The sweeper's work list, and the due-event pump's.
  CREATE INDEX sessions_unmarked_expiry ON sessions (expires_at) WHERE status = 'active';
  CREATE INDEX sessions_by_due_at ON sessions (due_at) WHERE due_at IS NOT NULL;

  CREATE TABLE messages (
    session_id   text COLLATE "C" NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    position     bigint NOT NULL,
    id           text NOT NULL,
    created_at   bigint NOT NULL,
    author_id    text NOT NULL,
    is_agent     boolean NOT NULL,
    content      json NOT NULL,
    attachments  json NOT NULL,
    metadata     json NOT NULL,
    PRIMARY KEY (session_id, position)
  );

  CREATE TABLE health_probe (
    id          integer PRIMARY KEY CHECK (id = 1),
    checked_at  bigint NOT NULL
  );

  CREATE TABLE api_keys (
    id          text COLLATE "C" PRIMARY KEY,
    name        text NOT NULL,
    key_hash    text NOT NULL UNIQUE,
    admin       boolean NOT NULL,
    agent_ids   json NOT NULL,
    created_at  bigint NOT NULL,
    revoked_at  bigint
  );
  CREATE UNIQUE INDEX api_keys_live_name ON api_keys (name) WHERE revoked_at IS NULL;

  CREATE TABLE idempotency_records (
    scope        text NOT NULL,
    key          text NOT NULL,
    fingerprint  text NOT NULL,
    status       integer NOT NULL,
    body         text NOT NULL,
    created_at   bigint NOT NULL,
    expires_at   bigint NOT NULL,
    PRIMARY KEY (scope, key)
  );
  CREATE INDEX idempotency_records_by_expiry ON idempotency_records (expires_at);

  -- Ids never reused; given in commit order (writers of events take an advisory lock,
  -- see postgres-store.ts), so that a reader's cursor never skips a later commit.
  CREATE TABLE events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    type         text NOT NULL,
    occurred_at  bigint NOT NULL,
    agent_id     text NOT NULL,
    session_id   text,
    user_id      text,
    data         json NOT NULL
  );
  CREATE INDEX events_by_session ON events (session_id, id) WHERE session_id IS NOT NULL;
  CREATE INDEX events_by_time ON events (occurred_at);

  CREATE TABLE webhooks (
    seq              bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    id               text COLLATE "C" PRIMARY KEY,
    url              text NOT NULL,
    secret           text NOT NULL,
    types            json,
    agent_id         text,
    agent_ids        json,
    created_at       bigint NOT NULL,
    cursor           bigint NOT NULL,
    attempts         integer NOT NULL,
    next_attempt_at  bigint NOT NULL,
    failing_since    bigint,
    disabled_at      bigint,
    -- The instance delivering it, until when (claimWebhook).
    claimed_by       text,
    claimed_until    bigint
  );

  CREATE TABLE webhook_deliveries (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id     text COLLATE "C" NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id       bigint NOT NULL,
    attempt        integer NOT NULL,
    attempted_at   bigint NOT NULL,
    status_code    integer,
    error          text,
    next_retry_at  bigint
  );
  CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, id);
  `,
  // 2: each message's API view in JSON, written with it (views.ts messageJson) and sent
  // as is by a page of messages; those written before get theirs here, in the same form.
  `
  ALTER TABLE messages ADD COLUMN view json;
  UPDATE messages SET view = json_build_object(
    'id', id, 'content', content, 'authorId', author_id, 'isAgent', is_agent,
    'createdAt', to_char(to_timestamp(created_at / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.')
      || lpad((created_at % 1000)::text, 3, '0') || 'Z',
    'attachments', attachments, 'metadata', metadata);
  ALTER TABLE messages ALTER COLUMN view SET NOT NULL;
  `,
  // 3: storing an API key notifies every instance (api-key-presence.ts), which then stops
  // asking on each request whether keys exist.
  `
  CREATE FUNCTION api_keys_notify() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    PERFORM pg_notify('sessions_api_keys', '');
    RETURN NULL;
  END $$;
  CREATE TRIGGER api_keys_stored AFTER INSERT ON api_keys FOR EACH STATEMENT EXECUTE FUNCTION api_keys_notify();
  `,
  // 4: deleting an agent notifies every instance, with its id (agent-cache.ts).
  `
  CREATE FUNCTION agents_deleted_notify() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    PERFORM pg_notify('sessions_api_agents_deleted', OLD.id);
    RETURN NULL;
  END $$;
  CREATE TRIGGER agents_deleted AFTER DELETE ON agents FOR EACH ROW EXECUTE FUNCTION agents_deleted_notify();
  `,
  // 5: counts from per-minute buckets of deadlines, kept by statement triggers (session-buckets.ts).
  SESSION_BUCKETS_MIGRATION,
  // 6: two indexes no statement used (test/query-plans.test.ts): deliveries are only
  // ever read by webhook, so (webhook_id, id) becomes their key, one B-tree a delivery
  // instead of two; a webhook's seq orders its listing after created_at, and is unique as
  // an identity without an index of its own.
  `
  ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_pkey;
  DROP INDEX webhook_deliveries_by_webhook;
  ALTER TABLE webhook_deliveries ADD PRIMARY KEY (webhook_id, id);
  ALTER TABLE webhooks DROP CONSTRAINT webhooks_seq_key;
  `,
  // 7: events are purged in log order (by id, as on SQLite), no longer by time: one B-tree
  // fewer an event.
  `
  DROP INDEX events_by_time;
  `,
  // 8: a webhook knows the API key that made it, so that revoking the key disables it.
  `
  ALTER TABLE webhooks ADD COLUMN created_by_key text COLLATE "C";
  CREATE INDEX webhooks_by_key ON webhooks (created_by_key) WHERE created_by_key IS NOT NULL;
  `,
  // 9: when a due event announced late was recorded (NULL: when it occurred), which the
  // purge keeps it from: else the next purge took it before any webhook had it.
  `
  ALTER TABLE events ADD COLUMN recorded_at bigint;
  `,
  // 10: no mark pass. Announcing an expiry sets the session's status, and every sweeper
  // pass announces what is due before anything else: the pass found nothing to mark.
  `
  DROP INDEX sessions_unmarked_expiry;
  `,
  // 11: the insert trigger's function as migration 5 makes it since 2949ad4: a database
  // migrated by ad2351c had it without the skip, and counted a batch of creates twice.
  SESSION_BUCKETS_INSERTED_AGAIN,
];

/** The advisory lock key under which migrations run ('sessions-api migrate'). */
const MIGRATION_LOCK = 724_011_301;

/** The longest a timer can wait (about 24.8 days): the driver's `query_timeout` that the pool sets, lifted. */
const NO_QUERY_TIMEOUT = 2 ** 31 - 1;

/**
 * The migration failures whose cause PostgreSQL's words leave to guess, said as such: another
 * application's table or index holding a name this schema needs (a shared database), a
 * user without the right to create tables, a search_path naming no schema that exists, and
 * a schema_migrations whose versions' tables are missing.
 * `version`: the migration that failed, if one did.
 */
function explained(error: unknown, version: number | undefined): Error | undefined {
  const { code, message } = error as { code?: string; message?: string };
  const step = version === undefined ? "this server's schema cannot be made" : `migration ${version} of this server's schema cannot run`;
  const cause = (advice: string) => new Error(`${step}: ${message}${advice}; nothing was changed`, { cause: error });
  if (code === '42P07') return cause(', made by something else; give the server a database (or a search_path schema) of its own'); // duplicate_table
  // insufficient_privilege: to change an object (drop an index, replace a function) takes its owner.
  if (code === '42501' && /must be owner/.test(message ?? '')) return cause('; this upgrade changes an object of the schema, which only its owner may: run this version\'s first start as the role that made the schema');
  if (code === '42501') return cause('; the database user needs the right to create tables there on first start and on upgrades (GRANT CREATE ON SCHEMA …)');
  if (code === '3F000') return cause('; the search_path names no schema that exists: create it first (CREATE SCHEMA …)'); // invalid_schema_name
  // undefined_table: schema_migrations records versions whose tables are not all there.
  if (code === '42P01') return cause(', though schema_migrations says the versions before it were applied: a table of this schema was dropped, or that schema_migrations is not this server\'s');
  return undefined;
}

/** Brings the schema to this server's version; `existing`: only one already there (else NoStore, nothing made). */
/** The columns of this server's schema_migrations (made in `migrate`), as format_type spells their types. */
const OWN_MIGRATIONS_COLUMNS = 'version integer, applied_at timestamp with time zone';

/**
 * A schema_migrations table is a common name (Rails', golang-migrate's, …): one that is not
 * this server's is another application's, and its versions mean nothing here.
 */
async function assertOwnMigrationsTable(query: <R extends pg.QueryResultRow>(text: string) => Promise<pg.QueryResult<R>>): Promise<void> {
  const { rows } = await query<{ name: string; type: string }>(
    "SELECT attname AS name, format_type(atttypid, atttypmod) AS type FROM pg_attribute WHERE attrelid = to_regclass('schema_migrations') AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
  );
  const columns = rows.map(({ name, type }) => `${name} ${type}`).join(', ');
  if (columns !== OWN_MIGRATIONS_COLUMNS) {
    throw new Error(
      `the schema_migrations table on the search path is not this server's (${columns}; this server's has ${OWN_MIGRATIONS_COLUMNS}): another application's? ` +
        'give the server a database (or a search_path schema) of its own; nothing was changed',
    );
  }
}

export async function migrate(client: pg.ClientBase, { existing = false } = {}): Promise<void> {
  // The driver reads `query_timeout` per query; its types leave it out.
  const query = <R extends pg.QueryResultRow>(text: string, values?: unknown[]) =>
    client.query<R>({ text, values, query_timeout: NO_QUERY_TIMEOUT } as pg.QueryConfig);
  let applying: number | undefined;
  await query('BEGIN');
  try {
    // A migration rewrites whole tables (minutes on a large database), and an instance
    // waiting for another's lock waits that long: neither is bound by the statement
    // timeout the pool sets for requests (for this transaction only), nor by the
    // driver's wait for an answer.
    await query('SET LOCAL statement_timeout = 0');
    await query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    // Created only when missing: CREATE … IF NOT EXISTS needs the right to create tables even
    // when the table is there, which a user with only the rights to read and write has not.
    const { rows: made } = await query<{ present: boolean }>("SELECT to_regclass('schema_migrations') IS NOT NULL AS present");
    if (!made[0]!.present && existing) throw new NoStore('no schema_migrations table on its search path');
    if (!made[0]!.present) await query('CREATE TABLE schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
    else await assertOwnMigrationsTable(query);
    const { rows } = await query<{ version: number | null }>('SELECT max(version) AS version FROM schema_migrations');
    const current = rows[0]?.version ?? 0;
    if (current > migrations.length) {
      throw new Error(`database schema version ${current} is newer than this server (${migrations.length})`);
    }
    for (const [index, sql] of migrations.slice(current).entries()) {
      applying = current + index + 1;
      await query(sql);
      await query('INSERT INTO schema_migrations (version) VALUES ($1)', [applying]);
    }
    await query('COMMIT');
  } catch (error) {
    await query('ROLLBACK').catch(() => undefined);
    throw (error instanceof NoStore ? undefined : explained(error, applying)) ?? error;
  }
}
