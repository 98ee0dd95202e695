// How the SQLite log stores an event (event-log.ts keeps them in rows of many). A session
// event's data is its SessionInfo (about 500 bytes of JSON); the event already holds its
// session, agent and user ids, so the rest is stored as an array of values in a fixed order
// (about 150 bytes): fewer WAL bytes for every event written (measured: 1-1.5 µs less CPU
// an insert), and no JSON text written for a session event nobody follows live. Other
// events' data, and session events written before this form (migration 21), are the data's
// JSON (an object).
import type { components } from '../../../generated/api.js';
import { dataJson, hasSessionInfo, loggedEvent, loggedSessionEvent } from '../../events/event-records.js';
import { numberJson, quoted } from '../../views.js';
import type { EventInput, EventRecord } from '../store.js';

type SessionInfo = components['schemas']['SessionInfo'];

/** The first element of a stored SessionInfo: the form's version. */
const SESSION_INFO_FORM = 1;

/** The row's data: a SessionInfo stored as such (a session event's), the data's JSON otherwise. */
export function storedEventData(event: EventInput): string {
  return hasSessionInfo(event) ? storedSessionInfo(event.data) : dataJson(event);
}

/** The record of an event just stored as `data`, for the listeners of the log. */
export function writtenEvent(id: string, event: EventInput, data: string): EventRecord {
  // The JSON text is the data stored, unless stored as a SessionInfo (then written when asked for).
  return loggedEvent(id, event, data.startsWith('[') ? undefined : data);
}

/** Every SessionInfo field but the ids, in this order; its times as the view has them. */
function storedSessionInfo(view: SessionInfo): string {
  const config = view.timeoutConfig;
  return (
    `[${SESSION_INFO_FORM},"${view.createdAt}","${view.lastActivity}","${view.expiresAt}",${numberJson(config.timeoutMinutes)},${config.autoRenew}` +
    `,${numberJson(config.maxDurationMinutes)},${numberJson(config.warningThresholdMinutes)},${numberJson(view.renewalCount)}` +
    `,${numberJson(view.timeRemaining)},${view.isNearExpiration},"${view.status}",${JSON.stringify(view.metadata)}]`
  );
}

/**
 * An event as an element of a row of the log (event-log.ts): `[type, occurredAt, agentId,
 * sessionId, userId, data]`, its data the stored form (storedEventData) spliced in; with
 * the ids of the row's event before it (a message and its session's activity, say), only
 * `[type, occurredAt, data]`.
 */
export function storedEvent(event: EventInput, data: string, previous: EventInput | undefined): string {
  // Event types are identifiers: nothing in them to escape.
  if (previous && event.agentId === previous.agentId && event.sessionId === previous.sessionId && event.userId === previous.userId) {
    return `["${event.type}",${event.occurredAt},${data}]`;
  }
  return `["${event.type}",${event.occurredAt},${quoted(event.agentId)},${nullableJson(event.sessionId)},${nullableJson(event.userId)},${data}]`;
}

const nullableJson = (value: string | undefined) => (value === undefined ? 'null' : quoted(value));

/** An element of a log row, parsed, its ids filled in from the element before when it left them out. */
export type StoredEvent = [type: EventInput['type'], occurredAt: number, agentId: string, sessionId: string | null, userId: string | null, data: unknown];

/** The events of a log row (the JSON array of storedEvent's elements), in order. */
export function eventsOfRow(text: string): StoredEvent[] {
  const events = JSON.parse(text) as Array<StoredEvent | [StoredEvent[0], number, unknown]>;
  for (const [index, event] of events.entries()) {
    if (event.length === 3) {
      const [, , agentId, sessionId, userId] = events[index - 1] as StoredEvent;
      events[index] = [event[0], event[1], agentId, sessionId, userId, event[2]];
    }
  }
  return events as StoredEvent[];
}

/** The record of an event read back from a row of the log. */
export function eventFromStored(id: number, [type, occurredAt, agentId, sessionId, userId, data]: StoredEvent): EventRecord {
  const inSessionForm = Array.isArray(data);
  const input: EventInput = { type, occurredAt, agentId, data: inSessionForm ? sessionInfoOf(id, data, agentId, sessionId!, userId!) : (data as EventInput['data']) };
  if (sessionId !== null) input.sessionId = sessionId;
  if (userId !== null) input.userId = userId;
  return inSessionForm ? loggedSessionEvent(String(id), input) : loggedEvent(String(id), input);
}

/** The SessionInfo stored as `values` (storedSessionInfo), with the event's ids. */
function sessionInfoOf(id: number, values: unknown[], agentId: string, sessionId: string, userId: string): SessionInfo {
  const [form, createdAt, lastActivity, expiresAt, timeoutMinutes, autoRenew, maxDurationMinutes, warningThresholdMinutes, renewalCount, timeRemaining, isNearExpiration, status, metadata] =
    values as [number, string, string, string, number, boolean, number, number, number, number, boolean, SessionInfo['status'], SessionInfo['metadata']];
  if (form !== SESSION_INFO_FORM) throw new Error(`event ${id}: its data is stored in an unknown form (${form})`);
  return {
    sessionId,
    agentId,
    userId,
    createdAt,
    lastActivity,
    metadata,
    expiresAt,
    timeoutConfig: { timeoutMinutes, autoRenew, maxDurationMinutes, warningThresholdMinutes },
    renewalCount,
    timeRemaining,
    isNearExpiration,
    status,
  };
}
