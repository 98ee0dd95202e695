import type { HandlerDeps } from '../handler-deps.js';
import type { Handler } from '../operation-types.js';
import { agentScope } from '../access-scope.js';

export const listAgents =
  ({ store }: HandlerDeps): Handler<'listAgents'> =>
  async (request) => {
    const scope = agentScope(request);
    const agents = (await store.listAgents()).filter((agent) => !scope || scope.includes(agent.id));
    return { success: true, data: { agents: agents.map(({ id, name }) => ({ id, name, status: 'active' })) } };
  };
