import { sessionId } from '../../domain/session-id.js';
import { agentTimeoutLayer, announcementsAfterChange, resolveTimeoutConfig, startTiming } from '../../domain/timeout-policy.js';
import { notFound } from '../../errors.js';
import type { HandlerDeps } from '../handler-deps.js';
import { changeEvents, withEvents } from '../../events/event-records.js';
import { carryAnswer, sendCarriedAnswer } from '../idempotency.js';
import { assertSerializedSize } from '../limits.js';
import type { Handler } from '../operation-types.js';
import { createdSessionView } from '../../views.js';

export const createSession =
  ({ store, clock, sessionDefaults }: HandlerDeps): Handler<'createSession'> =>
  async (request, reply) => {
    const { agentId, userId, metadata = {}, timeoutConfig } = request.body;
    assertSerializedSize(metadata, 'body/metadata');
    const agentMissing = () => notFound('AGENT_NOT_FOUND', 'body/agentId', agentId);
    const agent = await store.getAgent(agentId);
    if (!agent) throw agentMissing();

    const config = resolveTimeoutConfig(timeoutConfig, agentTimeoutLayer(agent.settings), sessionDefaults);
    const now = clock.now();
    const timing = startTiming(now, config);
    const { announced, announcing } = announcementsAfterChange('nothing', undefined, timing, now);
    const session = { id: sessionId(), agentId, userId, metadata, status: 'active' as const, announced, ...timing };
    const carried = withEvents(carryAnswer(request, 201, createdSessionView), (written) => changeEvents('session.created', written, now, announcing));
    // The agent can be deleted between the read above and this insert.
    if (!(await store.insertSession(session, carried))) throw agentMissing();

    reply.code(201);
    return (sendCarriedAnswer(request, reply) as never) ?? createdSessionView(session);
  };
