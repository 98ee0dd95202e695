// SQLite's event log: a row per transaction that recorded events, not a row per event.
// A row holds its transaction's events (up to EVENTS_PER_ROW) as a JSON array; its id is
// the id of its first event and the others follow it (id + 1, …), so event ids are the
// consecutive integers they were when each event had a row of its own (migration 22 kept
// them). Why: each row is a statement, a record and a B-tree insert on the event loop; a
// group commit of 20 creates now writes one. Measured (the bench's on / off, 5 rounds):
// create 0.92-0.93×, send 0.94-1.00×, against 0.86-0.99× and 0.83-0.91× with a row per
// event; 10^5 warnings on a stream took 1.07 s of CPU instead of 1.74 s.
//
// The events of a transaction wait in memory until its COMMIT (`flush`, the group commit's
// last step), so a savepoint rolled back takes its events with it (`rollbackTo`).
import type Database from 'better-sqlite3';
import type { EventInput, EventPage, EventQuery, EventRecord } from '../store.js';
import { eventFromStored, eventsOfRow, storedEvent, storedEventData, writtenEvent, type StoredEvent } from './event-data.js';

/** At most this many events in a row (a transaction with more writes several). */
export const EVENTS_PER_ROW = 256;

/**
 * Log ids a read walks per statement. The log has no index by session, agent or user: a
 * filter that matches few events walks many ids, and one statement must not hold the
 * event loop for long; the read yields between.
 */
export const EVENT_SCAN_WINDOW = 10_000;

/**
 * The id the next event gets: the one after the last row's. A row of no events (`n` = 0)
 * stands for the last id given when the log was trimmed to nothing (see `trim`).
 */
export const NEXT_EVENT_ID_SQL = '(SELECT coalesce((SELECT id + max(n, 1) FROM event_log ORDER BY id DESC LIMIT 1), 1))';

/**
 * Ids the backup's copy passes over (skipEventIds). A server restored from the copy gives
 * its events ids beyond those the original gave after the copy (unless it gave more than
 * this), so a webhook receiver that drops repeats by `webhook-id`, or a stream resuming
 * from a `Last-Event-ID`, does not take a new event for one it had.
 */
export const EVENT_IDS_SKIPPED_BY_A_COPY = 1_000_000_000_000;

/**
 * Makes the next event's id `count` further on: a row of no events stands for the last id
 * passed over. A database from before the log (schema version 21 or older) has a table of
 * events numbered by AUTOINCREMENT; its sequence moves instead (migration 22 keeps it). One
 * older still has no events.
 */
export function skipEventIds(db: Database.Database, count: number): void {
  const hasTable = (name: string) => db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !== undefined;
  if (hasTable('event_log')) {
    const next = db.prepare<[], number>(`SELECT ${NEXT_EVENT_ID_SQL}`).pluck().get()!;
    db.transaction(() => {
      // A row of no events at the end (a log trimmed to nothing, or skipped before) moves on:
      // the trim reads past one such row only.
      db.prepare('DELETE FROM event_log WHERE n = 0 AND id = (SELECT max(id) FROM event_log)').run();
      db.prepare("INSERT INTO event_log (id, n, occurred_at, events) VALUES (?, 0, 0, '[]')").run(next + within(next, count) - 1);
    })();
    return;
  }
  if (!hasTable('events')) return;
  const last = db.prepare<[], number>("SELECT max((SELECT coalesce(max(id), 0) FROM events), (SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'events'))").pluck().get()!;
  db.prepare("DELETE FROM sqlite_sequence WHERE name = 'events'").run();
  db.prepare("INSERT INTO sqlite_sequence (name, seq) VALUES ('events', ?)").run(last + within(last + 1, count));
}

/** `count`, or less near the ids JavaScript numbers hold exactly (2^53): at most half of what is left. */
const within = (next: number, count: number) => Math.max(0, Math.min(count, Math.floor((Number.MAX_SAFE_INTEGER - next) / 2)));

interface Pending {
  event: EventInput;
  data: string;
  recordedAt: number;
}

interface LogRow {
  id: number;
  events: string;
}

/** The SQL of a read of the log's rows that may hold events matching the query's filters. */
function readSql(query: EventQuery): string {
  // A row that holds a matching event has its id, agent, user and type, as JSON strings, in its text.
  const mayMatch = [
    query.sessionId !== undefined ? 'instr(events, @sessionId) > 0' : undefined,
    query.agentId !== undefined ? 'instr(events, @agentId) > 0' : undefined,
    query.agentIds !== undefined ? 'EXISTS (SELECT 1 FROM json_each(@agentIds) WHERE instr(events, value) > 0)' : undefined,
    query.userId !== undefined ? 'instr(events, @userId) > 0' : undefined,
    query.types !== undefined ? 'EXISTS (SELECT 1 FROM json_each(@types) WHERE instr(events, value) > 0)' : undefined,
  ].filter(Boolean);
  return `SELECT id, events FROM event_log WHERE id >= @from AND id <= @upTo ${mayMatch.map((sql) => `AND ${sql} `).join('')}ORDER BY id`;
}

function matches(query: EventQuery, [type, , agentId, sessionId, userId]: StoredEvent): boolean {
  return (
    (query.sessionId === undefined || sessionId === query.sessionId) &&
    (query.agentId === undefined || agentId === query.agentId) &&
    (query.agentIds === undefined || query.agentIds.includes(agentId)) &&
    (query.userId === undefined || userId === query.userId) &&
    (query.types === undefined || query.types.includes(type))
  );
}

interface EventLogOptions {
  /** Log ids a read walks per statement (default EVENT_SCAN_WINDOW). */
  scanWindow?: number;
}

export function eventLog(db: Database.Database, { scanWindow = EVENT_SCAN_WINDOW }: EventLogOptions = {}) {
  const statements = {
    nextId: db.prepare<[], number>(`SELECT ${NEXT_EVENT_ID_SQL}`).pluck(),
    insertRow: db.prepare<[number, number, number, string]>('INSERT INTO event_log (id, n, occurred_at, events) VALUES (?, ?, ?, ?)'),
    // A row of no events only keeps the ids going (NEXT_EVENT_ID_SQL).
    lastId: db.prepare<[], number>('SELECT id + n - 1 FROM event_log WHERE n > 0 ORDER BY id DESC LIMIT 1').pluck(),
    // The row that holds the event with this id, or the first after it.
    rowFrom: db.prepare<[number], number>('SELECT coalesce(max(id), 0) FROM event_log WHERE id <= ?').pluck(),
    // The ids between rows may be many (skipEventIds): a read goes from row to row, not id to id.
    rowAfter: db.prepare<[number], number | null>('SELECT min(id) FROM event_log WHERE id > ?').pluck(),
    // The trim walks the log from its oldest row (no index on occurred_at: one B-tree fewer).
    // The column holds when the row's events were recorded (see trim): a rename would break
    // a process of the previous version still running on the file during an upgrade.
    oldestRows: db.prepare<[number], { id: number; n: number; recorded_at: number }>('SELECT id, n, occurred_at AS recorded_at FROM event_log ORDER BY id LIMIT ?'),
    deleteThrough: db.prepare<[number]>('DELETE FROM event_log WHERE id <= ?'),
    anyRow: db.prepare<[], number>('SELECT 1 FROM event_log LIMIT 1').pluck(),
  };
  const reads = new Map<string, Database.Statement<unknown[], LogRow>>();
  const readStatement = (query: EventQuery) => {
    const sql = readSql(query);
    let prepared = reads.get(sql);
    if (!prepared) {
      prepared = db.prepare<unknown[], LogRow>(sql);
      reads.set(sql, prepared);
    }
    return prepared;
  };

  let pending: Pending[] = [];

  return {
    /**
     * Adds events to the open transaction's; `flush` writes them. `recordedAt`: the
     * write's now, when its events may have occurred before (due events announced late).
     */
    append(events: EventInput[], recordedAt = -Infinity): void {
      for (const event of events) pending.push({ event, data: storedEventData(event), recordedAt: Math.max(event.occurredAt, recordedAt) });
    },
    /** Where the open transaction's events stand; `rollbackTo` goes back there (a savepoint rolled back). */
    mark: (): number => pending.length,
    rollbackTo(mark: number): void {
      pending.length = mark;
    },
    /** Drops the open transaction's events (it did not commit). */
    discard(): void {
      pending = [];
    },
    /**
     * Writes the open transaction's events, inside it (the group commit's last step before
     * COMMIT); returns their records with their ids when `record` is set.
     */
    flush(record: boolean): EventRecord[] {
      const written: EventRecord[] = [];
      if (pending.length === 0) return written;
      let id = statements.nextId.get()!;
      for (let from = 0; from < pending.length; from += EVENTS_PER_ROW) {
        const to = Math.min(from + EVENTS_PER_ROW, pending.length);
        let text = '[';
        let recordedAt = -Infinity;
        for (let k = from; k < to; k += 1) {
          const { event, data, recordedAt: eventRecordedAt } = pending[k]!;
          text += (k > from ? ',' : '') + storedEvent(event, data, k > from ? pending[k - 1]!.event : undefined);
          recordedAt = Math.max(recordedAt, eventRecordedAt);
          if (record) written.push(writtenEvent(String(id + k - from), event, data));
        }
        statements.insertRow.run(id, to - from, recordedAt, `${text}]`);
        id += to - from;
      }
      pending = [];
      return written;
    },
    /** The id of the newest event recorded; undefined while the log is empty. */
    lastId(): number | undefined {
      return statements.lastId.get() ?? undefined;
    },
    /** The events after `after` matching the query, oldest first (a read walks windows of ids, yielding between). */
    async read(query: EventQuery, after: number): Promise<EventPage> {
      const statement = readStatement(query);
      const last = statements.lastId.get() ?? 0;
      const parameters = {
        sessionId: query.sessionId === undefined ? null : JSON.stringify(query.sessionId),
        agentId: query.agentId === undefined ? null : JSON.stringify(query.agentId),
        agentIds: query.agentIds === undefined ? null : JSON.stringify(query.agentIds.map((id) => JSON.stringify(id))),
        userId: query.userId === undefined ? null : JSON.stringify(query.userId),
        types: query.types === undefined ? null : JSON.stringify(query.types.map((type) => JSON.stringify(type))),
      };
      const events: EventPage = [];
      const maxChars = query.maxChars ?? Infinity;
      let chars = 0;
      const full = () => events.length >= query.limit || (chars >= maxChars && events.length > 0);
      // What was recorded after this read began comes in the next one.
      for (let from = statements.rowFrom.get(after + 1)!, first = true; from <= last && !full(); first = false) {
        if (!first) await new Promise(setImmediate);
        const upTo = Math.min(from + scanWindow - 1, last);
        // Row by row, until the page is full: a row holds up to EVENTS_PER_ROW events, and
        // reading as many rows as the page wants events parsed up to 256 times the page
        // (a replay of large events held the event loop for seconds).
        for (const row of statement.iterate({ ...parameters, from, upTo }) as IterableIterator<LogRow>) {
          for (const [k, event] of eventsOfRow(row.events).entries()) {
            const id = row.id + k;
            if (id > after && id <= last && events.length < query.limit && matches(query, event)) events.push(eventFromStored(id, event));
          }
          chars += row.events.length;
          if (full()) break;
        }
        from = statements.rowAfter.get(upTo) ?? last + 1;
      }
      // (Perhaps at the log's end: the next read then finds nothing.)
      if (events.length > 0 && events.length < query.limit && chars >= maxChars) events.cutShort = true;
      return events;
    },
    /**
     * Deletes the oldest rows whose events were all recorded before `cutoff`, about `limit`
     * events (whole rows); returns how many events. Rows go in log order, up to the first
     * with an event recorded inside the retention. A due event announced late (after a
     * restart, or once time passed) is kept from when it was recorded, not from its
     * earlier occurredAt: else the next trim took it before any webhook had it.
     */
    trim(cutoff: number, limit: number): number {
      let through: { id: number; n: number; recorded_at: number } | undefined;
      let count = 0;
      // One more row: the first may be a row of no events.
      for (const row of statements.oldestRows.all(limit + 1)) {
        if ((row.n > 0 && row.recorded_at >= cutoff) || count >= limit) break;
        through = row;
        count += row.n;
      }
      if (through === undefined || count === 0) return 0;
      statements.deleteThrough.run(through.id);
      // A log trimmed to nothing keeps a row of no events at the last id it gave: none is given twice.
      if (statements.anyRow.get() === undefined) statements.insertRow.run(through.id + Math.max(through.n, 1) - 1, 0, 0, '[]');
      return count;
    },
  };
}
