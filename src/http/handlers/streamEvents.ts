import { ApiError } from '../../errors.js';
import { resumePoint } from '../../events/event-stream.js';
import { specSchemaValidator } from '../../spec.js';
import type { EventType } from '../../storage/store.js';
import { agentScope } from '../access-scope.js';
import type { HandlerDeps } from '../handler-deps.js';
import type { Handler } from '../operation-types.js';

let isEventType: ((value: unknown) => boolean) | undefined;

/** `types=a,b`: each one of the spec's EventType values. */
function parseTypes(types: string | undefined): EventType[] | undefined {
  if (types === undefined) return undefined;
  isEventType ??= specSchemaValidator('EventType');
  const list = types.split(',');
  const unknown = list.find((type) => !isEventType!(type));
  if (unknown !== undefined) throw new ApiError('INVALID_REQUEST', `querystring/types ${JSON.stringify(unknown.slice(0, 50))} is not an event type`);
  const repeated = list.find((type, index) => list.indexOf(type) !== index);
  if (repeated !== undefined) throw new ApiError('INVALID_REQUEST', `querystring/types names ${repeated} twice`);
  return list as EventType[];
}

export const streamEvents =
  ({ store, streams }: HandlerDeps): Handler<'streamEvents'> =>
  async (request, reply) => {
    const { agentId, userId, types, lastEventId } = request.query;
    const filter = { agentId, userId, types: parseTypes(types), agentIds: agentScope(request) };
    // Without a place to resume from, the stream starts with the next event recorded.
    const after = await resumePoint(store, (request.headers['last-event-id'] as string | undefined) ?? lastEventId, 'now');
    streams.open(request, reply, store, { filter, after });
  };
