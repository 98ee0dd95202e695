// The SQLite store's batch of due announcements (warnings, expiries), in one transaction.
import type Database from 'better-sqlite3';
import { nextDue } from '../../domain/timeout-policy.js';
import type { Announcement, EventInput, SessionRecord } from '../store.js';
import { type DueTuple, type SessionTuple, sessionFromTuple } from './rows.js';
import type { prepareStatements } from './statements.js';

/**
 * A batch of due announcements in order of due time: the `limit` entries of
 * due_announcements due first, read by one statement with their sessions. A session whose
 * next announcement also falls due within the batch's range (a warning, then its expiry,
 * after a jump of the clock) announces it in its place in that order; one due after the
 * batch's last (when the batch is full) is left to the next. A warning moves the session's
 * entry to its expiry and leaves the row alone; an expiry writes the row (what it
 * announced, its status). Neither changes the deadlines the counts keep.
 */
export function announceBatch(
  db: Database.Database,
  statements: ReturnType<typeof prepareStatements>,
  appendEvents: (events: EventInput[], recordedAt?: number) => void,
): (now: number, limit: number, announce: (session: SessionRecord) => Announcement) => number {
  return db.transaction((now: number, limit: number, announce: (session: SessionRecord) => Announcement) => {
    const rows = statements.dueSessions.all({ now, limit });
    if (rows.length === 0) return 0;
    // Every due session was read when the batch is not full: then any follow-up due by now fires here.
    const lastDue = rows.length < limit ? now : rows.at(-1)![16];
    // Per session: its rowid, as read, and as the batch leaves it.
    const moved = new Map<string, { rowid: number; read: SessionRecord; last: SessionRecord }>();
    const events: EventInput[] = [];
    // Follow-ups due within the batch's range, in order of due time.
    const followUps: Array<{ at: number; session: SessionRecord; rowid: number }> = [];
    let announced = 0;
    const fire = (session: SessionRecord, rowid: number) => {
      const announcement = announce(session);
      const next = announcement.session;
      const entry = moved.get(session.id);
      if (entry) entry.last = next;
      else moved.set(session.id, { rowid, read: session, last: next });
      for (const event of announcement.events) events.push(event);
      announced += 1;
      const due = nextDue(next, next.announced)?.at;
      if (due !== undefined && due <= lastDue) {
        let at = followUps.length;
        while (at > 0 && followUps[at - 1]!.at > due) at -= 1;
        followUps.splice(at, 0, { at: due, session: next, rowid });
      }
    };
    const fireFollowUp = () => {
      const { session, rowid } = followUps.shift()!;
      fire(session, rowid);
    };
    let lastRead: DueTuple | undefined;
    for (const row of rows) {
      while (followUps.length > 0 && followUps[0]!.at < row[16] && announced < limit) fireFollowUp();
      if (announced >= limit) break;
      fire(sessionFromTuple(row as unknown as SessionTuple), row[17]); // reads the tuple's first 16 values
      lastRead = row;
    }
    while (followUps.length > 0 && announced < limit) fireFollowUp();
    // Every entry the batch read up to lastRead: the loop announced them all.
    statements.dropEntriesThrough.run(lastRead![16], lastRead![17]);
    const warned: Array<[rowid: number, expiresAt: number]> = [];
    const expiredKept: Array<[rowid: number, status: string]> = [];
    const expiredChanged: Array<[rowid: number, status: string]> = [];
    for (const { rowid, read, last } of moved.values()) {
      if (last.announced === 'expiry') (last.status === read.status ? expiredKept : expiredChanged).push([rowid, last.status]);
      else warned.push([rowid, last.expiresAt]);
    }
    if (warned.length > 0) statements.addExpiryEntries.run(JSON.stringify(warned));
    if (expiredKept.length > 0) statements.markExpiryAnnouncedOnly.run(JSON.stringify(expiredKept));
    if (expiredChanged.length > 0) statements.markExpiryAnnounced.run(JSON.stringify(expiredChanged));
    appendEvents(events, now);
    return announced;
  });
}
