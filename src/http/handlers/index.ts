// The operation handlers, one per operationId of the spec, each in a file named after it.
// Written by `npm run generate` from the spec (`npm test` fails when it drifts).
import type { HandlerDeps } from '../handler-deps.js';
import type { ServiceHandlers } from '../operation-types.js';
import { createAgent } from './createAgent.js';
import { createSession } from './createSession.js';
import { createWebhook } from './createWebhook.js';
import { deleteAgent } from './deleteAgent.js';
import { deleteWebhook } from './deleteWebhook.js';
import { endSession } from './endSession.js';
import { getAgent } from './getAgent.js';
import { getSession } from './getSession.js';
import { getSessionMessages } from './getSessionMessages.js';
import { getSessionsHealth } from './getSessionsHealth.js';
import { listAgents } from './listAgents.js';
import { listSessions } from './listSessions.js';
import { listWebhookDeliveries } from './listWebhookDeliveries.js';
import { listWebhooks } from './listWebhooks.js';
import { renewSession } from './renewSession.js';
import { sendSessionMessage } from './sendSessionMessage.js';
import { sessionHeartbeat } from './sessionHeartbeat.js';
import { streamEvents } from './streamEvents.js';
import { streamSessionEvents } from './streamSessionEvents.js';
import { updateSessionTimeout } from './updateSessionTimeout.js';

export function createHandlers(deps: HandlerDeps): ServiceHandlers {
  return {
    createAgent: createAgent(deps),
    listAgents: listAgents(deps),
    getAgent: getAgent(deps),
    deleteAgent: deleteAgent(deps),
    createSession: createSession(deps),
    listSessions: listSessions(deps),
    getSessionsHealth: getSessionsHealth(deps),
    streamEvents: streamEvents(deps),
    getSession: getSession(deps),
    endSession: endSession(deps),
    sessionHeartbeat: sessionHeartbeat(deps),
    renewSession: renewSession(deps),
    updateSessionTimeout: updateSessionTimeout(deps),
    sendSessionMessage: sendSessionMessage(deps),
    getSessionMessages: getSessionMessages(deps),
    streamSessionEvents: streamSessionEvents(deps),
    createWebhook: createWebhook(deps),
    listWebhooks: listWebhooks(deps),
    deleteWebhook: deleteWebhook(deps),
    listWebhookDeliveries: listWebhookDeliveries(deps),
  };
}
