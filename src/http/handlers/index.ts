// The operation handlers, one per operationId of the spec, each in a file named after it.
import type { HandlerDeps } from '../handler-deps.js';
import type { ServiceHandlers } from '../operation-types.js';
import { createAgent } from './createAgent.js';
import { createSession } from './createSession.js';
import { deleteAgent } from './deleteAgent.js';
import { getAgent } from './getAgent.js';
import { listAgents } from './listAgents.js';

export function createHandlers(deps: HandlerDeps): ServiceHandlers {
  return {
    createAgent: createAgent(deps),
    listAgents: listAgents(deps),
    getAgent: getAgent(deps),
    deleteAgent: deleteAgent(deps),
    createSession: createSession(deps),
  };
}
