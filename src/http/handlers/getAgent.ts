import { notFound } from '../../errors.js';
import type { HandlerDeps } from '../handler-deps.js';
import type { Handler } from '../operation-types.js';
import { agentDetailsView } from '../../views.js';

export const getAgent =
  ({ store }: HandlerDeps): Handler<'getAgent'> =>
  async (request) => {
    const agent = await store.getAgent(request.params.agentId);
    if (!agent) throw notFound('AGENT_NOT_FOUND', 'params/agentId', request.params.agentId);
    return { success: true, data: agentDetailsView(agent) };
  };
