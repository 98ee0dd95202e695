import type { HandlerDeps } from '../handler-deps.js';
import type { Handler } from '../operation-types.js';
import { visibleWebhook } from '../webhook-access.js';
import { deliveryView } from '../webhook-views.js';

export const listWebhookDeliveries =
  ({ store }: HandlerDeps): Handler<'listWebhookDeliveries'> =>
  async (request) => {
    const webhook = await visibleWebhook(store, request, request.params.webhookId);
    const deliveries = await store.listDeliveries(webhook.id, request.query.limit);
    return { deliveries: deliveries.map(deliveryView) };
  };
