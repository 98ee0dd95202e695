// How the SQLite log stores an event's data. A session event's data is its SessionInfo
// (about 500 bytes of JSON); the row already holds its session, agent and user ids, so the
// rest is stored as an array of values in a fixed order (about 150 bytes): fewer WAL bytes
// for every event written (measured: 1-1.5 µs less CPU an insert), and no JSON text
// written for a session event nobody follows live. Other events' data, and rows written
// before this form, are the data's JSON text (an object: they start with `{`).
import type { components } from '../../../generated/api.js';
import { dataJson, hasSessionInfo, loggedEvent, loggedSessionEvent } from '../../events/event-records.js';
import { numberJson } from '../../http/views.js';
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
export function storedSessionInfo(view: SessionInfo): string {
  const config = view.timeoutConfig;
  return (
    `[${SESSION_INFO_FORM},"${view.createdAt}","${view.lastActivity}","${view.expiresAt}",${numberJson(config.timeoutMinutes)},${config.autoRenew}` +
    `,${numberJson(config.maxDurationMinutes)},${numberJson(config.warningThresholdMinutes)},${numberJson(view.renewalCount)}` +
    `,${numberJson(view.timeRemaining)},${view.isNearExpiration},"${view.status}",${JSON.stringify(view.metadata)}]`
  );
}

export interface EventRow {
  id: number;
  type: EventInput['type'];
  occurred_at: number;
  agent_id: string;
  session_id: string | null;
  user_id: string | null;
  data: string;
}

export function eventFromRow(row: EventRow): EventRecord {
  const stored = row.data.startsWith('[');
  const input: EventInput = { type: row.type, occurredAt: row.occurred_at, agentId: row.agent_id, data: stored ? sessionInfoOf(row) : JSON.parse(row.data) };
  if (row.session_id !== null) input.sessionId = row.session_id;
  if (row.user_id !== null) input.userId = row.user_id;
  return stored ? loggedSessionEvent(String(row.id), input) : loggedEvent(String(row.id), input, row.data);
}

/** The SessionInfo of a row that stores it (storedSessionInfo), with the row's ids. */
function sessionInfoOf(row: EventRow): SessionInfo {
  const [form, createdAt, lastActivity, expiresAt, timeoutMinutes, autoRenew, maxDurationMinutes, warningThresholdMinutes, renewalCount, timeRemaining, isNearExpiration, status, metadata] =
    JSON.parse(row.data);
  if (form !== SESSION_INFO_FORM) throw new Error(`event ${row.id}: its data is stored in an unknown form (${form})`);
  return {
    sessionId: row.session_id!,
    agentId: row.agent_id,
    userId: row.user_id!,
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
