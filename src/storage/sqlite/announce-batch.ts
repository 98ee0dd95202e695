// The SQLite store's batch of due announcements (warnings, expiries), in one transaction.
import type Database from 'better-sqlite3';
import { announceInDueOrder } from '../due-batch.js';
import type { Announcement, EventInput, SessionRecord } from '../store.js';
import { type SessionTuple, sessionFromTuple } from './rows.js';
import type { prepareStatements } from './statements.js';

/**
 * A batch of due announcements in order of due time (due-batch.ts): the `limit` entries of
 * due_announcements due first, read by one statement with their sessions. A warning moves
 * the session's entry to its expiry and leaves the row alone; an expiry writes the row
 * (what it announced, its status). Neither changes the deadlines the counts keep.
 */
export function announceBatch(
  db: Database.Database,
  statements: ReturnType<typeof prepareStatements>,
  appendEvents: (events: EventInput[], recordedAt?: number) => void,
): (now: number, limit: number, announce: (session: SessionRecord) => Announcement) => number {
  return db.transaction((now: number, limit: number, announce: (session: SessionRecord) => Announcement) => {
    const rows = statements.dueSessions.all({ now, limit });
    if (rows.length === 0) return 0;
    // The tuple's first 16 values are the session's; then its entry's due time and its rowid.
    const entries = rows.map((row) => ({ session: sessionFromTuple(row as unknown as SessionTuple), dueAt: row[16], key: row[17] }));
    const batch = announceInDueOrder(entries, now, limit, announce);
    // Every entry the batch read up to the last it announced.
    statements.dropEntriesThrough.run(batch.lastRead!.dueAt, batch.lastRead!.key);
    const warned: Array<[rowid: number, expiresAt: number]> = [];
    const expiredKept: Array<[rowid: number, status: string]> = [];
    const expiredChanged: Array<[rowid: number, status: string]> = [];
    for (const { key: rowid, read, last } of batch.changed.values()) {
      if (last.announced === 'expiry') (last.status === read.status ? expiredKept : expiredChanged).push([rowid, last.status]);
      else warned.push([rowid, last.expiresAt]);
    }
    if (warned.length > 0) statements.addExpiryEntries.run(JSON.stringify(warned));
    if (expiredKept.length > 0) statements.markExpiryAnnouncedOnly.run(JSON.stringify(expiredKept));
    if (expiredChanged.length > 0) statements.markExpiryAnnounced.run(JSON.stringify(expiredChanged));
    appendEvents(batch.events, now);
    return batch.announced;
  });
}
