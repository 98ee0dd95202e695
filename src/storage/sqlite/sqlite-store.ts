// The SQLite store: one file (or :memory:), WAL, prepared statements, one transaction
// per read-modify-write.
import { statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import {
  type Carried,
  type DeleteAgentOutcome,
  type EventInput,
  type EventRecord,
  type MessageRecord,
  type SessionRecord,
  StorageFault,
  type Store,
  type WebhookInsertion,
} from '../store.js';
import { apiKeyCache } from './api-key-cache.js';
import { eventLog } from './event-log.js';
import { externalCommits } from './external-commits.js';
import { groupCommit, type RunWrite } from './group-commit.js';
import { idempotencyRecords } from './idempotency-records.js';
import { cachedAgents } from './agent-cache.js';
import { countedSession, expiryCounts, WHOLE_INSTANT, type CountedSession } from './expiry-counts.js';
import { filesInPlace, withStorageFaults } from './storage-faults.js';
import { checkpointer } from './checkpointer.js';
import { PURGE_MESSAGES_PER_SESSION, preparePurge, purgeSql, runPurgeBatch } from './purge-batch.js';
import { purgeWorker } from './purge-worker.js';
import { markSql, prepareMarks, runMarkMove } from './mark-batch.js';
import { openDatabase, startWal, type SqliteOptions } from './connection.js';
import { announceBatch } from './announce-batch.js';
import { sessionListing } from './session-listing.js';
import { messageViewPage, prepareStatements } from './statements.js';
import {
  countedOf,
  sessionFromTuple,
  toAgent,
  toApiKey,
  toDelivery,
  toMessageRow,
  toSessionRow,
  toWebhook,
  type ApiKeyRow,
  type SessionRow,
  type WebhookRow,
} from './rows.js';

/** Runs an insert: false when it breaks one of the constraints `codes` (an expected refusal), true when done. */
function insertUnless(codes: string | readonly string[], insert: () => unknown): boolean {
  try {
    insert();
    return true;
  } catch (error) {
    if (error instanceof Database.SqliteError && (typeof codes === 'string' ? error.code === codes : codes.includes(error.code))) return false;
    throw error;
  }
}

/**
 * A move of the count marks that passes fewer sessions than this runs on the store's own
 * connection (a pass every minute passes a minute's worth); more go to the purge worker:
 * 100 a batch on the event loop took ~1 ms (10^5 sessions, loaded), each dirtying the
 * totals of ~100 agents.
 */
const MARKS_ON_LOOP = 100;
/** How often the database's files are checked between writes (a write checks them at its commit). */
const FILES_CHECK_MS = 1000;

export function openSqliteStore(path: string, options: SqliteOptions = {}): Store {
  const db = openDatabase(path, options);
  if (path !== ':memory:') startWal(db);
  const commits = externalCommits(db, path);
  const keys = apiKeyCache(commits);

  const statements = prepareStatements(db);

  const counts = expiryCounts(db);
  const idempotency = idempotencyRecords(db);
  const agentCache = cachedAgents(commits, (id) => {
    const row = statements.getAgent.get(id);
    return row && toAgent(row);
  });

  const log = eventLog(db, { scanWindow: options.eventScanWindow });
  const eventListeners = new Set<(committed?: EventRecord[]) => void>();
  let eventsWritten = false;
  // The events the batch wrote, with their ids (known at its flush), and those of the last
  // commit: handed to the listeners as written, so that a reader of the log need not read them back.
  let recorded: EventRecord[] = [];
  let committed: EventRecord[] = [];
  // With no listener, events are not recorded (nobody to hand them to). A listener that
  // comes later is told to read the log until the commits it missed have been handed over.
  let unrecorded = false;
  let committedUnrecorded = false;
  function appendEvents(events: EventInput[], recordedAt?: number): void {
    if (events.length === 0) return;
    log.append(events, recordedAt);
    eventsWritten = true;
  }
  /** The group commit's last step: the batch's events, written in its transaction. */
  function flushEvents(): void {
    if (log.mark() === 0) return;
    const keep = eventListeners.size > 0;
    recorded = log.flush(keep);
    if (!keep) unrecorded = true;
  }

  /** Writes the rows a write carries, in the write's own transaction (call it inside). */
  function writeCarried<T>(carried: Carried<T> | undefined, written: T): void {
    appendEvents(carried?.events?.(written) ?? []);
    const record = carried?.idempotency?.(written);
    // Thrown, IdempotencyKeyTaken rolls the whole write back with it.
    if (record) idempotency.insert(record);
  }

  /** Rewrites a session read as `before` (none: nothing to rewrite), keeping the counts. */
  function updateSession(before: CountedSession | undefined, after: SessionRow): void {
    if (statements.updateSession.run(after).changes > 0 && before) counts.noteChange(before, after);
  }

  const deleteAgent = db.transaction((id: string, force: boolean, now: number, purgeCutoff: number, carried?: Carried<DeleteAgentOutcome>): DeleteAgentOutcome => {
    const agent = statements.getAgent.get(id);
    if (!agent) return { kind: 'not_found' };
    const active = statements.countActiveSessionsOfAgent.get({ agentId: id, now })?.n ?? 0;
    if (active > 0 && !force) return { kind: 'has_active_sessions', activeSessions: active };
    const sessions = statements.retainedSessionsOfAgent.all({ agentId: id, purgeCutoff }).map(sessionFromTuple);
    for (const session of statements.countedSessionsOfAgent.all(id)) counts.note(session, -1);
    statements.deleteSessionsOfAgent.run(id);
    statements.deleteAgent.run(id);
    const outcome: DeleteAgentOutcome = { kind: 'deleted', sessions, agent: toAgent(agent) };
    writeCarried(carried, outcome);
    return outcome;
  });

  const modifySession = db.transaction(
    (id: string, change: (current: SessionRecord | undefined) => SessionRecord, carried?: Carried<SessionRecord>) => {
      const row = statements.getSession.get(id);
      const next = change(row && sessionFromTuple(row));
      updateSession(row && countedOf(row), toSessionRow(next));
      writeCarried(carried, next);
      return next;
    },
  );

  const announceDue = announceBatch(db, statements, appendEvents);

  const appendMessage = db.transaction(
    <T extends { session: SessionRecord; message: MessageRecord }>(
      sessionId: string,
      build: (current: SessionRecord | undefined, lastPosition: number | undefined) => T,
      carried: Carried<T> | undefined,
    ): T => {
      const row = statements.getSession.get(sessionId);
      const last = row ? (statements.lastMessagePosition.get(sessionId)?.position ?? undefined) : undefined;
      const built = build(row && sessionFromTuple(row), last);
      updateSession(row && countedOf(row), toSessionRow(built.session));
      statements.insertMessage.run(toMessageRow(built.message));
      writeCarried(carried, built);
      return built;
    },
  );

  const deleteSession = db.transaction(
    (id: string, check: (current: SessionRecord | undefined) => SessionRecord, carried?: Carried<SessionRecord>) => {
      const row = statements.getSession.get(id);
      const deleted = check(row && sessionFromTuple(row));
      if (row && statements.deleteSession.run(id).changes > 0) counts.note(countedOf(row), -1);
      writeCarried(carried, deleted);
    },
  );

  /** The count marks moved here, on the store's connection (few sessions to pass, or an in-memory database). */
  const markStatements = prepareMarks(db, markSql());
  const moveMarksHere = db.transaction((now: number, cutoff: number, limit: number) => runMarkMove(markStatements, now, cutoff, limit, WHOLE_INSTANT)).immediate;
  /** How many sessions the marks would pass, counted up to `upTo`. */
  function passable(now: number, cutoff: number, upTo: number): number {
    const m = statements.countMarks.get()!;
    const ahead = (fromAt: number, fromRow: number, toAt: number, limit: number) => (toAt < fromAt ? 0 : statements.passable.get({ fromAt, fromRow, toAt, limit })!);
    const cut = ahead(m.cut_mark, m.cut_row, cutoff, upTo);
    return cut + ahead(m.now_mark, m.now_row, now, upTo - cut);
  }

  const listing = sessionListing(db, statements);

  // Checkpoints run on a worker thread, never inside a group commit's COMMIT (an in-memory database has no WAL).
  const checkpoints = path === ':memory:' ? undefined : checkpointer(db, path, options.walCapBytes);
  // The purge runs on a worker thread with its own connection (purge-worker.ts); an in-memory database runs it here.
  const purger = path === ':memory:' ? undefined : purgeWorker(path, options.synchronous ?? 'normal');
  const purgeStatements = purger ? undefined : preparePurge(db, purgeSql());
  const filesMoved = filesInPlace(path);
  /** The WAL was deleted or replaced: what it holds is to be copied into the database file, outside any transaction. */
  let walToSave = false;
  /** Throws a StorageFault when the database file or its WAL is not the one opened (two stats). */
  function assertFilesInPlace(): void {
    const moved = filesMoved();
    if (!moved) return;
    if (moved.file === 'wal') walToSave = true;
    saveWal();
    throw new StorageFault(moved.fault);
  }
  /**
   * This connection still has the deleted WAL open: a checkpoint copies the writes it holds
   * (acknowledged, maybe long ago) into the database file, where a restart finds them.
   */
  function saveWal(): void {
    if (!walToSave || db.inTransaction || !db.open) return;
    walToSave = false;
    try {
      db.pragma('wal_checkpoint(TRUNCATE)');
    } catch {
      walToSave = true; // tried again at the next check
    }
  }
  // Checked between writes too: writes acknowledged before the WAL went are saved even when no write comes after.
  const filesWatch =
    path === ':memory:'
      ? undefined
      : setInterval(() => {
          if (filesMoved()?.file !== 'wal') return;
          walToSave = true;
          saveWal();
        }, FILES_CHECK_MS);
  filesWatch?.unref();
  const commitWrite = groupCommit(db, {
    lockWaitMs: options.lockWaitMs,
    beforeCommit: () => {
      assertFilesInPlace(); // two stats a commit, not a write
      counts.flush();
      flushEvents();
    },
    afterAbort: () => {
      saveWal();
      counts.discard();
      log.discard();
      idempotency.discard();
      recorded = [];
      unrecorded = false;
    },
    afterCommit: () => {
      commits.tookOwnCommit();
      idempotency.committed();
      checkpoints?.afterCommit();
      for (const event of recorded) committed.push(event);
      recorded = [];
      if (unrecorded) committedUnrecorded = true;
      unrecorded = false;
    },
    holdWhile: checkpoints && (() => checkpoints.truncating()),
  });
  /** The purge worker's last batch left more to purge (the pass goes on). */
  let purgeLeft = false;
  /** The purge worker stopped (the pass is done), and checkpoints at their usual pace again. */
  async function stopPurger(): Promise<void> {
    purgeLeft = false;
    try {
      await purger?.stop();
    } finally {
      checkpoints?.purging(false);
    }
  }
  /** Writes not yet settled: closing waits for them, and for nothing else (not for another process's lock). */
  const unsettled = new Set<Promise<unknown>>();
  /** A write, then word to the listeners of the event log once it has committed events. */
  const write: RunWrite = async (work) => {
    const committing = commitWrite(() => {
      // A write that throws is rolled back to its savepoint: so are its notes.
      const mark = counts.mark();
      const eventsBefore = log.mark();
      const recordsBefore = idempotency.mark();
      try {
        return work();
      } catch (error) {
        counts.rollbackTo(mark);
        log.rollbackTo(eventsBefore);
        idempotency.rollbackTo(recordsBefore);
        throw error;
      }
    });
    unsettled.add(committing);
    try {
      return await committing;
    } finally {
      unsettled.delete(committing);
      if (eventsWritten) {
        eventsWritten = false;
        const events = committedUnrecorded ? [] : committed;
        committed = [];
        committedUnrecorded = false;
        for (const listener of eventListeners) listener(events.length > 0 ? events : undefined);
      }
    }
  };

  return withStorageFaults({
    purgesOffEventLoop: purger !== undefined,
    async insertAgent(agent, carried) {
      const row = { id: agent.id, name: agent.name, bio: agent.bio ?? null, settings: JSON.stringify(agent.settings), created_at: agent.createdAt };
      return write(() => {
        if (!insertUnless('SQLITE_CONSTRAINT_PRIMARYKEY', () => statements.insertAgent.run(row))) return false;
        writeCarried(carried, agent);
        return true;
      });
    },
    async getAgent(id) {
      return agentCache.get(id);
    },
    async listAgents() {
      return statements.listAgents.all().map(toAgent);
    },
    async deleteAgent(id, { force, now, purgeCutoff }, carried) {
      agentCache.forget(id);
      return write(() => deleteAgent(id, force, now, purgeCutoff, carried)).finally(() => agentCache.forget(id));
    },
    async insertSession(session, carried) {
      const row = toSessionRow(session);
      return write(() => {
        let rowid = 0;
        if (!insertUnless('SQLITE_CONSTRAINT_FOREIGNKEY', () => (rowid = Number(statements.insertSession.run(row).lastInsertRowid)))) return false;
        counts.note(countedSession(row, rowid), 1);
        writeCarried(carried, session);
        return true;
      });
    },
    async getSession(id) {
      const row = statements.getSession.get(id);
      return row && sessionFromTuple(row);
    },
    async modifySession(id, change, carried) {
      return write(() => modifySession(id, change, carried));
    },
    async deleteSession(id, check, carried) {
      return write(() => deleteSession(id, check, carried));
    },
    async appendMessage(sessionId, build, carried) {
      // db.transaction() does not keep the generic: the value is what `build` returned.
      return write(() => appendMessage(sessionId, build, carried as Carried<unknown>) as ReturnType<typeof build>);
    },
    async listMessageViews(query) {
      return messageViewPage(statements, query);
    },
    async listSessions(query) {
      return listing.listSessions(query);
    },
    async countSessions(instants) {
      return listing.countSessions(instants);
    },
    async moveCountMarks(now, cutoff, limit) {
      // Outside the group commit, between two of its batches: no notes are pending, so the
      // sessions a mark passes are all in the table. Another connection holding the write
      // lock: the marks move on the next pass (the counts stay exact meanwhile).
      await checkpoints?.truncating();
      // A worker's new connection would start a WAL of its own beside a deleted one.
      assertFilesInPlace();
      try {
        if (!purger || passable(now, cutoff, MARKS_ON_LOOP) < MARKS_ON_LOOP) return moveMarksHere(now, cutoff, limit);
        // Many to pass: on the purge worker, off the event loop (the thread goes with the pass when nothing is left to purge).
        checkpoints?.purging(true);
        const moved = await purger.moveMarks(now, cutoff, limit);
        checkpoints?.afterCommit(purger.walBytes());
        if (!moved.more && statements.anyPurgeable.get(cutoff) === undefined) await stopPurger();
        return moved;
      } catch (error) {
        if (error instanceof Database.SqliteError && error.code.startsWith('SQLITE_BUSY')) return { passed: 0, more: false };
        throw error;
      }
    },
    async purgeExpired(cutoff, limit) {
      if (!purger) return write(() => runPurgeBatch(purgeStatements!, cutoff, limit, PURGE_MESSAGES_PER_SESSION));
      assertFilesInPlace();
      // Between batches of a pass, the worker's last answer says whether more are left: no read
      // here (on the event loop, it could wait on the checkpointer's locks).
      if (!purgeLeft && statements.anyPurgeable.get(cutoff) === undefined) {
        // A thread left by a pass that ended early (a failure, the sweeper stopped) goes now.
        await stopPurger();
        return { purged: 0, more: false };
      }
      // The worker's commits grow the WAL too: they wait for it to be emptied, and may ask for it.
      await checkpoints?.truncating();
      checkpoints?.purging(true);
      const purged = await purger.purge(cutoff, limit);
      purgeLeft = purged.more;
      checkpoints?.afterCommit(purger.walBytes());
      // Nothing more to purge for now: the thread (and its memory) goes until the next pass needs it.
      if (!purged.more) await stopPurger();
      return purged;
    },
    async getIdempotencyRecord(scope, key, now) {
      return idempotency.get(scope, key, now);
    },
    async settleIdempotencyRecord(record, now) {
      return write(() => idempotency.settle(record, now));
    },
    async purgeIdempotencyRecords(now, limit) {
      return write(() => idempotency.purge(now, limit));
    },
    async insertApiKey(key) {
      const row: ApiKeyRow = {
        id: key.id,
        name: key.name,
        key_hash: key.keyHash,
        admin: key.admin ? 1 : 0,
        agent_ids: JSON.stringify(key.agentIds),
        created_at: key.createdAt,
        revoked_at: key.revokedAt ?? null,
      };
      return write(() => {
        keys.clear();
        // A live key of that name (the unique index), or a key with that id already.
        return insertUnless(['SQLITE_CONSTRAINT_UNIQUE', 'SQLITE_CONSTRAINT_PRIMARYKEY'], () => statements.insertApiKey.run(row));
      });
    },
    async findApiKey(keyHash) {
      return keys.findApiKey(keyHash, () => {
        const row = statements.findApiKey.get(keyHash);
        return row && toApiKey(row);
      });
    },
    async listApiKeys() {
      return statements.listApiKeys.all().map(toApiKey);
    },
    async revokeApiKey(idOrName, now) {
      return write(() => {
        const row = statements.liveApiKey.get({ idOrName });
        if (!row) return undefined;
        keys.clear();
        statements.revokeApiKey.run({ id: row.id, now });
        statements.disableWebhooksOfKey.run({ id: row.id, now });
        return toApiKey({ ...row, revoked_at: now });
      });
    },
    hasApiKeys() {
      return keys.hasApiKeys(() => statements.hasApiKeys.get() === 1);
    },
    async listEvents(query) {
      const after = query.after === undefined ? 0 : Number(query.after);
      return log.read(query, query.sessionId === undefined ? after : Math.max(after, (statements.firstEventIdOf.get(query.sessionId) ?? 1) - 1));
    },
    async lastEventId() {
      const id = log.lastId();
      return id === undefined ? undefined : String(id);
    },
    onEventsWritten(listener) {
      eventListeners.add(listener);
      return () => eventListeners.delete(listener);
    },
    async announceDue(now, limit, announce) {
      // Most ticks find nothing due: they take no write lock then.
      if (statements.anyDue.get(now) === undefined) return 0;
      return write(() => announceDue(now, limit, announce));
    },
    async purgeEvents(cutoff, limit) {
      return write(() => log.trim(cutoff, limit));
    },
    async insertWebhook(webhook, carried, mostForKey) {
      const row: WebhookRow = {
        id: webhook.id,
        url: webhook.url,
        secret: webhook.secret,
        types: webhook.types ? JSON.stringify(webhook.types) : null,
        agent_id: webhook.agentId ?? null,
        agent_ids: webhook.agentIds ? JSON.stringify(webhook.agentIds) : null,
        created_at: webhook.createdAt,
        cursor: Number(webhook.cursor),
        attempts: webhook.attempts,
        next_attempt_at: webhook.nextAttemptAt,
        failing_since: webhook.failingSince ?? null,
        disabled_at: webhook.disabledAt ?? null,
        created_by_key: webhook.createdByKey ?? null,
      };
      const key = webhook.createdByKey;
      return write((): WebhookInsertion => {
        if (key !== undefined && statements.keyRevoked.get(key) !== undefined) return 'keyRevoked';
        if (key !== undefined && mostForKey !== undefined && statements.webhooksOfKey.get(key)! >= mostForKey) return 'keyFull';
        statements.insertWebhook.run(row);
        writeCarried(carried, webhook);
        return 'inserted';
      });
    },
    async listWebhooks() {
      return statements.listWebhooks.all().map(toWebhook);
    },
    async getWebhook(id) {
      const row = statements.getWebhook.get(id);
      return row && toWebhook(row);
    },
    async deleteWebhook(id) {
      return write(() => statements.deleteWebhook.run(id).changes > 0);
    },
    async recordDelivery(delivery, state, holder) {
      return write(() => {
        const moved = statements.updateWebhookState.run({
          id: state.id,
          holder,
          cursor: Number(state.cursor),
          attempts: state.attempts,
          next_attempt_at: state.nextAttemptAt,
          failing_since: state.failingSince ?? null,
          disabled_at: state.disabledAt ?? null,
        });
        if (moved.changes === 0 && !statements.getWebhook.get(state.id)) return false; // deleted meanwhile
        statements.insertDelivery.run({
          webhook_id: delivery.webhookId,
          event_id: Number(delivery.eventId),
          attempt: delivery.attempt,
          attempted_at: delivery.attemptedAt,
          status_code: delivery.statusCode ?? null,
          error: delivery.error ?? null,
          next_retry_at: delivery.nextRetryAt ?? null,
        });
        statements.trimDeliveries.run(delivery.webhookId, delivery.webhookId);
        return moved.changes > 0;
      });
    },
    async listDeliveries(webhookId, limit) {
      return statements.listDeliveries.all(webhookId, limit).map(toDelivery);
    },
    async claimWebhook(id, holder, now, until, passed) {
      const claimed = await write(() => statements.claimWebhook.get({ id, holder, now, until, passed: passed === undefined ? null : Number(passed) }));
      return claimed && toWebhook(claimed);
    },
    async ping() {
      statements.ping.get();
    },
    async probeWrite() {
      await write(() => statements.probeWrite.run(Date.now()));
    },
    async freeDiskBytes() {
      if (path === ':memory:') return undefined;
      const { bavail, bsize } = statfsSync(dirname(path));
      return bavail * bsize;
    },
    async close() {
      if (!db.open) return;
      clearInterval(filesWatch);
      // Writes still queued commit first (or fail, if the storage does).
      await Promise.allSettled([...unsettled]);
      await purger?.stop().catch(() => undefined);
      await checkpoints?.stop();
      commits.close();
      db.close();
    },
  });
}
