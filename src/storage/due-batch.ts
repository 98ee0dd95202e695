// A batch of due announcements (warnings, expiries) in order of due time, as both stores
// make it: the store reads up to `limit` sessions in order of their next due time, this
// announces them, and the store writes each session as the batch leaves it and the events.
import { nextDue } from '../domain/timeout-policy.js';
import type { Announcement, EventInput, SessionRecord } from './store.js';

/** A session read as due, at `dueAt`; `key` is the store's own (a rowid, say). */
export interface DueEntry<K> {
  session: SessionRecord;
  dueAt: number;
  key: K;
}

export interface DueBatch<K> {
  announced: number;
  /** In order of due time. */
  events: EventInput[];
  /** Per session announced (by id): its key, as read, and as the batch leaves it. */
  changed: Map<string, { key: K; read: SessionRecord; last: SessionRecord }>;
  /** The last entry announced: the entries before it were all announced, those after it none. */
  lastRead: DueEntry<K> | undefined;
}

/**
 * Announces `entries` (in order of due time, at most `limit`) in that order. A session whose
 * next announcement also falls due within the batch's range (a warning, then its expiry,
 * after a jump of the clock) announces it in its place in that order; one due after the
 * batch's last entry (when the batch is full, sessions not read may be due before it) is
 * left to the next batch. At most `limit` announcements, follow-ups included.
 */
export function announceInDueOrder<K>(entries: Array<DueEntry<K>>, now: number, limit: number, announce: (session: SessionRecord) => Announcement): DueBatch<K> {
  const batch: DueBatch<K> = { announced: 0, events: [], changed: new Map(), lastRead: undefined };
  if (entries.length === 0) return batch;
  // Follow-ups due by now, in order of due time. One fires before the first entry due after
  // it; those left when the entries are done fire only while the batch has room, which a
  // full batch has not (a session not read may be due before them: the next batch's).
  const followUps: Array<{ at: number; session: SessionRecord; key: K }> = [];
  const fire = (session: SessionRecord, key: K) => {
    const announcement = announce(session);
    const next = announcement.session;
    const entry = batch.changed.get(session.id);
    if (entry) entry.last = next;
    else batch.changed.set(session.id, { key, read: session, last: next });
    for (const event of announcement.events) batch.events.push(event);
    batch.announced += 1;
    const due = nextDue(next, next.announced)?.at;
    if (due !== undefined && due <= now) {
      let at = followUps.length;
      while (at > 0 && followUps[at - 1]!.at > due) at -= 1;
      followUps.splice(at, 0, { at: due, session: next, key });
    }
  };
  const fireFollowUp = () => {
    const { session, key } = followUps.shift()!;
    fire(session, key);
  };
  for (const entry of entries) {
    while (followUps.length > 0 && followUps[0]!.at < entry.dueAt && batch.announced < limit) fireFollowUp();
    if (batch.announced >= limit) break;
    fire(entry.session, entry.key);
    batch.lastRead = entry;
  }
  while (followUps.length > 0 && batch.announced < limit) fireFollowUp();
  return batch;
}
