// What each change records in the event log: the event's shape for sessions, messages
// and agents, and the log's records as the API shows them (the spec's Event).
import type { components } from '../../generated/api.js';
import { characterView, isoTime, messageJson, messageView, sessionInfoView } from '../http/views.js';
import type { AgentRecord, Carried, EventInput, EventRecord, EventType, MessageRecord, SessionRecord } from '../storage/store.js';

type Schemas = components['schemas'];

/** A session event: its data is the SessionInfo as of `at`. */
export function sessionEvent(type: EventType, session: SessionRecord, at: number): EventInput {
  return { type, occurredAt: at, agentId: session.agentId, sessionId: session.id, userId: session.userId, data: sessionInfoView(session, at) };
}

// Events whose data's JSON text was made already (a message's view): the log stores it as is.
const dataTexts = new WeakMap<EventInput, string>();

/** The JSON text of the event's data, as a log that keeps it as text (SQLite) stores it. */
export function dataJson(event: EventInput): string {
  return dataTexts.get(event) ?? JSON.stringify(event.data);
}

export function messageEvent(session: SessionRecord, message: MessageRecord): EventInput {
  const event: EventInput = {
    type: 'message.created',
    occurredAt: message.createdAt,
    agentId: session.agentId,
    sessionId: session.id,
    userId: session.userId,
    data: messageView(message),
  };
  dataTexts.set(event, messageJson(message)); // the text the store writes with the message
  return event;
}

export function agentEvent(type: 'agent.created' | 'agent.deleted', agent: AgentRecord, at: number): EventInput {
  return { type, occurredAt: at, agentId: agent.id, data: characterView(agent) };
}

/**
 * The events of a change to an active session at `now`: `type`, then `session.expired`
 * when the change expired it at once (a PATCH that put expiresAt in the past).
 */
export function changeEvents(type: EventType, session: SessionRecord, now: number): EventInput[] {
  const events = [sessionEvent(type, session, now)];
  if (session.status === 'expired') events.push(sessionEvent('session.expired', session, now));
  return events;
}

/** The rows a write already carries (an idempotency record), plus its events. */
export function withEvents<T>(carried: Carried<T> | undefined, events: (written: T) => EventInput[]): Carried<T> {
  return { ...carried, events };
}

export function eventView(event: EventRecord): Schemas['Event'] {
  const view: Schemas['Event'] = { id: event.id, type: event.type, occurredAt: isoTime(event.occurredAt), agentId: event.agentId, data: event.data };
  if (event.sessionId !== undefined) view.sessionId = event.sessionId;
  if (event.userId !== undefined) view.userId = event.userId;
  return view;
}

// Events read from a log that keeps each event's data as JSON text (SQLite): frames splice
// that text in instead of serializing the data again.
const storedData = new WeakMap<EventRecord, string>();

/** An event read from the log, with its data and the JSON text it was written as. */
export function storedEvent(event: EventRecord, dataJson: string): EventRecord {
  storedData.set(event, dataJson);
  return event;
}

/** The event's JSON as the API shows it (eventView), the stored data text spliced in when there is one. */
export function eventJson(event: EventRecord): string {
  const data = storedData.get(event);
  if (data === undefined) return JSON.stringify(eventView(event));
  const session = event.sessionId === undefined ? '' : `,"sessionId":${JSON.stringify(event.sessionId)}`;
  const user = event.userId === undefined ? '' : `,"userId":${JSON.stringify(event.userId)}`;
  return `{"id":${JSON.stringify(event.id)},"type":"${event.type}","occurredAt":"${isoTime(event.occurredAt)}","agentId":${JSON.stringify(event.agentId)},"data":${data}${session}${user}}`;
}
