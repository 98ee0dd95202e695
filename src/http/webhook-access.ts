// The gate of every operation on one webhook: unknown, or not the caller's, is 404.
import type { FastifyRequest } from 'fastify';
import { notFound } from '../errors.js';
import type { Store, WebhookRecord } from '../storage/store.js';
import { agentScope } from './access-scope.js';
import { visibleTo } from './webhook-views.js';

export async function visibleWebhook(store: Store, request: FastifyRequest, webhookId: string): Promise<WebhookRecord> {
  const webhook = await store.getWebhook(webhookId);
  if (!webhook || !visibleTo(agentScope(request), webhook)) throw notFound('WEBHOOK_NOT_FOUND', 'params/webhookId', webhookId);
  return webhook;
}
