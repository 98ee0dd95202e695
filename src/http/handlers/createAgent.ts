import { randomUUID } from 'node:crypto';
import { ApiError } from '../../errors.js';
import type { AgentRecord } from '../../storage/store.js';
import type { HandlerDeps } from '../handler-deps.js';
import { agentEvent, withEvents } from '../../events/event-records.js';
import { carryAnswer, sendCarriedAnswer } from '../idempotency.js';
import { assertSerializedSize } from '../limits.js';
import type { Handler } from '../operation-types.js';
import { characterView } from '../../views.js';

export const createAgent =
  ({ store, clock }: HandlerDeps): Handler<'createAgent'> =>
  async (request, reply) => {
    const { id = randomUUID(), name, bio, settings = {} } = request.body.characterJson;
    assertSerializedSize(settings, 'body/characterJson/settings');
    const agent = { id, name, bio, settings, createdAt: clock.now() };
    const answer = () => ({ success: true as const, data: { character: characterView(agent) } });
    const carried = withEvents(carryAnswer(request, 201, answer), (written: AgentRecord) => [agentEvent('agent.created', written, written.createdAt)]);
    if (!(await store.insertAgent(agent, carried))) {
      throw new ApiError('AGENT_ALREADY_EXISTS', `body/characterJson/id ${id} is already registered`);
    }
    reply.code(201);
    return (sendCarriedAnswer(request, reply) as never) ?? answer();
  };
