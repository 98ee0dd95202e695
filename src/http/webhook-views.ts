// Webhooks as the API shows them, and which of them a caller may see.
import type { components } from '../../generated/api.js';
import type { DeliveryRecord, WebhookRecord } from '../storage/store.js';
import { isoTime } from '../iso-time.js';

type Schemas = components['schemas'];

export function webhookView(webhook: WebhookRecord): Schemas['Webhook'] {
  const view: Schemas['Webhook'] = {
    id: webhook.id,
    url: webhook.url,
    status: webhook.disabledAt === undefined ? 'active' : 'disabled',
    createdAt: isoTime(webhook.createdAt),
  };
  if (webhook.types) view.types = webhook.types;
  if (webhook.agentId) view.agentId = webhook.agentId;
  if (webhook.createdByKey !== undefined) view.createdByKey = webhook.createdByKey;
  if (webhook.failingSince !== undefined) view.failingSince = isoTime(webhook.failingSince);
  if (webhook.disabledAt !== undefined) view.disabledAt = isoTime(webhook.disabledAt);
  return view;
}

export function deliveryView(delivery: DeliveryRecord): Schemas['WebhookDelivery'] {
  return {
    eventId: delivery.eventId,
    attempt: delivery.attempt,
    attemptedAt: isoTime(delivery.attemptedAt),
    statusCode: delivery.statusCode ?? null,
    error: delivery.error ?? null,
    nextRetryAt: delivery.nextRetryAt === undefined ? null : isoTime(delivery.nextRetryAt),
  };
}

/** An admin key (or no keys) sees every webhook; a key bound to agents, those made within its agents. */
export function visibleTo(scope: readonly string[] | undefined, webhook: WebhookRecord): boolean {
  if (!scope) return true;
  return webhook.agentIds !== undefined && webhook.agentIds.every((id) => scope.includes(id));
}
