// The gate every operation on one session passes: gone is 404, expired is 410.
import { announcementsAfterChange, lifecycle, type DueEventType, type SessionTiming } from '../domain/timeout-policy.js';
import { changeEvents, overdueWarning } from '../events/event-records.js';
import { ApiError, notFound } from '../errors.js';
import { sessionWith, type EventType, type SessionRecord } from '../storage/store.js';
import type { HandlerDeps } from './handler-deps.js';
import { isoTime, sessionInfoView } from '../views.js';

/** The session if it exists at `now`, active or expired but retained; otherwise 404. */
export function retainedSession(session: SessionRecord | undefined, sessionId: string, now: number, retentionMs: number): SessionRecord {
  if (!session || lifecycle(session.expiresAt, now, retentionMs) === 'purged') {
    throw notFound('SESSION_NOT_FOUND', 'params/sessionId', sessionId);
  }
  return session;
}

/** The session if it is active at `now`; otherwise the ApiError its state calls for. */
export function activeSession(session: SessionRecord | undefined, sessionId: string, now: number, retentionMs: number): SessionRecord {
  const retained = retainedSession(session, sessionId, now, retentionMs);
  if (lifecycle(retained.expiresAt, now, retentionMs, retained.announced) === 'expired') {
    throw new ApiError('SESSION_EXPIRED', `expiresAt ${isoTime(retained.expiresAt)}`);
  }
  return retained;
}

/**
 * The session with new timing, its stored status and announcements following from it, the
 * due event the change announces itself, and `warnedBefore`: the session as it was, when its
 * deadline's warning was due and not yet announced (the change announces it first).
 */
export function withTiming(session: SessionRecord, timing: SessionTiming, now: number): { session: SessionRecord; announcing?: DueEventType; warnedBefore?: SessionRecord } {
  const { announced, announcing, overdueWarning } = announcementsAfterChange(session.announced, session, timing, now);
  const changed = { session: sessionWith(session, timing, announcing === 'session.expired' ? 'expired' : 'active', announced), announcing };
  return overdueWarning ? { ...changed, warnedBefore: session } : changed;
}

/**
 * Changes the timing of an active session in one transaction with the event it is
 * (`type`): 404 / 410 when it is not active, the answer's SessionInfo otherwise. The time
 * is read when the change runs, holding the session's lock: a write that waited for it
 * (another instance's write, the pump announcing the expiry) is judged after that one,
 * never as of before it (which could renew a session announced expired, or move its
 * expiry back).
 */
export async function changeActiveSession(
  { store, clock, retentionMs }: Pick<HandlerDeps, 'store' | 'clock' | 'retentionMs'>,
  sessionId: string,
  change: (session: SessionRecord, now: number) => { timing: SessionTiming; event: EventType | undefined },
) {
  let now = Number.NaN;
  let event: EventType | undefined;
  let announcing: DueEventType | undefined;
  let warnedBefore: SessionRecord | undefined;
  const updated = await store.modifySession(
    sessionId,
    (current) => {
      now = clock.now();
      const session = activeSession(current, sessionId, now, retentionMs);
      const changed = change(session, now);
      event = changed.event;
      const next = withTiming(session, changed.timing, now);
      announcing = next.announcing;
      warnedBefore = next.warnedBefore;
      return next.session;
    },
    // No event: nothing changed (a renewal before the anchor).
    { events: (written) => (event === undefined ? [] : [...overdueWarning(warnedBefore), ...changeEvents(event, written, now, announcing)]) },
  );
  return sessionInfoView(updated, now);
}
