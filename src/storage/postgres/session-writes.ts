// The PostgreSQL store's writes to one session: those arriving together (batchedBy, by
// session) share one transaction, which locks the session once and applies them in order.
import type pg from 'pg';
import { IdempotencyKeyTaken, type Carried, type EventInput, type IdempotencyRecord, type MessageRecord, type SessionRecord } from '../store.js';
import { Failed, batchedBy } from './batches.js';
import { MESSAGE_INSERT, SESSION_UPDATE, sessionUpdateValues } from './queries.js';
import { type SessionRow, messageValues, toSession } from './rows.js';
import { runTogether, withLiterals } from './round-trips.js';
import type { Client, Transactions } from './transactions.js';

/** Writes to one session in one transaction at most. */
const MAX_SESSION_WRITES = 100;
/** What appendMessage builds. */
export type Appended = { session: SessionRecord; message: MessageRecord };
/** A write to one session: a change of it (modifySession) or a message appended (appendMessage). */
export type SessionWrite =
  | { id: string; modify: (current: SessionRecord | undefined) => SessionRecord; append?: undefined; carried: Carried<SessionRecord> | undefined }
  | { id: string; modify?: undefined; append: (current: SessionRecord | undefined, last: number | undefined) => Appended; carried: Carried<Appended> | undefined };
/** What one write to a session came to. */
type Outcome = { value: SessionRecord | Appended } | { error: unknown };
/** Thrown by a batch of writes to a session that all threw: the transaction rolls back. */
class NothingWritten {
  constructor(readonly outcomes: Outcome[]) {}
}

const LOCK_SESSION = 'SELECT * FROM sessions WHERE id = $1 FOR UPDATE';

/** The session, its row locked to the end of the transaction (in one message with the BEGIN when that is pending). */
export async function lockedSession(client: Client, id: string): Promise<SessionRecord | undefined> {
  const [{ rows }] = (await runTogether(client, [[LOCK_SESSION, [id]]])) as [pg.QueryResult<SessionRow>];
  return rows[0] && toSession(rows[0]);
}

/**
 * The writes to one session arriving together (batchedBy, by session): one transaction
 * locks the session once and applies them in order, each to what the one before made;
 * one that throws (or whose idempotency key is taken) fails alone and changes nothing; a
 * database error fails them all (the transaction is aborted).
 * The session as the last one left it, their messages and their events go with the
 * COMMIT.
 */
export function sessionWriter({ transaction, sendAtCommit, appendEvents, insertIdempotencyRecord }: Transactions, notifyListeners: () => void) {
  return batchedBy<SessionWrite, SessionRecord | Appended>(
    (write) => write.id,
    async (writes) => {
      const id = writes[0]!.id;
      const events: EventInput[] = [];
      const outcomes = await transaction(async (client): Promise<Outcome[]> => {
        const appends = writes.some((write) => write.append);
        const [locked, maxPosition] = (await runTogether(client, [
          [LOCK_SESSION, [id]],
          ...(appends ? [['SELECT max(position) AS position FROM messages WHERE session_id = $1', [id]] as [string, unknown[]]] : []),
        ])) as [pg.QueryResult<SessionRow>, pg.QueryResult<{ position: number | null }> | undefined];
        let current = locked.rows[0] && toSession(locked.rows[0]);
        let last = current ? (maxPosition?.rows[0]?.position ?? undefined) : undefined;
        const messages: MessageRecord[] = [];
        const done: Outcome[] = [];
        for (const write of writes) {
          let value: SessionRecord | Appended;
          let itsEvents: EventInput[];
          let record: IdempotencyRecord | undefined;
          try {
            value = write.modify ? write.modify(current) : write.append(current, last);
            const carried = write.carried as Carried<SessionRecord | Appended> | undefined;
            itsEvents = carried?.events?.(value) ?? [];
            record = carried?.idempotency?.(value);
          } catch (error) {
            done.push({ error });
            continue;
          }
          try {
            // Last, as nothing after it may fail: a keyed write's record, which needs an
            // answer (a round trip, under the session's lock).
            await insertIdempotencyRecord(client, record);
          } catch (error) {
            // Any other failure is the database's, and it has aborted the transaction: the
            // batch fails with it (a timeout or a deadlock: 503), not at the COMMIT (25P02: a 500).
            if (!(error instanceof IdempotencyKeyTaken)) throw error;
            done.push({ error });
            continue;
          }
          events.push(...itsEvents);
          if ('message' in value) {
            messages.push(value.message);
            [current, last] = [value.session, value.message.position];
          } else {
            current = value;
          }
          done.push({ value });
        }
        // Every write threw: nothing to write, and the transaction is rolled back.
        if (!done.some((outcome) => 'value' in outcome)) throw new NothingWritten(done);
        sendAtCommit(client, withLiterals(client, SESSION_UPDATE, sessionUpdateValues(current!)));
        for (const message of messages) sendAtCommit(client, withLiterals(client, MESSAGE_INSERT, messageValues(message)));
        await appendEvents(client, events);
        return done;
      }).catch((error: unknown) => {
        if (error instanceof NothingWritten) return error.outcomes;
        throw error;
      });
      if (events.length > 0) notifyListeners();
      return outcomes.map((outcome) => ('value' in outcome ? outcome.value : new Failed(outcome.error)));
    },
    MAX_SESSION_WRITES,
  );
}
