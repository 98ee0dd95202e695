import { randomUUID } from 'node:crypto';
import { newWebhookSecret } from '../../events/webhook-delivery.js';
import type { WebhookRecord } from '../../storage/store.js';
import { agentScope } from '../access-scope.js';
import type { HandlerDeps } from '../handler-deps.js';
import { carryAnswer, sendCarriedAnswer } from '../idempotency.js';
import type { Handler } from '../operation-types.js';
import { webhookView } from '../webhook-views.js';

export const createWebhook =
  ({ store, clock }: HandlerDeps): Handler<'createWebhook'> =>
  async (request, reply) => {
    const { url, types, agentId } = request.body;
    const scope = agentScope(request);
    const now = clock.now();
    const webhook: WebhookRecord = {
      id: randomUUID(),
      url,
      secret: newWebhookSecret(),
      types,
      agentId,
      agentIds: scope ? [...scope] : undefined,
      createdAt: now,
      // Events from now on.
      cursor: (await store.lastEventId()) ?? '0',
      attempts: 0,
      nextAttemptAt: now,
    };
    const answer = (written: WebhookRecord) => ({ ...webhookView(written), secret: written.secret });
    await store.insertWebhook(webhook, carryAnswer(request, 201, answer));
    reply.code(201);
    return (sendCarriedAnswer(request, reply) as never) ?? answer(webhook);
  };
