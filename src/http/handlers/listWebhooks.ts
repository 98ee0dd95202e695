import { agentScope } from '../access-scope.js';
import type { HandlerDeps } from '../handler-deps.js';
import type { Handler } from '../operation-types.js';
import { visibleTo, webhookView } from '../webhook-views.js';

export const listWebhooks =
  ({ store }: HandlerDeps): Handler<'listWebhooks'> =>
  async (request) => {
    const scope = agentScope(request);
    return { webhooks: (await store.listWebhooks()).filter((webhook) => visibleTo(scope, webhook)).map(webhookView) };
  };
