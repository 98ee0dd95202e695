// What each change records in the event log: the event's shape for sessions, messages
// and agents, and the log's records as the API shows them (the spec's Event).
import type { components } from '../../generated/api.js';
import type { DueEventType } from '../domain/timeout-policy.js';
import { characterView, isoTime, messageJson, messageView, sessionInfoJson, sessionInfoView } from '../views.js';
import type { AgentRecord, Carried, EventInput, EventRecord, EventType, MessageRecord, SessionRecord } from '../storage/store.js';

type Schemas = components['schemas'];

type EventData = Schemas['Event']['data'];

/** The JSON text of an event's data, or how to write it from the data when first asked. */
type DataText = string | ((data: EventData) => string);

/**
 * An event whose data's JSON text is known: made once with its view (the log stores it as
 * is), or read from a log that keeps it as text (SQLite: frames splice it in instead of
 * serializing the data again). A session event's text is written when first asked for
 * (a write nobody follows live never needs it: SQLite stores such data compactly). The
 * text is a private field, out of sight of spreads, JSON and equality: the event looks
 * like any other.
 */
class TextedEvent implements EventInput {
  #dataJson: DataText;
  type: EventType;
  occurredAt: number;
  agentId: string;
  // Declared only: set when given, absent otherwise (as on the log's other events).
  declare sessionId?: string;
  declare userId?: string;
  data: EventData;

  constructor(type: EventType, occurredAt: number, agentId: string, sessionId: string | undefined, userId: string | undefined, data: EventData, dataJson: DataText) {
    this.type = type;
    this.occurredAt = occurredAt;
    this.agentId = agentId;
    if (sessionId !== undefined) this.sessionId = sessionId;
    if (userId !== undefined) this.userId = userId;
    this.data = data;
    this.#dataJson = dataJson;
  }

  static dataJsonOf(event: EventInput): string | undefined {
    if (!(#dataJson in event)) return undefined;
    const texted = event as TextedEvent;
    if (typeof texted.#dataJson !== 'string') texted.#dataJson = texted.#dataJson(texted.data);
    return texted.#dataJson;
  }

  /** The text, or how to write it, to hand on to the same event's record. */
  static dataTextOf(event: EventInput): DataText | undefined {
    return #dataJson in event ? (event as TextedEvent).#dataJson : undefined;
  }
}

/** A session event's data is its SessionInfo. */
const sessionDataJson = (data: EventData) => sessionInfoJson(data as Schemas['SessionInfo']);

/** An event made by sessionEvent: its data is a SessionInfo view. */
class SessionInfoEvent extends TextedEvent {}

/** True when the event's data is a SessionInfo view (a log may store such data in a form of its own). */
export function hasSessionInfo(event: EventInput): event is EventInput & { data: Schemas['SessionInfo'] } {
  return event instanceof SessionInfoEvent;
}

/** A TextedEvent with its id in the log. */
class TextedRecord extends TextedEvent implements EventRecord {
  id: string;

  constructor(id: string, input: EventInput, dataJson: DataText) {
    super(input.type, input.occurredAt, input.agentId, input.sessionId, input.userId, input.data, dataJson);
    this.id = id;
  }
}

/** A session event: its data is the SessionInfo as of `at`, its text written (directly) when first asked for. */
export function sessionEvent(type: EventType, session: SessionRecord, at: number): EventInput {
  const data = sessionInfoView(session, at);
  return new SessionInfoEvent(type, at, session.agentId, session.id, session.userId, data, sessionDataJson);
}

/** The JSON text of the event's data, as a log that keeps it as text stores it. */
export function dataJson(event: EventInput): string {
  return TextedEvent.dataJsonOf(event) ?? JSON.stringify(event.data);
}

export function messageEvent(session: SessionRecord, message: MessageRecord): EventInput {
  // The text the store writes with the message.
  return new TextedEvent('message.created', message.createdAt, session.agentId, session.id, session.userId, messageView(message), messageJson(message));
}

export function agentEvent(type: 'agent.created' | 'agent.deleted', agent: AgentRecord, at: number): EventInput {
  return { type, occurredAt: at, agentId: agent.id, data: characterView(agent) };
}

/**
 * The events of a change to an active session at `now`: `type`, then the due event the
 * change announced itself (`announcementsAfterChange`): `session.expired` when it
 * expired the session at once (a PATCH that put expiresAt in the past), `session.warning`
 * when it brought the warning moment to now or before.
 */
export function changeEvents(type: EventType, session: SessionRecord, now: number, announcing?: DueEventType): EventInput[] {
  const events = [sessionEvent(type, session, now)];
  if (announcing) events.push(sessionEvent(announcing, session, now));
  return events;
}

/**
 * The warning of a session's previous deadline that a change announces first (`overdueWarning`
 * of announcementsAfterChange): the session as it was, dated the warning's moment, as the
 * pump would have announced it. None when `before` is undefined.
 */
export function overdueWarning(before: SessionRecord | undefined): EventInput[] {
  return before ? [sessionEvent('session.warning', before, before.warnsAt)] : [];
}

/** The rows a write already carries (an idempotency record), plus its events. */
export function withEvents<T>(carried: Carried<T> | undefined, events: (written: T) => EventInput[]): Carried<T> {
  return { ...carried, events };
}

/** The event as sent; its `type` goes with its `data` and ids as the builders above made them (the tests check each against the spec). */
export function eventView(event: EventRecord): Schemas['Event'] {
  return {
    id: event.id,
    type: event.type,
    occurredAt: isoTime(event.occurredAt),
    agentId: event.agentId,
    data: event.data,
    ...(event.sessionId === undefined ? {} : { sessionId: event.sessionId }),
    ...(event.userId === undefined ? {} : { userId: event.userId }),
  } as Schemas['Event'];
}

/**
 * An event as a log that keeps its data as JSON text records it: with its id, and that
 * text (given, or the event's own, written when first asked for).
 */
export function loggedEvent(id: string, event: EventInput, dataJson?: string): EventRecord {
  return new TextedRecord(id, event, dataJson ?? TextedEvent.dataTextOf(event) ?? ((data) => JSON.stringify(data)));
}

/** A session event (its data a SessionInfo) read back from a log that stores the data in a form of its own. */
export function loggedSessionEvent(id: string, event: EventInput): EventRecord {
  return new TextedRecord(id, event, sessionDataJson);
}

/** The event's JSON as the API shows it (eventView), the stored data text spliced in when there is one. */
export function eventJson(event: EventRecord): string {
  const data = TextedEvent.dataJsonOf(event);
  if (data === undefined) return JSON.stringify(eventView(event));
  const session = event.sessionId === undefined ? '' : `,"sessionId":${JSON.stringify(event.sessionId)}`;
  const user = event.userId === undefined ? '' : `,"userId":${JSON.stringify(event.userId)}`;
  return `{"id":${JSON.stringify(event.id)},"type":"${event.type}","occurredAt":"${isoTime(event.occurredAt)}","agentId":${JSON.stringify(event.agentId)},"data":${data}${session}${user}}`;
}
