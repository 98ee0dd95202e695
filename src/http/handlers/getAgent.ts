import { ApiError } from '../../errors.js';
import type { HandlerDeps } from '../handler-deps.js';
import type { Handler } from '../operation-types.js';
import { agentDetailsView } from '../../views.js';

export const getAgent =
  ({ store }: HandlerDeps): Handler<'getAgent'> =>
  async (request) => {
    const agent = await store.getAgent(request.params.agentId);
    if (!agent) throw new ApiError('AGENT_NOT_FOUND', `params/agentId ${request.params.agentId} does not exist`);
    return { success: true, data: agentDetailsView(agent) };
  };
