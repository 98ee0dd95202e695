import type { HandlerDeps } from '../handler-deps.js';
import type { Handler } from '../operation-types.js';

export const listAgents =
  ({ store }: HandlerDeps): Handler<'listAgents'> =>
  async () => {
    const agents = await store.listAgents();
    return { success: true, data: { agents: agents.map(({ id, name }) => ({ id, name, status: 'active' })) } };
  };
