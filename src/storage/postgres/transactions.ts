// The PostgreSQL store's transactions: one connection each, statements that need no
// answer sent with the COMMIT (one round trip), the rows a write carries (an idempotency
// record, events) written in it, and the event log's writers serialized on an advisory
// lock so that event ids follow commit order.
import type pg from 'pg';
import { dataJson } from '../../events/event-records.js';
import { type Carried, type EventInput, IdempotencyKeyTaken, type IdempotencyRecord } from '../store.js';
import { beginPending, run, runTogether } from './round-trips.js';
import { isNoAnswer } from './storage-faults.js';

/** Advisory lock keys: event writers, serialized so that event ids follow commit order. */
export const EVENTS_LOCK = 724_011_302;
/** With a key's id hashed (the two-key form: its own space): the webhook creates of one key, counted one at a time. */
export const WEBHOOKS_OF_KEY_LOCK = 724_011_303;
/**
 * Events one statement writes at most: more than the due-event pump's batches, so only a
 * rare transaction (an agent deleted with its sessions) writes several.
 */
const EVENTS_PER_STATEMENT = 2000;
/** The NOTIFY channel that wakes every instance's event readers. */
export const EVENTS_CHANNEL = 'sessions_api_events';

export type Client = pg.PoolClient;

export interface Transactions {
  transaction<T>(work: (client: Client) => Promise<T>): Promise<T>;
  /** A write transaction; listeners of the event log are told once it committed events. */
  write<T>(work: (client: Client, wroteEvents: () => void) => Promise<T>): Promise<T>;
  /** Adds a statement the transaction sends with its COMMIT (it needs no answer). */
  sendAtCommit(client: Client, statement: string): void;
  appendEvents(client: Client, events: EventInput[], recordedAt?: number): Promise<boolean>;
  writeCarried<T>(client: Client, carried: Carried<T> | undefined, written: T): Promise<boolean>;
  insertIdempotencyRecord(client: Client, record: IdempotencyRecord | undefined): Promise<void>;
  /** Statements of a read in one message (values as literals), on a connection of the pool. */
  readTogether(statements: Array<[text: string, values: unknown[]]>): Promise<pg.QueryResult[]>;
}

/** `notifyListeners`: tells this instance's readers of the event log that events were committed. */
export function postgresTransactions(pool: pg.Pool, notifyListeners: () => void): Transactions {
  /** Statements a transaction sends in one message with its COMMIT (the session insert, appendEvents). */
  const atCommit = new WeakMap<Client, string[]>();
  const sendAtCommit = (client: Client, statement: string) => atCommit.set(client, [...(atCommit.get(client) ?? []), statement]);

  /**
   * One transaction on one connection; rolled back when `work` throws. Its BEGIN is sent
   * just before its first statement that needs an answer; a transaction of statements that
   * need none (`atCommit`) is one message, BEGIN to COMMIT: one round trip.
   */
  async function transaction<T>(work: (client: Client) => Promise<T>): Promise<T> {
    const client = await pool.connect();
    let broken: Error | undefined;
    beginPending.add(client);
    try {
      const result = await work(client);
      const begin = beginPending.delete(client) ? ['BEGIN'] : [];
      // One round trip: when a statement fails, PostgreSQL skips the rest and the COMMIT.
      await client.query([...begin, ...(atCommit.get(client) ?? []), 'COMMIT'].join(';\n'));
      return result;
    } catch (error) {
      // Nothing was sent when BEGIN is still pending. A connection that did not answer
      // would not answer the ROLLBACK either: dropped, it ends the transaction.
      if (isNoAnswer(error)) broken = error as Error;
      else if (!beginPending.has(client)) await client.query('ROLLBACK').catch((rollbackFailed: Error) => {
        broken = rollbackFailed;
      });
      throw error;
    } finally {
      atCommit.delete(client);
      beginPending.delete(client);
      client.release(broken);
    }
  }

  /**
   * Whether the transaction writes events (then listeners are told after it commits). One
   * statement: the advisory lock (held to the commit, so ids follow commit order), the
   * rows, and the NOTIFY sent at commit (repeats within a transaction are sent once). It
   * goes in the COMMIT's message, values as literals (a multi-statement message takes no
   * parameters): the lock is then held for the server's work only, never across a round
   * trip to this process, whose event loop may be busy. Held across a round trip, it
   * capped every instance together at a few hundred event-writing transactions a second.
   */
  async function appendEvents(client: Client, events: EventInput[], recordedAt?: number): Promise<boolean> {
    if (events.length === 0) return false;
    const text = (value: string | undefined) => (value === undefined ? 'NULL' : client.escapeLiteral(value.replaceAll('\u0000', '\uFFFD')));
    // NULL: recorded when it occurred. Set for due events announced late (see purgeEvents).
    const recorded = (e: EventInput) => (recordedAt === undefined || recordedAt <= e.occurredAt ? 'NULL::bigint' : `${Math.trunc(recordedAt)}::bigint`);
    const row = (e: EventInput) =>
      `(${text(e.type)}, ${Math.trunc(e.occurredAt)}::bigint, ${recorded(e)}, ${text(e.agentId)}, ${text(e.sessionId)}, ${text(e.userId)}, ${text(dataJson(e))}::json)`;
    const notify = `pg_notify(${client.escapeLiteral(EVENTS_CHANNEL)}, '')`;
    if (events.length > EVENTS_PER_STATEMENT) {
      // Many events (an agent deleted with its sessions): one statement of them all could
      // pass the length a string may have. The lock is taken now and held across the
      // statements' round trips: slower for the other writers, for this rare transaction only.
      await run(client, 'SELECT pg_advisory_xact_lock($1)', [EVENTS_LOCK]);
      for (let from = 0; from < events.length; from += EVENTS_PER_STATEMENT) {
        await client.query(`INSERT INTO events (type, occurred_at, recorded_at, agent_id, session_id, user_id, data) VALUES ${events.slice(from, from + EVENTS_PER_STATEMENT).map(row).join(', ')}`);
      }
      sendAtCommit(client, `SELECT ${notify}`);
      return true;
    }
    const statement = `INSERT INTO events (type, occurred_at, recorded_at, agent_id, session_id, user_id, data)
       SELECT e.* FROM (SELECT pg_advisory_xact_lock(${EVENTS_LOCK})) AS locked,
         (VALUES ${events.map(row).join(', ')}) AS e (type, occurred_at, recorded_at, agent_id, session_id, user_id, data)
       RETURNING ${notify}`;
    sendAtCommit(client, statement);
    return true;
  }

  /** Writes the rows a write carries, in its transaction; events last (the event lock is always the last lock taken). */
  async function writeCarried<T>(client: Client, carried: Carried<T> | undefined, written: T): Promise<boolean> {
    await insertIdempotencyRecord(client, carried?.idempotency?.(written));
    return appendEvents(client, carried?.events?.(written) ?? []);
  }

  /** Inserts the record, if any; a key holding a live record throws IdempotencyKeyTaken (nothing written), an expired one makes way. */
  async function insertIdempotencyRecord(client: Client, record: IdempotencyRecord | undefined): Promise<void> {
    if (!record) return;
    const inserted = await run(client, 
      `INSERT INTO idempotency_records (scope, key, fingerprint, status, body, created_at, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (scope, key) DO UPDATE SET fingerprint = excluded.fingerprint, status = excluded.status,
         body = excluded.body, created_at = excluded.created_at, expires_at = excluded.expires_at
       WHERE idempotency_records.expires_at <= excluded.created_at`,
      [record.scope, record.key, record.fingerprint, record.status, record.body, record.createdAt, record.expiresAt],
    );
    if (inserted.rowCount === 0) throw new IdempotencyKeyTaken();
  }

  /** A write transaction; listeners of the event log are told once it committed events. */
  async function write<T>(work: (client: Client, wroteEvents: () => void) => Promise<T>): Promise<T> {
    let events = false;
    const result = await transaction((client) => work(client, () => (events = true)));
    if (events) notifyListeners();
    return result;
  }

  /** Statements of a read in one message (values as literals), on a connection of the pool. */
  async function readTogether(statements: Array<[text: string, values: unknown[]]>): Promise<pg.QueryResult[]> {
    const client = await pool.connect();
    let failed: Error | undefined;
    try {
      return await runTogether(client, statements);
    } catch (error) {
      failed = error as Error;
      throw error;
    } finally {
      // As pool.query does: a connection whose statement failed is not reused.
      client.release(failed);
    }
  }

  return { transaction, write, sendAtCommit, appendEvents, writeCarried, insertIdempotencyRecord, readTogether };
}
