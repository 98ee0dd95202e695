import type { HandlerDeps } from '../handler-deps.js';
import type { Handler } from '../operation-types.js';
import { notFound } from '../../errors.js';
import { visibleWebhook } from '../webhook-access.js';

export const deleteWebhook =
  ({ store }: HandlerDeps): Handler<'deleteWebhook'> =>
  async (request) => {
    const webhook = await visibleWebhook(store, request, request.params.webhookId);
    // Deleted meanwhile by another request, which answered 200.
    if (!(await store.deleteWebhook(webhook.id))) throw notFound('WEBHOOK_NOT_FOUND', 'params/webhookId', webhook.id);
    return { success: true, message: 'Webhook deleted' };
  };
