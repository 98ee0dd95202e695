// What the server needs from persistence. Asynchronous so that a networked backend
// (PostgreSQL, for several server instances sharing one store) can implement it too.
import type { components } from '../../generated/api.js';
import type { SessionPosition } from '../domain/session-order.js';
import type { Announced, SessionTiming } from '../domain/timeout-policy.js';

type Schemas = components['schemas'];

/** Times are epoch milliseconds. */
export interface AgentRecord {
  id: string;
  name: string;
  bio?: string;
  settings: Schemas['AgentSettings'];
  createdAt: number;
}

export interface SessionRecord extends SessionTiming {
  id: string;
  agentId: string;
  userId: string;
  metadata: Schemas['SessionMetadata'];
  /** What the sweeper (or the last write) recorded; reads judge expiry from the clock. */
  status: Schemas['SessionStatus'];
  /** What the session has announced of its deadline (session.warning, session.expired). */
  announced: Announced;
}

/**
 * The session with `timing`, `status` and `announced` in place of its own. Built field by
 * field: V8 copies an object spread that holds doubles (the epoch milliseconds) on a slow
 * path, 1-2 µs for a session, and a write copies its session more than once.
 */
export function sessionWith(session: SessionRecord, timing: SessionTiming, status: SessionRecord['status'], announced: Announced): SessionRecord {
  const { createdAt, lastActivity, anchorAt, expiresAt, warnsAt, renewalCount, config } = timing;
  return { id: session.id, agentId: session.agentId, userId: session.userId, metadata: session.metadata, status, announced, createdAt, lastActivity, anchorAt, expiresAt, warnsAt, renewalCount, config };
}

export interface MessageRecord {
  id: string;
  sessionId: string;
  /** Unique within the session, increasing; see domain/message-order.ts. */
  position: number;
  createdAt: number;
  authorId: string;
  isAgent: boolean;
  content: string;
  attachments: Schemas['Attachments'];
  metadata: Schemas['MessageMetadata'];
}

/** A stored message as the API shows it: its position (for cursors) and its view in JSON. */
export interface MessageView {
  position: number;
  json: string;
}

/** Positions bound the page (exclusive). With only `after`, the page is the oldest after it. */
export interface MessageQuery {
  sessionId: string;
  limit: number;
  before?: number;
  after?: number;
  /** The page ends with the message whose view reaches these characters (message-pages.ts). */
  maxChars?: number;
}

export type DeleteAgentOutcome =
  /** `sessions`: those deleted that were still retained (not yet due for purge), as stored. */
  | { kind: 'deleted'; sessions: SessionRecord[]; agent: AgentRecord }
  | { kind: 'not_found' }
  | { kind: 'has_active_sessions'; activeSessions: number };

/**
 * The clock-dependent bounds of a query, computed by the timeout policy: sessions with
 * expires_at > now are active; those with expires_at <= purgeCutoff are purged (gone).
 */
export interface TimeBounds {
  now: number;
  purgeCutoff: number;
}

export interface SessionQuery extends TimeBounds {
  agentId?: string;
  /** Only sessions of these agents (a scoped API key's); empty matches nothing. */
  agentIds?: readonly string[];
  userId?: string;
  status: 'active' | 'expired' | 'all';
  limit: number;
  offset: number;
  /** Only sessions after this one in list order (newest first): a keyset cursor. */
  after?: SessionPosition;
  /** False: `total` is not counted (undefined). Default true. */
  count?: boolean;
}

/**
 * The agents whose sessions a query is limited to: its agent, those of `agentIds` (each
 * once), or the agent if `agentIds` allows it (none if not); undefined when it names none.
 */
export function agentsOfQuery({ agentId, agentIds }: Pick<SessionQuery, 'agentId' | 'agentIds'>): readonly string[] | undefined {
  if (agentIds === undefined) return agentId === undefined ? undefined : [agentId];
  if (agentId !== undefined) return agentIds.includes(agentId) ? [agentId] : [];
  return [...new Set(agentIds)];
}

/** A page of listSessions: `hasMore` when matches lie beyond it. */
export interface SessionPage {
  sessions: SessionRecord[];
  total: number | undefined;
  hasMore: boolean;
}

export interface SessionCounts {
  /** Not purged. */
  total: number;
  active: number;
  /** Active and within the warning threshold of expiry. */
  expiringSoon: number;
}

/** An API key: only the SHA-256 of the key itself is stored (hex). */
export interface ApiKeyRecord {
  id: string;
  name: string;
  keyHash: string;
  admin: boolean;
  /** The agents whose sessions the key may use; empty for an admin key (all of them). */
  agentIds: string[];
  createdAt: number;
  revokedAt?: number;
}

/** The answer to an idempotent request, kept so that a retry gets it again. */
export interface IdempotencyRecord {
  /** Whose key it is (the API key's id, or `anonymous` without keys). */
  scope: string;
  key: string;
  /** Digest of the request (method, route, body): a retry must match it. */
  fingerprint: string;
  status: number;
  /** The answer's JSON. */
  body: string;
  createdAt: number;
  expiresAt: number;
}

/**
 * Rows a write carries into its own transaction (savepoint), built from what it wrote:
 * they commit with the write or not at all.
 */
export interface Carried<T> {
  /** A key already recorded (and not expired) fails the write with IdempotencyKeyTaken; nothing is written. */
  idempotency?: (written: T) => IdempotencyRecord;
  /** The events that describe the write, appended to the event log in its transaction. */
  events?: (written: T) => EventInput[];
}

export type EventType = Schemas['EventType'];

/** An event before the log gives it its id. `occurredAt` in epoch milliseconds. */
export interface EventInput {
  type: EventType;
  occurredAt: number;
  agentId: string;
  sessionId?: string;
  userId?: string;
  data: Schemas['Event']['data'];
}

export interface EventRecord extends EventInput {
  /** Increasing in the order events were recorded. */
  id: string;
}

/** Events after `after` (all of them without it), oldest first, matching every filter given. */
export interface EventQuery {
  after?: string;
  sessionId?: string;
  agentId?: string;
  /** Only events of these agents (a scoped API key's); empty matches nothing. */
  agentIds?: readonly string[];
  userId?: string;
  types?: readonly EventType[];
  limit: number;
  /**
   * About how many characters of events a page holds at most: it ends with the event that
   * reaches them (one at least), and says so (EventPage). SQLite counts the rows of its log
   * it read (up to EVENTS_PER_ROW events each, of any session), PostgreSQL the events' data.
   */
  maxChars?: number;
}

/** The events of a read, in log order. `cutShort`: maxChars ended it before `limit`; more may follow. */
export type EventPage = EventRecord[] & { cutShort?: true };

/** What a due announcement writes: the session moved on, and its events. */
export interface Announcement {
  session: SessionRecord;
  events: EventInput[];
}

/** Another request has written under this idempotency key (in this or another process). */
export class IdempotencyKeyTaken extends Error {
  override name = 'IdempotencyKeyTaken';
}

/** Below this much free space the store's disk counts as full (health's `disk` check; the message of a failed open). */
export const FULL_DISK_BYTES = 1024 * 1024;

export function isDiskFull(freeBytes: number): boolean {
  return freeBytes < FULL_DISK_BYTES;
}

/** Opened with `existing`: there is no store to open (no file, no schema), and none was made. */
export class NoStore extends Error {
  override name = 'NoStore';
}

/** A URL subscribed to events; its delivery state is durable (a restart resumes it). */
export interface WebhookRecord {
  id: string;
  url: string;
  /** Signing secret, `whsec_<base64>`. */
  secret: string;
  types?: EventType[];
  agentId?: string;
  /** Only events of these agents (the creating key's scope); undefined: every agent. */
  agentIds?: string[];
  /** The API key that made it (its id); revoking that key disables it. Undefined: made without a key. */
  createdByKey?: string;
  createdAt: number;
  /** Every matching event up to this id has been delivered. */
  cursor: string;
  /** Failed attempts at the event after the cursor. */
  attempts: number;
  /** No attempt before this moment (backoff). */
  nextAttemptAt: number;
  failingSince?: number;
  disabledAt?: number;
}

/** The attempts kept per webhook (its `…/deliveries`): recording one more deletes the oldest beyond these. */
export const DELIVERIES_KEPT = 100;

export interface DeliveryRecord {
  webhookId: string;
  eventId: string;
  attempt: number;
  attemptedAt: number;
  statusCode?: number;
  /** Why it failed; undefined when it succeeded. */
  error?: string;
  nextRetryAt?: number;
}

/** What insertWebhook did (see there). */
export type WebhookInsertion = 'inserted' | 'keyRevoked' | 'keyFull';

export interface Store {
  /** False when an agent with that id exists already. */
  insertAgent(agent: AgentRecord, carried?: Carried<AgentRecord>): Promise<boolean>;
  getAgent(id: string): Promise<AgentRecord | undefined>;
  listAgents(): Promise<AgentRecord[]>;
  /**
   * Refuses while the agent has sessions unexpired at `now`, unless `force`. Its sessions go
   * with it; `deletedSessions` counts those not yet past the retention (expiring after
   * `purgeCutoff`): the others were gone already for every reader.
   */
  deleteAgent(id: string, options: { force: boolean; now: number; purgeCutoff: number }, carried?: Carried<DeleteAgentOutcome>): Promise<DeleteAgentOutcome>;

  /** False when the session's agent does not exist (any more). */
  insertSession(session: SessionRecord, carried?: Carried<SessionRecord>): Promise<boolean>;
  getSession(id: string): Promise<SessionRecord | undefined>;
  /**
   * Reads the session and writes what `change` returns, in one transaction, so that
   * concurrent changes never lose an update. `change` may throw to abort; nothing is
   * written then. It must not await: it runs inside the transaction.
   */
  modifySession(
    id: string,
    change: (current: SessionRecord | undefined) => SessionRecord,
    carried?: Carried<SessionRecord>,
  ): Promise<SessionRecord>;
  /** Deletes the session after `check` (run in the same transaction) accepts it; `carried` sees the deleted session. */
  deleteSession(id: string, check: (current: SessionRecord | undefined) => SessionRecord, carried?: Carried<SessionRecord>): Promise<void>;
  /**
   * One transaction: reads the session and the last message position, then writes the
   * session and inserts the message that `build` returns (it may throw to abort).
   */
  appendMessage<T extends { session: SessionRecord; message: MessageRecord }>(
    sessionId: string,
    build: (current: SessionRecord | undefined, lastPosition: number | undefined) => T,
    carried?: Carried<T>,
  ): Promise<T>;
  /**
   * A page of a session's messages, newest first; `hasMore` when messages lie beyond the
   * page in the direction of travel. Each message is its API view (Schemas['Message']) in
   * JSON, written with the message: getSessionMessages sends it as is.
   */
  listMessageViews(query: MessageQuery): Promise<{ messages: MessageView[]; hasMore: boolean }>;
  listSessions(query: SessionQuery): Promise<SessionPage>;
  countSessions(bounds: TimeBounds): Promise<SessionCounts>;

  /**
   * Deletes up to `limit` sessions that expired at or before `cutoff`, with their messages.
   * A session with an announcement still due is kept (the next pass announces, then
   * deletes it): one another instance held while this one announced is not lost unannounced.
   * Bounded work per call: when those sessions hold many messages, a call may delete only
   * some of the messages (purged 0). `more`: call again, work may remain.
   */
  purgeExpired(cutoff: number, limit: number): Promise<{ purged: number; more: boolean }>;
  /** The purge runs on a thread of its own: its batches stall no event loop, they only hold the write lock. */
  readonly purgesOffEventLoop?: boolean;
  /**
   * Moves the marks the counts start from toward `now` and `cutoff` (SQLite's running
   * totals, expiry-counts.ts), by about `limit` sessions; counts are exact whether or not
   * it ran, only cheaper after. `more`: call again. A store that counts otherwise has none.
   */
  moveCountMarks?(now: number, cutoff: number, limit: number): Promise<{ passed: number; more: boolean }>;

  /** The record under (scope, key) unless it expired at or before `now`. */
  getIdempotencyRecord(scope: string, key: string, now: number): Promise<IdempotencyRecord | undefined>;
  /**
   * Replaces the status and body of the live record under (scope, key) written by the
   * request with `fingerprint`: its final answer, known after the write (an agent's reply
   * waited for). False when there is no such record.
   */
  settleIdempotencyRecord(record: Pick<IdempotencyRecord, 'scope' | 'key' | 'fingerprint' | 'status' | 'body'>, now: number): Promise<boolean>;
  /** Deletes up to `limit` records expired at `now`; returns how many. */
  purgeIdempotencyRecords(now: number, limit: number): Promise<number>;

  /** False when a live (unrevoked) key has that name already. */
  insertApiKey(key: ApiKeyRecord): Promise<boolean>;
  /** The key with that hash, revoked or not; never staler than the database (a revoke elsewhere counts at once). */
  findApiKey(keyHash: string): Promise<ApiKeyRecord | undefined>;
  listApiKeys(): Promise<ApiKeyRecord[]>;
  /** Revokes the live key so named (an id before a name), disabling the webhooks it made, in one transaction; undefined when there is none. */
  revokeApiKey(idOrName: string, now: number): Promise<ApiKeyRecord | undefined>;
  /**
   * True once any key was ever created (revoking every key does not open the server).
   * Asked on every request: answered at once, not as a promise, when the store knows
   * without waiting on the database (SQLite always; PostgreSQL once it knows).
   */
  hasApiKeys(): boolean | Promise<boolean>;

  /** The event log, oldest first (see EventQuery). */
  listEvents(query: EventQuery): Promise<EventPage>;
  /** The id of the newest event recorded; undefined while the log is empty. */
  lastEventId(): Promise<string | undefined>;
  /**
   * Calls `listener` after a commit that wrote events (in this process); returns the
   * unsubscribe. A store that knows them passes the events the commit recorded, in log
   * order, as the log reads them back; without them, a listener reads the log.
   */
  onEventsWritten(listener: (committed?: EventRecord[]) => void): () => void;
  /**
   * Announces, in order of due time, up to `limit` announcements due at `now` (the
   * sessions' index on their next due time), in one transaction: `announce` says what
   * each one writes (it changes only what the session announced and its status). A
   * session may announce twice in one call (a warning, then its expiry). Returns how many
   * it announced; fewer than `limit` when nothing more is due.
   */
  announceDue(now: number, limit: number, announce: (session: SessionRecord) => Announcement): Promise<number>;
  /**
   * A batch of announceDue spends its time mostly waiting for the database server (PostgreSQL),
   * not on this event loop: the pump keeps its batches large (due-events.ts, OFF_LOOP_MIN_BATCH).
   */
  readonly announcesOffEventLoop?: boolean;
  /**
   * Deletes about `limit` of the events recorded before `cutoff`, oldest first (a log that
   * keeps events in rows of many deletes whole rows: a few more); returns how many. An
   * event announceDue recorded after its occurredAt is kept from when it was recorded.
   */
  purgeEvents(cutoff: number, limit: number): Promise<number>;

  /**
   * Nothing written, `keyRevoked`, when `createdByKey` names a key revoked before this
   * write: a webhook made by a key revoked under its request would outlive the revocation,
   * which disables the key's webhooks. With `mostForKey`, nothing written, `keyFull`, when
   * `createdByKey` has that many webhooks already: counted in the write, so creates at the
   * same moment (on any instance) do not pass it by their number.
   */
  insertWebhook(webhook: WebhookRecord, carried?: Carried<WebhookRecord>, mostForKey?: number): Promise<WebhookInsertion>;
  /** Oldest first. */
  listWebhooks(): Promise<WebhookRecord[]>;
  getWebhook(id: string): Promise<WebhookRecord | undefined>;
  /** False when there was none. */
  deleteWebhook(id: string): Promise<boolean>;
  /**
   * Records an attempt and the webhook's new delivery state, in one transaction. The state
   * is stored only while `holder` has the webhook's claim (else a holder whose claim ran out
   * under a slow attempt would move the cursor back over what the next holder delivered
   * since), never moves the cursor back, and never clears `disabledAt` (a webhook disabled
   * meanwhile, its key revoked, stays disabled). False when the state was not stored: the
   * webhook deleted meanwhile (then nothing is recorded), or claimed by another holder (the
   * attempt is recorded).
   */
  recordDelivery(delivery: DeliveryRecord, state: Pick<WebhookRecord, 'id' | 'cursor' | 'attempts' | 'nextAttemptAt' | 'failingSince' | 'disabledAt'>, holder: string): Promise<boolean>;
  /** Latest first. */
  listDeliveries(webhookId: string, limit: number): Promise<DeliveryRecord[]>;
  /**
   * Claims the webhook's deliveries for `holder` until `until`, so that one server at a
   * time delivers it (instances on PostgreSQL, processes on one SQLite file). Returns the
   * webhook as stored (its cursor is the truth), or undefined when another holder's claim
   * runs past `now` or the webhook is gone. A claim running out more than twice as far
   * ahead as this one would is taken as run out: made by a clock since set back (a
   * claim's length allows for clocks that far apart). `until` = `now` gives a claim back:
   * the holder's only (another's live claim is no claim of length 0 from a stepped clock).
   * `passed`: the holder read the log through this event id and found nothing the webhook
   * takes; the claim moves the cursor there (never back), so that no read walks those again.
   */
  claimWebhook(id: string, holder: string, now: number, until: number, passed?: string): Promise<WebhookRecord | undefined>;

  /** Throws when the store cannot be read. */
  ping(): Promise<void>;
  /** Commits a small write (as every write does: through the lock); throws when it cannot. */
  probeWrite(): Promise<void>;
  /** Free bytes on the store's file system; undefined when it has none (in memory, remote). Under FULL_DISK_BYTES is full. */
  freeDiskBytes(): Promise<number | undefined>;
  close(): Promise<void>;
}

/**
 * The store cannot serve the request for now (locked, full, read-only, I/O error,
 * corrupt): the request changed nothing and may be retried. Unless `outcomeUnknown`: the
 * connection to a database server was lost (or it stopped answering) while a statement
 * was under way, and a COMMIT sent may have been applied.
 */
export class StorageFault extends Error {
  override name = 'StorageFault';
  constructor(
    message: string,
    options?: ErrorOptions,
    readonly outcomeUnknown = false,
  ) {
    super(message, options);
  }
}
