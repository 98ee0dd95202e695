// Versioned schema migrations, applied in order at start. PRAGMA user_version holds the
// version reached. Never edit a released migration: append a new one.
import BetterSqlite3, { type Database } from 'better-sqlite3';
import { idempotencyId } from './idempotency-records.js';

export const migrations: readonly string[] = [
  // 1: agents and sessions; the timeout configuration is stored as columns.
  `
  CREATE TABLE agents (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    bio         TEXT,
    settings    TEXT NOT NULL,
    created_at  INTEGER NOT NULL
  ) STRICT;

  CREATE TABLE sessions (
    id                         TEXT PRIMARY KEY,
    agent_id                   TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    user_id                    TEXT NOT NULL,
    created_at                 INTEGER NOT NULL,
    last_activity              INTEGER NOT NULL,
    anchor_at                  INTEGER NOT NULL,
    expires_at                 INTEGER NOT NULL,
    warns_at                   INTEGER NOT NULL,
    timeout_minutes            INTEGER NOT NULL,
    auto_renew                 INTEGER NOT NULL CHECK (auto_renew IN (0, 1)),
    max_duration_minutes       INTEGER NOT NULL,
    warning_threshold_minutes  INTEGER NOT NULL,
    renewal_count              INTEGER NOT NULL DEFAULT 0,
    status                     TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'expired')),
    metadata                   TEXT NOT NULL
  ) STRICT;

  -- Listing, newest first, with and without filters; ties broken by id.
  CREATE INDEX sessions_by_created ON sessions (created_at, id);
  CREATE INDEX sessions_by_agent_created ON sessions (agent_id, created_at, id);
  CREATE INDEX sessions_by_user_created ON sessions (user_id, created_at, id);
  -- Counting active / expiring / expired sessions, per agent and in all; purging.
  CREATE INDEX sessions_by_expiry ON sessions (expires_at, warns_at);
  CREATE INDEX sessions_by_agent_expiry ON sessions (agent_id, expires_at);
  CREATE INDEX sessions_by_user_expiry ON sessions (user_id, expires_at);
  -- The sweeper's work list: sessions not yet marked expired.
  CREATE INDEX sessions_unmarked_expiry ON sessions (expires_at) WHERE status = 'active';
  `,
  // 2: messages, ordered within their session by a unique position (see message-order.ts).
  `
  CREATE TABLE messages (
    id           TEXT PRIMARY KEY,
    session_id   TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    position     INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    author_id    TEXT NOT NULL,
    is_agent     INTEGER NOT NULL CHECK (is_agent IN (0, 1)),
    content      TEXT NOT NULL,
    attachments  TEXT NOT NULL,
    metadata     TEXT NOT NULL
  ) STRICT;

  CREATE UNIQUE INDEX messages_by_session_position ON messages (session_id, position);
  `,
  // 3: how many sessions expire in each minute, kept by triggers in the same transaction
  // as every write, so that "sessions expiring after T" costs a sum over minutes plus an
  // index range within one minute, not a scan of every session.
  `
  CREATE TABLE session_expiry_minutes (
    minute    INTEGER PRIMARY KEY,
    sessions  INTEGER NOT NULL
  ) STRICT;

  INSERT INTO session_expiry_minutes (minute, sessions)
    SELECT expires_at / 60000, count(*) FROM sessions GROUP BY expires_at / 60000;

  CREATE TRIGGER sessions_expiry_insert AFTER INSERT ON sessions BEGIN
    INSERT INTO session_expiry_minutes (minute, sessions) VALUES (new.expires_at / 60000, 1)
      ON CONFLICT (minute) DO UPDATE SET sessions = sessions + 1;
  END;

  CREATE TRIGGER sessions_expiry_delete AFTER DELETE ON sessions BEGIN
    UPDATE session_expiry_minutes SET sessions = sessions - 1 WHERE minute = old.expires_at / 60000;
    DELETE FROM session_expiry_minutes WHERE minute = old.expires_at / 60000 AND sessions = 0;
  END;

  CREATE TRIGGER sessions_expiry_move AFTER UPDATE OF expires_at ON sessions
    WHEN new.expires_at / 60000 <> old.expires_at / 60000 BEGIN
    UPDATE session_expiry_minutes SET sessions = sessions - 1 WHERE minute = old.expires_at / 60000;
    DELETE FROM session_expiry_minutes WHERE minute = old.expires_at / 60000 AND sessions = 0;
    INSERT INTO session_expiry_minutes (minute, sessions) VALUES (new.expires_at / 60000, 1)
      ON CONFLICT (minute) DO UPDATE SET sessions = sessions + 1;
  END;
  `,
  // 4: messages stored clustered by (session, position), without a rowid: a page is one
  // contiguous range of the table's own B-tree instead of an index range plus a lookup per
  // row. Message ids stay unique by construction (UUIDs), so they need no index.
  `
  CREATE TABLE messages_clustered (
    session_id   TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    position     INTEGER NOT NULL,
    id           TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    author_id    TEXT NOT NULL,
    is_agent     INTEGER NOT NULL CHECK (is_agent IN (0, 1)),
    content      TEXT NOT NULL,
    attachments  TEXT NOT NULL,
    metadata     TEXT NOT NULL,
    PRIMARY KEY (session_id, position)
  ) STRICT, WITHOUT ROWID;

  INSERT INTO messages_clustered
    SELECT session_id, position, id, created_at, author_id, is_agent, content, attachments, metadata FROM messages;
  DROP TABLE messages;
  ALTER TABLE messages_clustered RENAME TO messages;
  `,
  // 5: the same histogram for warns_at, so that "near expiration" (warns_at <= now <
  // expires_at, i.e. expiring after now minus warning after now, since warns_at < expires_at)
  // is counted without a scan too.
  `
  CREATE INDEX sessions_by_warning ON sessions (warns_at);

  CREATE TABLE session_warning_minutes (
    minute    INTEGER PRIMARY KEY,
    sessions  INTEGER NOT NULL
  ) STRICT;

  INSERT INTO session_warning_minutes (minute, sessions)
    SELECT warns_at / 60000, count(*) FROM sessions GROUP BY warns_at / 60000;

  CREATE TRIGGER sessions_warning_insert AFTER INSERT ON sessions BEGIN
    INSERT INTO session_warning_minutes (minute, sessions) VALUES (new.warns_at / 60000, 1)
      ON CONFLICT (minute) DO UPDATE SET sessions = sessions + 1;
  END;

  CREATE TRIGGER sessions_warning_delete AFTER DELETE ON sessions BEGIN
    UPDATE session_warning_minutes SET sessions = sessions - 1 WHERE minute = old.warns_at / 60000;
    DELETE FROM session_warning_minutes WHERE minute = old.warns_at / 60000 AND sessions = 0;
  END;

  CREATE TRIGGER sessions_warning_move AFTER UPDATE OF warns_at ON sessions
    WHEN new.warns_at / 60000 <> old.warns_at / 60000 BEGIN
    UPDATE session_warning_minutes SET sessions = sessions - 1 WHERE minute = old.warns_at / 60000;
    DELETE FROM session_warning_minutes WHERE minute = old.warns_at / 60000 AND sessions = 0;
    INSERT INTO session_warning_minutes (minute, sessions) VALUES (new.warns_at / 60000, 1)
      ON CONFLICT (minute) DO UPDATE SET sessions = sessions + 1;
  END;
  `,
  // 6: the expiry histogram per agent and per user, so that a filtered listing's total
  // costs a sum over that agent's (user's) minutes, not a count of all its sessions: an
  // agent serving 100,000 sessions answers as fast as one serving ten.
  `
  CREATE TABLE session_expiry_minutes_by_agent (
    agent_id  TEXT NOT NULL,
    minute    INTEGER NOT NULL,
    sessions  INTEGER NOT NULL,
    PRIMARY KEY (agent_id, minute)
  ) STRICT, WITHOUT ROWID;

  INSERT INTO session_expiry_minutes_by_agent (agent_id, minute, sessions)
    SELECT agent_id, expires_at / 60000, count(*) FROM sessions GROUP BY agent_id, expires_at / 60000;

  CREATE TRIGGER session_expiry_minutes_by_agent_insert AFTER INSERT ON sessions BEGIN
    INSERT INTO session_expiry_minutes_by_agent (agent_id, minute, sessions) VALUES (new.agent_id, new.expires_at / 60000, 1)
      ON CONFLICT (agent_id, minute) DO UPDATE SET sessions = sessions + 1;
  END;

  CREATE TRIGGER session_expiry_minutes_by_agent_delete AFTER DELETE ON sessions BEGIN
    UPDATE session_expiry_minutes_by_agent SET sessions = sessions - 1 WHERE agent_id = old.agent_id AND minute = old.expires_at / 60000;
    DELETE FROM session_expiry_minutes_by_agent WHERE agent_id = old.agent_id AND minute = old.expires_at / 60000 AND sessions = 0;
  END;

  -- A session's agent and user never change; only its expiry moves.
  CREATE TRIGGER session_expiry_minutes_by_agent_move AFTER UPDATE OF expires_at ON sessions
    WHEN new.expires_at / 60000 <> old.expires_at / 60000 BEGIN
    UPDATE session_expiry_minutes_by_agent SET sessions = sessions - 1 WHERE agent_id = old.agent_id AND minute = old.expires_at / 60000;
    DELETE FROM session_expiry_minutes_by_agent WHERE agent_id = old.agent_id AND minute = old.expires_at / 60000 AND sessions = 0;
    INSERT INTO session_expiry_minutes_by_agent (agent_id, minute, sessions) VALUES (new.agent_id, new.expires_at / 60000, 1)
      ON CONFLICT (agent_id, minute) DO UPDATE SET sessions = sessions + 1;
  END;

  CREATE TABLE session_expiry_minutes_by_user (
    user_id  TEXT NOT NULL,
    minute    INTEGER NOT NULL,
    sessions  INTEGER NOT NULL,
    PRIMARY KEY (user_id, minute)
  ) STRICT, WITHOUT ROWID;

  INSERT INTO session_expiry_minutes_by_user (user_id, minute, sessions)
    SELECT user_id, expires_at / 60000, count(*) FROM sessions GROUP BY user_id, expires_at / 60000;

  CREATE TRIGGER session_expiry_minutes_by_user_insert AFTER INSERT ON sessions BEGIN
    INSERT INTO session_expiry_minutes_by_user (user_id, minute, sessions) VALUES (new.user_id, new.expires_at / 60000, 1)
      ON CONFLICT (user_id, minute) DO UPDATE SET sessions = sessions + 1;
  END;

  CREATE TRIGGER session_expiry_minutes_by_user_delete AFTER DELETE ON sessions BEGIN
    UPDATE session_expiry_minutes_by_user SET sessions = sessions - 1 WHERE user_id = old.user_id AND minute = old.expires_at / 60000;
    DELETE FROM session_expiry_minutes_by_user WHERE user_id = old.user_id AND minute = old.expires_at / 60000 AND sessions = 0;
  END;

  -- A session's agent and user never change; only its expiry moves.
  CREATE TRIGGER session_expiry_minutes_by_user_move AFTER UPDATE OF expires_at ON sessions
    WHEN new.expires_at / 60000 <> old.expires_at / 60000 BEGIN
    UPDATE session_expiry_minutes_by_user SET sessions = sessions - 1 WHERE user_id = old.user_id AND minute = old.expires_at / 60000;
    DELETE FROM session_expiry_minutes_by_user WHERE user_id = old.user_id AND minute = old.expires_at / 60000 AND sessions = 0;
    INSERT INTO session_expiry_minutes_by_user (user_id, minute, sessions) VALUES (new.user_id, new.expires_at / 60000, 1)
      ON CONFLICT (user_id, minute) DO UPDATE SET sessions = sessions + 1;
  END;
  `,
  // 7: one row that the health check's write probe rewrites.
  `
  CREATE TABLE health_probe (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    checked_at INTEGER NOT NULL
  ) STRICT;
  `,
  // 8: API keys (only a SHA-256 of each key is stored) and the records of idempotent
  // requests, written in the same transaction as the write each one protects; the
  // unique (scope, key) is what makes a second write under one key impossible. Records
  // are rows in rowid order (appended), only the small unique index takes random keys:
  // a commit of 50 keyed writes dirties far fewer pages than a table keyed by them.
  `
  CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    key_hash    TEXT NOT NULL UNIQUE,
    admin       INTEGER NOT NULL CHECK (admin IN (0, 1)),
    agent_ids   TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
  ) STRICT;

  CREATE UNIQUE INDEX api_keys_live_name ON api_keys (name) WHERE revoked_at IS NULL;

  CREATE TABLE idempotency_records (
    scope        TEXT NOT NULL,
    key          TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    status       INTEGER NOT NULL,
    body         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    UNIQUE (scope, key)
  ) STRICT;

  CREATE INDEX idempotency_records_by_expiry ON idempotency_records (expires_at);
  `,
  // 9: the event log, and what each session has announced of its deadline with the
  // moment its next announcement is due: one index on that moment is how due warnings
  // and expiries are found (no timer per session). Sessions already marked expired have
  // nothing more to announce.
  `
  ALTER TABLE sessions ADD COLUMN announced TEXT NOT NULL DEFAULT 'nothing' CHECK (announced IN ('nothing', 'warning', 'expiry'));
  ALTER TABLE sessions ADD COLUMN due_at INTEGER;
  UPDATE sessions SET announced = 'expiry' WHERE status = 'expired';
  UPDATE sessions SET due_at = CASE WHEN warns_at < expires_at THEN warns_at ELSE expires_at END WHERE announced = 'nothing';
  CREATE INDEX sessions_by_due_at ON sessions (due_at) WHERE due_at IS NOT NULL;

  -- AUTOINCREMENT: an id is never reused, even after the log is trimmed to nothing.
  CREATE TABLE events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    type         TEXT NOT NULL,
    occurred_at  INTEGER NOT NULL,
    agent_id     TEXT NOT NULL,
    session_id   TEXT,
    user_id      TEXT,
    data         TEXT NOT NULL
  ) STRICT;

  CREATE INDEX events_by_session ON events (session_id, id) WHERE session_id IS NOT NULL;
  CREATE INDEX events_by_time ON events (occurred_at);
  `,
  // 10: webhooks, each with its delivery cursor in the log and backoff state, and their
  // recent delivery attempts.
  `
  CREATE TABLE webhooks (
    id               TEXT PRIMARY KEY,
    url              TEXT NOT NULL,
    secret           TEXT NOT NULL,
    types            TEXT,
    agent_id         TEXT,
    agent_ids        TEXT,
    created_at       INTEGER NOT NULL,
    cursor           INTEGER NOT NULL,
    attempts         INTEGER NOT NULL,
    next_attempt_at  INTEGER NOT NULL,
    failing_since    INTEGER,
    disabled_at      INTEGER
  ) STRICT;

  CREATE TABLE webhook_deliveries (
    id             INTEGER PRIMARY KEY,
    webhook_id     TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id       INTEGER NOT NULL,
    attempt        INTEGER NOT NULL,
    attempted_at   INTEGER NOT NULL,
    status_code    INTEGER,
    error          TEXT,
    next_retry_at  INTEGER
  ) STRICT;

  CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, id);
  `,
  // 11: fewer B-trees written per change. No query reads warns_at from
  // sessions_by_expiry. (The mark pass keeps sessions_unmarked_expiry: through
  // sessions_by_due_at it rescanned every marked session not yet announced, batch after
  // batch: quadratic when 10^6 expire at once.) The minute
  // histograms are kept by the store, a batch of writes at a time (expiry-counts.ts),
  // instead of by a trigger per histogram per row.
  `
  DROP TRIGGER sessions_expiry_insert;
  DROP TRIGGER sessions_expiry_delete;
  DROP TRIGGER sessions_expiry_move;
  DROP TRIGGER sessions_warning_insert;
  DROP TRIGGER sessions_warning_delete;
  DROP TRIGGER sessions_warning_move;
  DROP TRIGGER session_expiry_minutes_by_agent_insert;
  DROP TRIGGER session_expiry_minutes_by_agent_delete;
  DROP TRIGGER session_expiry_minutes_by_agent_move;
  DROP TRIGGER session_expiry_minutes_by_user_insert;
  DROP TRIGGER session_expiry_minutes_by_user_delete;
  DROP TRIGGER session_expiry_minutes_by_user_move;
  DROP INDEX sessions_by_expiry;
  CREATE INDEX sessions_by_expiry ON sessions (expires_at);

  `,
  // 12: each message's API view in JSON, written with it (views.ts messageJson): a page
  // of messages is sent as stored, neither built nor serialized per request. Messages
  // written before get theirs here, in the same form.
  `
  ALTER TABLE messages ADD COLUMN view TEXT;
  UPDATE messages SET view = json_object(
    'id', id, 'content', content, 'authorId', author_id,
    'isAgent', json(CASE is_agent WHEN 1 THEN 'true' ELSE 'false' END),
    'createdAt', strftime('%Y-%m-%dT%H:%M:%S.', created_at / 1000, 'unixepoch') || substr('00' || (created_at % 1000), -3) || 'Z',
    'attachments', json(attachments), 'metadata', json(metadata));
  `,
  // 13: hour histograms beside the minute ones (all sessions, their warnings, per agent),
  // kept by the store in the same batch (expiry-counts.ts): a count reads at most the
  // hours of the horizon (360 for 15 days) and 59 minutes, not every minute (21,600).
  `
  CREATE TABLE session_expiry_hours (
    hour      INTEGER PRIMARY KEY,
    sessions  INTEGER NOT NULL
  ) STRICT;
  INSERT INTO session_expiry_hours (hour, sessions) SELECT minute / 60, sum(sessions) FROM session_expiry_minutes GROUP BY 1;

  CREATE TABLE session_warning_hours (
    hour      INTEGER PRIMARY KEY,
    sessions  INTEGER NOT NULL
  ) STRICT;
  INSERT INTO session_warning_hours (hour, sessions) SELECT minute / 60, sum(sessions) FROM session_warning_minutes GROUP BY 1;

  CREATE TABLE session_expiry_hours_by_agent (
    agent_id  TEXT NOT NULL,
    hour      INTEGER NOT NULL,
    sessions  INTEGER NOT NULL,
    PRIMARY KEY (agent_id, hour)
  ) STRICT, WITHOUT ROWID;
  INSERT INTO session_expiry_hours_by_agent (agent_id, hour, sessions)
    SELECT agent_id, minute / 60, sum(sessions) FROM session_expiry_minutes_by_agent GROUP BY 1, 2;
  `,
  // 14: one B-tree fewer per event. The retention trim walks the log in id order (the
  // order events were recorded) and stops at the first event inside the retention.
  `
  DROP INDEX events_by_time;
  `,
  // 15: an idempotency record is one row appended, and one small random index entry
  // (idempotency-records.ts): the table no longer keeps scope and key, only their digest,
  // and has no expiry index (the trim walks the rows in insertion order).
  `
  CREATE TABLE idempotency_records_by_digest (
    id           BLOB NOT NULL UNIQUE,
    fingerprint  TEXT NOT NULL,
    status       INTEGER NOT NULL,
    body         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
  ) STRICT;
  INSERT INTO idempotency_records_by_digest (id, fingerprint, status, body, created_at, expires_at)
    SELECT idempotency_id(scope, key), fingerprint, status, body, created_at, expires_at FROM idempotency_records ORDER BY expires_at;
  DROP TABLE idempotency_records;
  ALTER TABLE idempotency_records_by_digest RENAME TO idempotency_records;
  `,
  // 16: counts from running totals instead of histograms (expiry-counts.ts): per counter
  // (all sessions, their warnings, per agent, per user) how many sessions lie above each
  // of two marks, one the sweeper keeps near now and one near the purge cutoff. A count
  // corrects from the nearest mark by the rows between it and the instant, read from the
  // expiry (warning) index. The minute and hour histograms, and the per-agent and per-user
  // expiry indexes that counted the rest of a minute, go. The marks start at 0 (every
  // session above them); the sweeper's first pass moves them.
  `
  CREATE TABLE session_count_marks (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    now_mark  INTEGER NOT NULL,
    cut_mark  INTEGER NOT NULL
  ) STRICT;
  INSERT INTO session_count_marks (id, now_mark, cut_mark) VALUES (1, 0, 0);

  CREATE TABLE session_counts (
    kind       TEXT NOT NULL,
    key        TEXT NOT NULL,
    above_now  INTEGER NOT NULL,
    above_cut  INTEGER NOT NULL,
    PRIMARY KEY (kind, key)
  ) STRICT, WITHOUT ROWID;
  INSERT INTO session_counts (kind, key, above_now, above_cut)
    SELECT 'expiry', '', sum(expires_at > 0), sum(expires_at > 0) FROM sessions HAVING count(*) > 0;
  INSERT INTO session_counts (kind, key, above_now, above_cut)
    SELECT 'warning', '', sum(warns_at > 0), sum(warns_at > 0) FROM sessions HAVING count(*) > 0;
  INSERT INTO session_counts (kind, key, above_now, above_cut)
    SELECT 'agent', agent_id, sum(expires_at > 0), sum(expires_at > 0) FROM sessions GROUP BY agent_id;
  INSERT INTO session_counts (kind, key, above_now, above_cut)
    SELECT 'user', user_id, sum(expires_at > 0), sum(expires_at > 0) FROM sessions GROUP BY user_id;

  DROP TABLE session_expiry_minutes;
  DROP TABLE session_warning_minutes;
  DROP TABLE session_expiry_minutes_by_agent;
  DROP TABLE session_expiry_minutes_by_user;
  DROP TABLE session_expiry_hours;
  DROP TABLE session_warning_hours;
  DROP TABLE session_expiry_hours_by_agent;
  DROP INDEX sessions_by_agent_expiry;
  DROP INDEX sessions_by_user_expiry;
  `,
  // 17: one B-tree fewer per event: no index of the log by session. Each session keeps a
  // lower bound of its first event's id (the log's newest id + 1 when it was created),
  // and the replay of one session reads the log by id range from there. Sessions created
  // before get the id of their oldest event still in the log, found while the index exists.
  `
  ALTER TABLE sessions ADD COLUMN first_event_id INTEGER;
  UPDATE sessions SET first_event_id = coalesce(
    (SELECT min(id) FROM events WHERE session_id = sessions.id),
    (SELECT coalesce(max(id), 0) + 1 FROM events));
  DROP INDEX events_by_session;
  `,
  // 18: the due announcements in a small table of their own, ordered by due time: a
  // warning moves its session's entry to the expiry (a delete and an insert near others
  // due at the same moment) instead of rewriting the wide session row, its indexes and a
  // random page each. The session row keeps what it announced as of its last write; a
  // warning announced since is the entry missing at its warns_at (see the store). Triggers
  // keep the entries with every write of announced, due_at or expires_at, by any
  // connection: the entry is at (due_at, id), or at (expires_at, id) once the warning went.
  `
  CREATE TABLE due_announcements (
    due_at      INTEGER NOT NULL,
    session_id  TEXT NOT NULL,
    PRIMARY KEY (due_at, session_id)
  ) STRICT, WITHOUT ROWID;
  INSERT INTO due_announcements (due_at, session_id) SELECT due_at, id FROM sessions WHERE due_at IS NOT NULL;
  DROP INDEX sessions_by_due_at;

  CREATE TRIGGER due_announcements_insert AFTER INSERT ON sessions WHEN new.due_at IS NOT NULL BEGIN
    INSERT OR IGNORE INTO due_announcements (due_at, session_id) VALUES (new.due_at, new.id);
  END;
  CREATE TRIGGER due_announcements_move AFTER UPDATE OF announced, due_at, expires_at ON sessions
    WHEN old.due_at IS NOT new.due_at OR old.expires_at IS NOT new.expires_at OR old.announced IS NOT new.announced BEGIN
    DELETE FROM due_announcements WHERE due_at IN (old.due_at, old.expires_at) AND session_id = old.id;
    INSERT OR IGNORE INTO due_announcements (due_at, session_id) SELECT new.due_at, new.id WHERE new.due_at IS NOT NULL;
  END;
  CREATE TRIGGER due_announcements_delete AFTER DELETE ON sessions WHEN old.due_at IS NOT NULL BEGIN
    DELETE FROM due_announcements WHERE due_at IN (old.due_at, old.expires_at) AND session_id = old.id;
  END;
  `,
  // 19: a count mark is a place in the expiry index's order, (instant, rowid), so that it
  // moves a bounded batch at a time even through an instant a million sessions share
  // (expiry-counts.ts). The marks so far had passed their whole instant.
  `
  ALTER TABLE session_count_marks ADD COLUMN now_row INTEGER NOT NULL DEFAULT 9007199254740991;
  ALTER TABLE session_count_marks ADD COLUMN cut_row INTEGER NOT NULL DEFAULT 9007199254740991;
  `,
  // 20: a due entry names its session by rowid (sessions' rowids never change: the store
  // never runs VACUUM): the pump's read of the due sessions finds each row by its rowid,
  // not through the index of the text id first (one random index page fewer a warning).
  `
  DROP TRIGGER due_announcements_insert;
  DROP TRIGGER due_announcements_move;
  DROP TRIGGER due_announcements_delete;
  CREATE TABLE due_announcements_by_rowid (
    due_at         INTEGER NOT NULL,
    session_rowid  INTEGER NOT NULL,
    PRIMARY KEY (due_at, session_rowid)
  ) STRICT, WITHOUT ROWID;
  INSERT INTO due_announcements_by_rowid (due_at, session_rowid)
    SELECT due.due_at, sessions.rowid FROM due_announcements AS due JOIN sessions ON sessions.id = due.session_id;
  DROP TABLE due_announcements;
  ALTER TABLE due_announcements_by_rowid RENAME TO due_announcements;

  CREATE TRIGGER due_announcements_insert AFTER INSERT ON sessions WHEN new.due_at IS NOT NULL BEGIN
    INSERT OR IGNORE INTO due_announcements (due_at, session_rowid) VALUES (new.due_at, new.rowid);
  END;
  CREATE TRIGGER due_announcements_move AFTER UPDATE OF announced, due_at, expires_at ON sessions
    WHEN old.due_at IS NOT new.due_at OR old.expires_at IS NOT new.expires_at OR old.announced IS NOT new.announced BEGIN
    DELETE FROM due_announcements WHERE due_at IN (old.due_at, old.expires_at) AND session_rowid = old.rowid;
    INSERT OR IGNORE INTO due_announcements (due_at, session_rowid) SELECT new.due_at, new.rowid WHERE new.due_at IS NOT NULL;
  END;
  CREATE TRIGGER due_announcements_delete AFTER DELETE ON sessions WHEN old.due_at IS NOT NULL BEGIN
    DELETE FROM due_announcements WHERE due_at IN (old.due_at, old.expires_at) AND session_rowid = old.rowid;
  END;
  `,
  // 21: a session event's data is stored as an array of its SessionInfo's values
  // (event-data.ts); rows written before keep their JSON text, and are read as such. No
  // table changes: the version keeps a server older than this one, which would send
  // such data as it is stored, from opening the database.
  `SELECT 1;`,
  // 22: the log keeps a row per transaction that recorded events (event-log.ts): its id is
  // its first event's, the others follow. Each event so far becomes a row of one, under its
  // id; when the last ids given were trimmed, a row of no events stands for the last one.
  `
  CREATE TABLE event_log (
    id           INTEGER PRIMARY KEY,
    n            INTEGER NOT NULL,
    occurred_at  INTEGER NOT NULL,
    events       TEXT NOT NULL
  ) STRICT;
  INSERT INTO event_log (id, n, occurred_at, events)
    SELECT id, 1, occurred_at,
      '[[' || json_quote(type) || ',' || occurred_at || ',' || json_quote(agent_id) || ',' || json_quote(session_id) || ',' || json_quote(user_id) || ',' || data || ']]'
    FROM events ORDER BY id;
  INSERT INTO event_log (id, n, occurred_at, events)
    SELECT seq, 0, 0, '[]' FROM sqlite_sequence WHERE name = 'events' AND seq > (SELECT coalesce(max(id), 0) FROM events);
  DROP TABLE events;
  `,
  // 23: an idempotency record is one row appended, with no index on its key
  // (idempotency-records.ts: each connection finds keys through a map in memory). Rows are
  // numbered by an AUTOINCREMENT seq, never given twice, and keep their order; the key's
  // digest becomes hex text (the map's keys).
  `
  CREATE TABLE idempotency_records_in_order (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    digest       TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    status       INTEGER NOT NULL,
    body         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
  ) STRICT;
  INSERT INTO idempotency_records_in_order (digest, fingerprint, status, body, created_at, expires_at)
    SELECT lower(hex(id)), fingerprint, status, body, created_at, expires_at FROM idempotency_records ORDER BY rowid;
  DROP TABLE idempotency_records;
  ALTER TABLE idempotency_records_in_order RENAME TO idempotency_records;
  `,
  // 24: a webhook knows the API key that made it, so that revoking the key disables it.
  `
  ALTER TABLE webhooks ADD COLUMN created_by_key TEXT;
  CREATE INDEX webhooks_by_key ON webhooks (created_by_key) WHERE created_by_key IS NOT NULL;
  `,
  // 25: two processes on one file claim a webhook before each attempt, as instances on
  // PostgreSQL do: each had posted every event.
  `
  ALTER TABLE webhooks ADD COLUMN claimed_by TEXT;
  ALTER TABLE webhooks ADD COLUMN claimed_until INTEGER;
  `,
  // 26: no mark pass. Announcing an expiry sets the session's status, and every sweeper
  // pass announces what is due before anything else: the pass found nothing to mark.
  // (IF EXISTS: migration 11 as written from 194ce65 to 3ee1cc1 had dropped it.)
  `
  DROP INDEX IF EXISTS sessions_unmarked_expiry;
  `,
  // 27: a message is its view alone. Since migration 12 each row held its content twice
  // (the columns, which nothing reads, and the view): in a table without a rowid a row
  // over ~1 KB spills to an overflow page of its own, 4 KB mostly empty, so a message of
  // 450 characters took 4.7 KB. A message's view holds every field. An upgrade rewrites
  // the table once.
  `
  CREATE TABLE message_views (
    session_id  TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    view        TEXT NOT NULL,
    PRIMARY KEY (session_id, position)
  ) STRICT, WITHOUT ROWID;
  INSERT INTO message_views (session_id, position, view) SELECT session_id, position, view FROM messages;
  DROP TABLE messages;
  ALTER TABLE message_views RENAME TO messages;
  `,
];

/**
 * Refuses, before anything is written (the switch to WAL included), a file that is another
 * application's database: tables but no schema version of ours, or a version whose first
 * tables are not there; and one a newer server migrated. Taken for ours, it was migrated
 * in place (every table of this schema added beside its own) or changed, then refused
 * with a message that read as damage to ours.
 */
export function assertOwnSchema(db: Database): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").pluck().all() as string[];
  const foreign = (why: string) => new Error(`not a Sessions API database (${why}); name a new file, or an empty one`);
  if (version === 0 && tables.length > 0) throw foreign(`it has tables, ${tables.slice(0, 5).join(', ')}${tables.length > 5 ? ', …' : ''}, and no schema version`);
  if (version > migrations.length) throw new Error(`database schema version ${version} is newer than this server (${migrations.length})`);
  if (version > 0 && !['agents', 'sessions'].every((table) => tables.includes(table))) throw foreign(`schema version ${version}, but no agents and sessions tables`);
}

/**
 * The schema as SQLite describes it, object by object: each table's columns, keys and
 * kind (STRICT, WITHOUT ROWID), each index's columns and condition, each trigger's and
 * view's text; not the SQL the tables were made with, which two equal schemas built by
 * different steps spell differently.
 */
export function schemaShape(db: Database): Map<string, string> {
  const shape = new Map<string, string>();
  const objects = db.prepare("SELECT type, name, tbl_name AS tableName, sql FROM sqlite_master WHERE name NOT IN ('sqlite_sequence', 'sqlite_stat1', 'sqlite_stat4') ORDER BY type, name").all() as Array<{ type: string; name: string; tableName: string; sql: string | null }>;
  const words = (sql: string | null) => (sql ?? '').replace(/\s+/g, ' ').trim();
  for (const { type, name, tableName, sql } of objects) {
    const quoted = `"${name.replaceAll('"', '""')}"`;
    if (type === 'table') {
      const kind = db.prepare('SELECT strict, wr FROM pragma_table_list WHERE name = ?').get(name);
      // The text too: CHECK constraints and collations are nowhere else (every upgrade path of this server's builds spells it as a fresh build does).
      shape.set(`table ${name}`, JSON.stringify([kind, db.pragma(`table_xinfo(${quoted})`), db.pragma(`foreign_key_list(${quoted})`), words(sql)]));
    } else if (type === 'index') {
      const unique = db.prepare('SELECT "unique" FROM pragma_index_list(?) WHERE name = ?').pluck().get(tableName, name);
      shape.set(`index ${name}`, JSON.stringify([tableName, unique, db.pragma(`index_xinfo(${quoted})`), / WHERE (.*)$/i.exec(words(sql))?.[1] ?? null]));
    } else {
      shape.set(`${type} ${name}`, words(sql));
    }
  }
  return shape;
}

/** What `found` has that `wanted` has not, or has otherwise, and what it lacks: "index x (missing)", "table y (differs)". */
function schemaDifferences(found: Map<string, string>, wanted: Map<string, string>): string[] {
  const differences: string[] = [];
  for (const object of wanted.keys()) if (!found.has(object)) differences.push(`${object} (missing)`);
  for (const [object, shape] of found) {
    if (!wanted.has(object)) differences.push(`${object} (not in this server's schema)`);
    else if (wanted.get(object) !== shape) differences.push(`${object} (differs)`);
  }
  return differences;
}

/** The functions migrations call: migration 15 keeps the live idempotency records, under their digest. */
function withMigrationFunctions(db: Database): void {
  db.function('idempotency_id', { deterministic: true }, (scope, key) => idempotencyId(String(scope), String(key)));
}

/** This server's schema, built from nothing. */
function builtSchema(): Map<string, string> {
  const fresh = new BetterSqlite3(':memory:');
  try {
    withMigrationFunctions(fresh);
    for (const sql of migrations) fresh.exec(sql);
    return schemaShape(fresh);
  } finally {
    fresh.close();
  }
}

/**
 * Brings the schema to this server's version, all the steps in one transaction: a step
 * that fails leaves the file as it was, which the server that wrote it still opens. An
 * upgrade that does not end in this server's schema is undone and refused: a few builds
 * of the project's first days wrote migrations that a later build changed in place, and
 * a file they wrote would otherwise be taken, half migrated, for this schema.
 */
export function migrate(db: Database, onUpgrade?: (from: number, to: number) => void): void {
  const versionNow = () => db.pragma('user_version', { simple: true }) as number;
  const refuseNewer = (version: number) => {
    if (version > migrations.length) throw new Error(`database schema version ${version} is newer than this server (${migrations.length})`);
  };
  refuseNewer(versionNow());
  if (versionNow() === migrations.length) return;
  withMigrationFunctions(db);
  // Under the write lock, reading the version again there: another process (a second
  // server, the keys command) migrating the same file meanwhile has done it.
  db.transaction(() => {
    const from = versionNow();
    refuseNewer(from);
    if (from === migrations.length) return;
    if (from > 0) onUpgrade?.(from, migrations.length);
    try {
      for (const sql of migrations.slice(from)) db.exec(sql);
    } catch (error) {
      if (from === 0) throw error;
      throw new Error(`database schema version ${from} cannot be brought to ${migrations.length} (${(error as Error).message}); nothing was changed. ${NOT_AS_BUILT}`, { cause: error });
    }
    db.pragma(`user_version = ${migrations.length}`);
    if (from === 0) return;
    const differences = schemaDifferences(schemaShape(db), builtSchema());
    if (differences.length > 0) {
      throw new Error(`database schema version ${from} does not become this server's schema ${migrations.length}: ${differences.slice(0, 5).join(', ')}${differences.length > 5 ? ', …' : ''}; nothing was changed. ${NOT_AS_BUILT}`);
    }
  }).immediate();
}

const NOT_AS_BUILT = 'Its schema is not the one this version had as built: a build of the first days (2026-11-24 to 11-28) that wrote a migration later changed in place? Keep the file, and start this server on a new one (or restore a backup)';
