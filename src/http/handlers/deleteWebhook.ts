import type { HandlerDeps } from '../handler-deps.js';
import type { Handler } from '../operation-types.js';
import { visibleWebhook } from '../webhook-access.js';

export const deleteWebhook =
  ({ store }: HandlerDeps): Handler<'deleteWebhook'> =>
  async (request) => {
    const webhook = await visibleWebhook(store, request, request.params.webhookId);
    await store.deleteWebhook(webhook.id);
    return { success: true, message: 'Webhook deleted' };
  };
