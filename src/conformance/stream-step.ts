// A flow's step that reads a stream of Server-Sent Events: the frames it asked for, each
// checked (data is JSON valid against the operation's event schema, an id: line that is
// the event's id, an event: line that is its type), until a deadline.
import type { ResponseChecker } from './check.js';
import type { StreamStep } from './flows.js';
import { asCurl, type Connection, readStream, type StreamAnswer } from './http.js';
import { buildExchange, type RequestValues } from './requests.js';
import type { Operation } from './spec-model.js';

/** The longest a stream flow waits for the frames it expects. */
const STREAM_DEADLINE_MS = 5000;

type StreamEvent = Awaited<ReturnType<StreamStep>>['events'][number];

/** What the frames of an answer carry, and what is wrong with them. */
export function framesRead(checker: ResponseChecker, operation: Operation, answer: StreamAnswer): { events: StreamEvent[]; problems: string[] } {
  const problems: string[] = [];
  if (answer.error) problems.push(answer.error);
  if (answer.status !== 200) problems.push(`answered ${answer.status}, not a stream: ${answer.text?.slice(0, 200) ?? ''}`);
  for (const line of answer.malformed) problems.push(`a line that is no field, comment or blank: ${line.slice(0, 100)}`);
  const events: StreamEvent[] = [];
  for (const frame of answer.frames) {
    let data: any;
    try {
      data = JSON.parse(frame.data!);
    } catch {
      problems.push(`a frame's data is not JSON: ${frame.data!.slice(0, 100)}`);
      continue;
    }
    problems.push(...checker.eventViolations(operation, data));
    if (frame.id === undefined) problems.push('a frame has no id: line (a client could not resume after it)');
    else if (data?.id !== undefined && String(data.id) !== frame.id) problems.push(`a frame's id: ${frame.id} is not its event's id ${data.id}`);
    if (frame.event !== undefined && data?.type !== undefined && data.type !== frame.event) problems.push(`a frame's event: ${frame.event} is not its event's type ${data.type}`);
    events.push({ ...(frame.id === undefined ? {} : { id: frame.id }), ...(frame.event === undefined ? {} : { event: frame.event }), data });
  }
  return { events, problems };
}

/** Opens the stream, reads `frames` frames (or until the deadline); the request as curl, and the answer. */
export async function readStreamStep(connection: Connection, operation: Operation, values: RequestValues, frames: number): Promise<{ request: string; answer: StreamAnswer }> {
  const request = buildExchange(operation, values);
  const answer = await readStream(connection, request, { frames, deadlineMs: Math.min(connection.timeoutMs, STREAM_DEADLINE_MS) });
  return { request: `${asCurl(connection, request)} -N`, answer };
}
