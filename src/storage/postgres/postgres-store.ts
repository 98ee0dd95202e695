// The PostgreSQL store: any number of server instances share one database. Every write
// is one transaction whose reads lock what they read (SELECT … FOR UPDATE), so concurrent
// instances never lose an update; batch work (sweeper, due events) claims its rows with
// FOR UPDATE SKIP LOCKED, so each row is done by one instance. Events are numbered in
// commit order (writers of events serialize on an advisory lock) and announced to every
// instance with NOTIFY. Every writer takes its locks in one order: the agent, the session
// rows, the count buckets (session-buckets.ts), the event log's lock last (transactions.ts).
// Creates, reads by id and writes to one session arriving together share a statement or a
// transaction (batches.ts, create-batch.ts, session-writes.ts).
import pg from 'pg';
import { DEFAULTS } from '../../defaults.js';
import {
  type Carried,
  DELIVERIES_KEPT,
  type DeleteAgentOutcome,
  type EventPage,
  type MessageQuery,
  type MessageView,
  type SessionRecord,
  type Store,
  type WebhookInsertion,
} from '../store.js';
import { announceInDueOrder } from '../due-batch.js';
import { pageOfViews } from '../message-pages.js';
import { migrate } from './migrations.js';
import {
  type AgentRow,
  type ApiKeyRow,
  type DeliveryRow,
  type EventRow,
  type IdempotencyRow,
  type SessionRow,
  type WebhookRow,
  int8AsNumber,
  sessionValues,
  toAgent,
  toApiKey,
  toDelivery,
  toEvent,
  toIdempotencyRecord,
  sessionRowOf,
  toSession,
  toWebhook,
} from './rows.js';
import { withPostgresFaults } from './storage-faults.js';
import { postgresAgentCache } from './agent-cache.js';
import { apiKeyPresence } from './api-key-presence.js';
import { listenForNotifications } from './notifications.js';
import { batched } from './batches.js';
import { createBatcher } from './create-batch.js';
import { AGENT_CHECK, COUNT_SESSIONS, IN_INDEX_ORDER, MAX_EVENT_ID, SESSION_INSERT, SESSION_UPDATE, bucketTotal, listEventsSql, listSessionsSql, sessionUpdateValues } from './queries.js';
import { run, runTogether, withLiterals } from './round-trips.js';
import { type Appended, lockedSession, sessionWriter } from './session-writes.js';
import { EVENTS_CHANNEL, EVENTS_LOCK, WEBHOOKS_OF_KEY_LOCK, postgresTransactions } from './transactions.js';

export interface PostgresOptions {
  /** postgres://… */
  url: string;
  /** Connections in this instance's pool (default: DEFAULTS.postgres). */
  poolSize?: number;
  /** A statement running longer is cancelled: 503 (default: DEFAULTS.postgres). */
  statementTimeoutMs?: number;
  /** How long a request waits for a connection before 503 (default 5000 ms). */
  connectTimeoutMs?: number;
  /** Open only a schema already made (NoStore when there is none): for commands that only read or change one. */
  existing?: boolean;
}

export { EVENTS_CHANNEL };
/** The NOTIFY channel of API keys stored (migration 3's trigger). */
const API_KEYS_CHANNEL = 'sessions_api_keys';
/** The NOTIFY channel of agents deleted, the id as payload (migration 4's trigger). */
const AGENTS_DELETED_CHANNEL = 'sessions_api_agents_deleted';
/** The error a session insert's agent check raises when its agent is not the one kept (division by zero). */
const AGENT_CHANGED = '22012';
/** Reads by one key (readsBy) in one statement at most. */
const MAX_READS = 200;
/**
 * A statement with no answer this long after its statement timeout gets none (a database
 * frozen, a network partition: the statement timeout is the database's own, and a
 * stopped database enforces nothing): the driver gives up (`query_timeout`) and the
 * connection is dropped, so that a request answers 503 instead of hanging.
 */
const NO_ANSWER_MARGIN_MS = 2000;
/** TCP keep-alive probes on idle connections begin after this: a peer gone without a word is found. */
const KEEP_ALIVE_DELAY_MS = 10_000;
/** A purge batch of N sessions deletes at most N times this many of their messages. */
const PURGE_MESSAGES_PER_SESSION = 10;

/** Opens the pool, checks that the database answers and migrates it. Throws (with the reason) when it cannot. */
export async function openPostgresStore(options: PostgresOptions): Promise<Store> {
  const { url, poolSize = DEFAULTS.postgres.poolSize, statementTimeoutMs = DEFAULTS.postgres.statementTimeoutMs, connectTimeoutMs = 5000, existing } = options;
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    query_timeout: statementTimeoutMs + NO_ANSWER_MARGIN_MS,
    keepAlive: true,
    keepAliveInitialDelayMillis: KEEP_ALIVE_DELAY_MS,
    connectionTimeoutMillis: connectTimeoutMs,
    application_name: 'sessions-api',
    types: int8AsNumber,
    // Set by a statement before the pool lends a new connection: as a startup parameter
    // (the driver's `statement_timeout` option) PgBouncer refuses the connection.
    onConnect: (client) => client.query(`SET statement_timeout = ${statementTimeoutMs}`),
  });
  // An idle connection that dies (the database restarted) is dropped from the pool; the
  // next request opens a new one. Without a listener, the error would end the process.
  pool.on('error', () => undefined);
  // So is one that dies while checked out (terminated by an administrator, say): the pool
  // takes its own listener off a connection it lends, and its query fails (503) anyway.
  pool.on('connect', (client) => client.on('error', () => undefined));
  try {
    const client = await pool.connect();
    try {
      await migrate(client, { existing });
    } finally {
      client.release();
    }
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw error;
  }

  const eventListeners = new Set<() => void>();
  const notifyListeners = () => {
    for (const listener of eventListeners) listener();
  };
  const keyPresence = apiKeyPresence();
  const agentCache = postgresAgentCache();
  const notifications = listenForNotifications({
    url,
    types: int8AsNumber,
    channels: { [EVENTS_CHANNEL]: notifyListeners, [API_KEYS_CHANNEL]: keyPresence.notified, [AGENTS_DELETED_CHANNEL]: agentCache.forget },
    onListening(on) {
      keyPresence.listening(on);
      agentCache.listening(on);
      // Events may have been committed unheard: the readers look.
      if (on) notifyListeners();
    },
  });

  const transactions = postgresTransactions(pool, notifyListeners);
  const { transaction, write, sendAtCommit, appendEvents, writeCarried, readTogether } = transactions;
  const writeToSession = sessionWriter(transactions, notifyListeners);
  const createInBatch = createBatcher(pool, { eventsLock: EVENTS_LOCK, eventsChannel: EVENTS_CHANNEL }, notifyListeners);
  /**
   * Reads of a row by a unique column arriving together: one prepared statement. Requests
   * for one key share its row (records are never changed in place); a key holding U+0000
   * finds nothing.
   */
  function readsBy<R extends pg.QueryResultRow>(table: string, column: string & keyof R): (key: string) => Promise<R | undefined> {
    const statement = { name: `sessions_api_read_${table}`, text: `SELECT * FROM ${table} WHERE ${column} = ANY($1::text[])` };
    return batched(async (keys: string[]) => {
      const lookedUp = [...new Set(keys.filter((key) => !key.includes('\u0000')))];
      const { rows } = await pool.query<R>({ ...statement, values: [lookedUp] });
      const byKey = new Map(rows.map((row) => [row[column] as string, row]));
      return keys.map((key) => byKey.get(key));
    }, MAX_READS);
  }
  const readSession = readsBy<SessionRow>('sessions', 'id');
  // Every request with a stored key looks it up (a revocation anywhere refuses it at once).
  const readApiKey = readsBy<ApiKeyRow>('api_keys', 'key_hash');

  const query = <R extends pg.QueryResultRow>(text: string, values?: unknown[]) => run<R>(pool, text, values);


  /** One page of a session's messages, newest first; `hasMore` beyond it in the direction of travel. */
  async function messageViewPage({ sessionId, limit, before, after, maxChars }: MessageQuery): Promise<{ messages: MessageView[]; hasMore: boolean }> {
    // Only `after`: walk forward from it; otherwise walk back from `before` (or the newest).
    const forward = after !== undefined && before === undefined;
    const direction = forward ? 'ASC' : 'DESC';
    // The session's range of the key as row comparisons, in the key's order: with
    // `session_id = $1`, statistics older than a conversation's growth (3 rows expected,
    // 75,000 there) planned a bitmap scan of all of them and a sort, 43 ms against 0.07.
    // The view as text: the driver would parse a json column. Of the rows past maxChars,
    // only the first comes back (it says there are more); the sum in the key's order, so the
    // index's order serves it (by position alone, a sort).
    const { rows } = await query<{ position: number; json: string }>(
      `SELECT position, json FROM (
         SELECT session_id, position, json, sum(length(json)) OVER (ORDER BY session_id ${direction}, position ${direction} ROWS BETWEEN UNBOUNDED PRECEDING AND 2 PRECEDING) AS before_previous
         FROM (SELECT session_id, position, view::text AS json FROM messages WHERE (session_id, position) < ($1, $2) AND (session_id, position) > ($1, $3)
               ORDER BY session_id ${direction}, position ${direction} LIMIT $4) page
       ) counted WHERE before_previous IS NULL OR before_previous < $5::bigint ORDER BY session_id ${direction}, position ${direction}`,
      [sessionId, before ?? Number.MAX_SAFE_INTEGER, after ?? -1, limit + 1, maxChars ?? Number.MAX_SAFE_INTEGER],
    );
    const page = pageOfViews(rows.map(({ position, json }) => [position, json] as const), limit, maxChars);
    return { messages: forward ? page.messages.reverse() : page.messages, hasMore: page.hasMore };
  }

  const store: Store = {
    announcesOffEventLoop: true,
    async insertAgent(agent, carried) {
      return write(async (client, wrote) => {
        const inserted = await run(client,
          'INSERT INTO agents (id, name, bio, settings, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING',
          [agent.id, JSON.stringify(agent.name), agent.bio === undefined ? null : JSON.stringify(agent.bio), JSON.stringify(agent.settings), agent.createdAt],
        );
        if (inserted.rowCount === 0) return false;
        if (await writeCarried(client, carried, agent)) wrote();
        return true;
      });
    },
    async getAgent(id) {
      return agentCache.get(id, async () => {
        const { rows } = await query<AgentRow>('SELECT * FROM agents WHERE id = $1', [id]);
        return rows[0] && toAgent(rows[0]);
      });
    },
    async listAgents() {
      return (await query<AgentRow>('SELECT * FROM agents ORDER BY created_at, id')).rows.map(toAgent);
    },
    async deleteAgent(id, { force, now, purgeCutoff }, carried) {
      // Forgotten before and after: a read between the two may have found it still stored.
      agentCache.forget(id);
      return write(async (client, wrote): Promise<DeleteAgentOutcome> => {
        // The lock conflicts with the key-share lock a concurrent session insert takes on
        // its agent: that insert either committed before (and is counted, deleted) or
        // waits and then finds no agent.
        const { rows } = await run<AgentRow>(client, 'SELECT * FROM agents WHERE id = $1 FOR UPDATE', [id]);
        const agent = rows[0];
        if (!agent) return { kind: 'not_found' };
        const active = await run<{ n: number }>(
          client,
          "SELECT count(*)::bigint AS n FROM sessions WHERE agent_id = $1 AND status = 'active' AND expires_at > $2",
          [id, now],
        );
        const activeSessions = active.rows[0]?.n ?? 0;
        if (activeSessions > 0 && !force) return { kind: 'has_active_sessions', activeSessions };
        const deleted = await run<SessionRow>(
          client,
          'WITH gone AS (DELETE FROM sessions WHERE agent_id = $1 RETURNING *) SELECT * FROM gone WHERE expires_at > $2',
          [id, purgeCutoff],
        );
        await run(client, 'DELETE FROM agents WHERE id = $1', [id]);
        const outcome: DeleteAgentOutcome = { kind: 'deleted', sessions: deleted.rows.map(toSession), agent: toAgent(agent) };
        if (await writeCarried(client, carried, outcome)) wrote();
        return outcome;
      }).finally(() => agentCache.forget(id));
    },
    async insertSession(session, carried) {
      // A keyed create needs its record's answer: it goes alone.
      if (!carried?.idempotency) {
        const batched = { session, events: carried?.events?.(session) ?? [], kept: agentCache.kept(session.agentId) };
        if (await createInBatch(batched)) return true;
      }
      try {
        return await write(async (client, wrote) => {
          // Needs no answer (a missing agent fails the COMMIT's message with 23503): sent with the COMMIT.
          const kept = agentCache.kept(session.agentId);
          if (kept) sendAtCommit(client, withLiterals(client, AGENT_CHECK, [kept.id, kept.createdAt]));
          sendAtCommit(client, withLiterals(client, SESSION_INSERT, sessionValues(session)));
          if (await writeCarried(client, carried, session)) wrote();
          return true;
        });
      } catch (error) {
        const code = (error as { code?: string }).code;
        if (code === AGENT_CHANGED) agentCache.forget(session.agentId);
        if (code === '23503' || code === AGENT_CHANGED) return false; // no such agent (any more)
        throw error;
      }
    },
    async getSession(id) {
      const row = await readSession(id);
      return row && toSession(row);
    },
    async modifySession(id, change, carried) {
      return writeToSession({ id, modify: change, carried }) as Promise<SessionRecord>;
    },
    async deleteSession(id, check, carried) {
      await write(async (client, wrote) => {
        const deleted = check(await lockedSession(client, id));
        sendAtCommit(client, withLiterals(client, 'DELETE FROM sessions WHERE id = $1', [id]));
        if (await writeCarried(client, carried, deleted)) wrote();
      });
    },
    async appendMessage(sessionId, build, carried) {
      return writeToSession({ id: sessionId, append: build, carried: carried as Carried<Appended> | undefined }) as Promise<ReturnType<typeof build>>;
    },
    async listMessageViews(messageQuery) {
      return messageViewPage(messageQuery);
    },
    async listSessions(sessionQuery) {
      const { page, count } = listSessionsSql(sessionQuery);
      const total = sessionQuery.count === false ? undefined : (bucketTotal(sessionQuery) ?? count);
      // One message: the planner settings, the page and its total.
      const results = await readTogether([...IN_INDEX_ORDER.map((setting): [string, unknown[]] => [setting, []]), [page.text, page.values], ...(total ? [[total.text, total.values] as [string, unknown[]]] : [])]);
      const [pageResult, counted] = results.slice(IN_INDEX_ORDER.length) as [pg.QueryResult<{ page: string }>, pg.QueryResult<{ n: number }> | undefined];
      const tuples = JSON.parse(pageResult.rows[0]!.page) as unknown[][];
      const hasMore = tuples.length > sessionQuery.limit;
      if (hasMore) tuples.pop();
      return { sessions: tuples.map((tuple) => toSession(sessionRowOf(tuple))), total: counted && (counted.rows[0]?.n ?? 0), hasMore };
    },
    async countSessions({ now, purgeCutoff }) {
      const { rows } = await pool.query<{ total: number; active: number; warning: number }>({ ...COUNT_SESSIONS, values: [purgeCutoff, now, ['']] });
      const row = rows[0]!;
      // warns_at < expires_at always: a warning after now is of a session active now.
      return { total: row.total, active: row.active, expiringSoon: row.active - row.warning };
    },
    async purgeExpired(cutoff, limit) {
      return write(async (client) => {
        const { rows } = await run<{ id: string }>(client, 'SELECT id FROM sessions WHERE expires_at <= $1 AND due_at IS NULL LIMIT $2 FOR UPDATE SKIP LOCKED', [cutoff, limit]);
        if (rows.length === 0) return { purged: 0, more: false };
        const ids = rows.map((row) => row.id);
        // Messages first and bounded: a long conversation is deleted over several batches.
        const messageLimit = limit * PURGE_MESSAGES_PER_SESSION;
        const messages = await run(client,
          `DELETE FROM messages WHERE (session_id, position) IN
             (SELECT session_id, position FROM messages WHERE session_id = ANY($1::text[]) LIMIT $2)`,
          [ids, messageLimit],
        );
        if (messages.rowCount === messageLimit) return { purged: 0, more: true };
        const purged = await run(client, 'DELETE FROM sessions WHERE id = ANY($1::text[])', [ids]);
        return { purged: purged.rowCount ?? 0, more: ids.length === limit };
      });
    },
    async getIdempotencyRecord(scope, key, now) {
      const { rows } = await query<IdempotencyRow>('SELECT * FROM idempotency_records WHERE scope = $1 AND key = $2 AND expires_at > $3', [scope, key, now]);
      return rows[0] && toIdempotencyRecord(rows[0]);
    },
    async settleIdempotencyRecord({ scope, key, fingerprint, status, body }, now) {
      const { rowCount } = await query(
        'UPDATE idempotency_records SET status = $1, body = $2 WHERE scope = $3 AND key = $4 AND fingerprint = $5 AND expires_at > $6',
        [status, body, scope, key, fingerprint, now],
      );
      return (rowCount ?? 0) > 0;
    },
    async purgeIdempotencyRecords(now, limit) {
      const purged = await query(
        `DELETE FROM idempotency_records WHERE (scope, key) IN
           (SELECT scope, key FROM idempotency_records WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`,
        [now, limit],
      );
      return purged.rowCount ?? 0;
    },
    async insertApiKey(key) {
      // Refused (nothing inserted) on a hash taken or a live key's name taken.
      const inserted = await query(
        `INSERT INTO api_keys (id, name, key_hash, admin, agent_ids, created_at, revoked_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
        [key.id, key.name, key.keyHash, key.admin, JSON.stringify(key.agentIds), key.createdAt, key.revokedAt ?? null],
      );
      // Known here at once; other instances hear of it by notification (which may come later).
      if (inserted.rowCount === 1) keyPresence.stored();
      return inserted.rowCount === 1;
    },
    async findApiKey(keyHash) {
      const row = await readApiKey(keyHash);
      return row && toApiKey(row);
    },
    async listApiKeys() {
      return (await query<ApiKeyRow>('SELECT * FROM api_keys ORDER BY created_at, id')).rows.map(toApiKey);
    },
    async revokeApiKey(idOrName, now) {
      return transaction(async (client) => {
        const { rows } = await run<ApiKeyRow>(client,
          `UPDATE api_keys SET revoked_at = $2 WHERE id = (
             SELECT id FROM api_keys WHERE (id = $1 OR name = $1) AND revoked_at IS NULL ORDER BY id = $1 DESC LIMIT 1 FOR UPDATE)
           RETURNING *`,
          [idOrName, now],
        );
        if (!rows[0]) return undefined;
        // A statement of its own, read after the key's row was had: it sees a webhook whose insert held that row.
        await run(client, 'UPDATE webhooks SET disabled_at = $2 WHERE created_by_key = $1 AND disabled_at IS NULL', [rows[0].id, now]);
        return toApiKey(rows[0]);
      });
    },
    hasApiKeys() {
      return keyPresence.has(async () => (await query<{ any: boolean }>('SELECT EXISTS (SELECT 1 FROM api_keys) AS any')).rows[0]?.any === true);
    },
    async listEvents(eventQuery) {
      // No event comes after the largest bigint (the spec allows 19 digits: more than it holds).
      if (eventQuery.after !== undefined && BigInt(eventQuery.after) >= MAX_EVENT_ID) return [];
      const { text, values } = listEventsSql(eventQuery);
      const { rows } = await query<EventRow & { in_page?: string }>(text, values);
      const events: EventPage = rows.map(toEvent);
      // in_page: the events the page had before maxChars ended it.
      if (rows[0]?.in_page !== undefined && rows.length < Number(rows[0].in_page)) events.cutShort = true;
      return events;
    },
    async lastEventId() {
      const { rows } = await query<{ id: number | null }>('SELECT max(id) AS id FROM events');
      const id = rows[0]?.id;
      return id === null || id === undefined ? undefined : String(id);
    },
    onEventsWritten(listener) {
      eventListeners.add(listener);
      return () => eventListeners.delete(listener);
    },
    async announceDue(now, limit, announce) {
      if (limit < 1) return 0;
      return write(async (client, wrote) => {
        // The batch's sessions in one read, in order of due time; a session another instance
        // is announcing is skipped. A session's second announcement in the batch (warning and
        // expiry both due) re-checks its agent's foreign key when its row is written: the
        // agent's key-share lock is taken with the session's, and a session whose agent is
        // being deleted (locked for update) is skipped, not waited for in a deadlock.
        const [{ rows }] = (await runTogether(client, [
          [
            `SELECT sessions.* FROM sessions JOIN agents ON agents.id = sessions.agent_id WHERE due_at <= $1 ORDER BY due_at, sessions.id LIMIT $2
             FOR UPDATE OF sessions SKIP LOCKED FOR KEY SHARE OF agents SKIP LOCKED`,
            [now, limit],
          ],
        ])) as [pg.QueryResult<SessionRow>];
        const batch = announceInDueOrder(
          rows.map((row) => ({ session: toSession(row), dueAt: Number(row.due_at), key: undefined })),
          now,
          limit,
          announce,
        );
        // The rows as the batch leaves them, with the events, in the COMMIT's message.
        for (const { last } of batch.changed.values()) sendAtCommit(client, withLiterals(client, SESSION_UPDATE, sessionUpdateValues(last)));
        if (await appendEvents(client, batch.events, now)) wrote();
        return batch.announced;
      });
    },
    async purgeEvents(cutoff, limit) {
      // The oldest in log order, up to the first recorded inside the retention: a due event
      // announced late (after a restart, or once time passed) is kept from when it was
      // recorded, not from its earlier occurredAt, as on SQLite. The rows are locked in id
      // order (no deadlock between instances purging at once): another instance waits,
      // then takes the oldest rows left.
      const purged = await query(
        `WITH oldest AS (SELECT id, coalesce(recorded_at, occurred_at) AS recorded_at FROM events ORDER BY id LIMIT $2 FOR UPDATE)
         DELETE FROM events WHERE id IN
           (SELECT id FROM oldest WHERE id < coalesce((SELECT min(id) FROM oldest WHERE recorded_at >= $1), 9223372036854775807))`,
        [cutoff, limit],
      );
      return purged.rowCount ?? 0;
    },
    async insertWebhook(webhook, carried, mostForKey) {
      return write(async (client, wrote): Promise<WebhookInsertion> => {
        const key = webhook.createdByKey;
        if (key !== undefined) {
          // The key's creates one at a time to the COMMIT, so that each counts the others'
          // webhooks (an advisory lock: a key from API_KEYS has no row to lock).
          if (mostForKey !== undefined) await run(client, 'SELECT pg_advisory_xact_lock($1, hashtext($2))', [WEBHOOKS_OF_KEY_LOCK, key]);
          // Its key's row locked to the COMMIT: a revocation waits for this webhook, then disables it.
          const found = await run(client, 'SELECT revoked_at FROM api_keys WHERE id = $1 FOR SHARE', [key]);
          if (found.rows[0]?.revoked_at != null) return 'keyRevoked';
          if (mostForKey !== undefined) {
            const made = await run<{ made: number }>(client, 'SELECT count(*)::int AS made FROM webhooks WHERE created_by_key = $1', [key]);
            if (made.rows[0]!.made >= mostForKey) return 'keyFull';
          }
        }
        await run(client,
          `INSERT INTO webhooks (id, url, secret, types, agent_id, agent_ids, created_at, cursor, attempts, next_attempt_at, failing_since, disabled_at, created_by_key)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
          [
            webhook.id,
            webhook.url,
            webhook.secret,
            webhook.types ? JSON.stringify(webhook.types) : null,
            webhook.agentId ?? null,
            webhook.agentIds ? JSON.stringify(webhook.agentIds) : null,
            webhook.createdAt,
            Number(webhook.cursor),
            webhook.attempts,
            webhook.nextAttemptAt,
            webhook.failingSince ?? null,
            webhook.disabledAt ?? null,
            webhook.createdByKey ?? null,
          ],
        );
        if (await writeCarried(client, carried, webhook)) wrote();
        return 'inserted';
      });
    },
    async listWebhooks() {
      return (await query<WebhookRow>('SELECT * FROM webhooks ORDER BY created_at, seq')).rows.map(toWebhook);
    },
    async getWebhook(id) {
      const [row] = (await query<WebhookRow>('SELECT * FROM webhooks WHERE id = $1', [id])).rows;
      return row && toWebhook(row);
    },
    async deleteWebhook(id) {
      return ((await query('DELETE FROM webhooks WHERE id = $1', [id])).rowCount ?? 0) > 0;
    },
    async recordDelivery(delivery, state, holder) {
      return transaction(async (client) => {
        const moved = await run(client,
          `UPDATE webhooks SET cursor = greatest(cursor, $2), attempts = $3, next_attempt_at = $4, failing_since = $5, disabled_at = coalesce(disabled_at, $6)
            WHERE id = $1 AND claimed_by = $7`,
          [state.id, Number(state.cursor), state.attempts, state.nextAttemptAt, state.failingSince ?? null, state.disabledAt ?? null, holder],
        );
        // Locked as the deliveries' foreign key will: a delete under way is waited for, not met at the insert (23503).
        if (moved.rowCount === 0 && (await run(client, 'SELECT 1 FROM webhooks WHERE id = $1 FOR KEY SHARE', [state.id])).rowCount === 0) return false; // deleted meanwhile
        await run(client,
          `INSERT INTO webhook_deliveries (webhook_id, event_id, attempt, attempted_at, status_code, error, next_retry_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7)`,
          [
            delivery.webhookId,
            Number(delivery.eventId),
            delivery.attempt,
            delivery.attemptedAt,
            delivery.statusCode ?? null,
            delivery.error ?? null,
            delivery.nextRetryAt ?? null,
          ],
        );
        // Only the latest attempts are kept: what listWebhookDeliveries can show.
        await run(client,
          `DELETE FROM webhook_deliveries WHERE webhook_id = $1 AND id <= (SELECT id FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY id DESC LIMIT 1 OFFSET ${DELIVERIES_KEPT})`,
          [delivery.webhookId],
        );
        return (moved.rowCount ?? 0) > 0;
      });
    },
    async claimWebhook(id, holder, now, until, passed) {
      const { rows } = await query<WebhookRow>(
        `UPDATE webhooks SET claimed_by = $2, claimed_until = $4, cursor = greatest(cursor, coalesce($5::bigint, cursor))
          WHERE id = $1 AND (claimed_by IS NULL OR claimed_by = $2 OR claimed_until <= $3 OR ($4::bigint > $3 AND claimed_until > 2 * $4::bigint - $3))
          RETURNING *`,
        [id, holder, now, until, passed ?? null],
      );
      return rows[0] && toWebhook(rows[0]);
    },
    async listDeliveries(webhookId, limit) {
      return (await query<DeliveryRow>('SELECT * FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY id DESC LIMIT $2', [webhookId, limit])).rows.map(toDelivery);
    },
    async ping() {
      await query('SELECT 1 FROM sessions LIMIT 1');
    },
    async probeWrite() {
      await query('INSERT INTO health_probe (id, checked_at) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at', [Date.now()]);
    },
    async freeDiskBytes() {
      return undefined; // remote: the database's disk is not this machine's
    },
    async close() {
      await notifications.close();
      await pool.end();
    },
  };
  return withPostgresFaults(store);
}

