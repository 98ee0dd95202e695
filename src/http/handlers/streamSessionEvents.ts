import type { HandlerDeps } from '../handler-deps.js';
import type { Handler } from '../operation-types.js';
import { resumePoint } from '../../events/event-stream.js';
import { retainedSession } from '../session-access.js';

export const streamSessionEvents =
  ({ store, clock, retentionMs, streams }: HandlerDeps): Handler<'streamSessionEvents'> =>
  async (request, reply) => {
    const { sessionId } = request.params;
    const session = retainedSession(await store.getSession(sessionId), sessionId, clock.now(), retentionMs);
    const after = await resumePoint(store, (request.headers['last-event-id'] as string | undefined) ?? request.query.lastEventId, 'start');
    // Expired, and the client has every event of it: a 200 would end at once, and
    // EventSource would reconnect every 3 s until the session is purged. 204 stops it.
    if (session.announced === 'expiry' && (await store.listEvents({ after, sessionId, limit: 1 })).length === 0) return reply.code(204).send();
    streams.open(request, reply, store, {
      filter: { sessionId },
      after,
      // Expired (and announced) or gone (ended, purged, its agent deleted): nothing follows.
      finished: async () => {
        const current = await store.getSession(sessionId);
        return !current || current.announced === 'expiry';
      },
      closesOn: (event) =>
        event.sessionId === sessionId ? event.type === 'session.expired' || event.type === 'session.ended' : event.type === 'agent.deleted' && event.agentId === session.agentId,
    });
  };
