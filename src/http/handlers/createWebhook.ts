import { randomUUID } from 'node:crypto';
import { ApiError, notFound } from '../../errors.js';
import { newWebhookSecret } from '../../events/webhook-delivery.js';
import { undeliverableReason } from '../../events/webhook-url.js';
import type { WebhookRecord } from '../../storage/store.js';
import { agentScope } from '../access-scope.js';
import { INVALID_KEY, type Principal, unauthorized } from '../auth.js';
import type { HandlerDeps } from '../handler-deps.js';
import { carryAnswer, sendCarriedAnswer } from '../idempotency.js';
import type { Handler } from '../operation-types.js';
import { webhookView } from '../webhook-views.js';

export const createWebhook =
  ({ store, clock, webhookPrivateAddresses, webhooksPerKeyMax }: HandlerDeps): Handler<'createWebhook'> =>
  async (request, reply) => {
    const { url, types, agentId } = request.body;
    const undeliverable = undeliverableReason(url, webhookPrivateAddresses);
    if (undeliverable) throw new ApiError('INVALID_REQUEST', `body/url ${undeliverable}`);
    if (agentId !== undefined && !(await store.getAgent(agentId))) throw notFound('AGENT_NOT_FOUND', 'body/agentId', agentId);
    const scope = agentScope(request);
    await assertRoomForWebhook(store, request.principal, webhooksPerKeyMax);
    const now = clock.now();
    const webhook: WebhookRecord = {
      id: randomUUID(),
      url,
      secret: newWebhookSecret(),
      types,
      agentId,
      agentIds: scope ? [...scope] : undefined,
      createdByKey: request.principal?.id,
      createdAt: now,
      // Events from now on.
      cursor: (await store.lastEventId()) ?? '0',
      attempts: 0,
      nextAttemptAt: now,
    };
    const answer = (written: WebhookRecord) => ({ ...webhookView(written), secret: written.secret });
    // Its key revoked while this request ran: refused as the key would be now.
    if (!(await store.insertWebhook(webhook, carryAnswer(request, 201, answer)))) throw unauthorized(reply, INVALID_KEY);
    reply.code(201);
    return (sendCarriedAnswer(request, reply) as never) ?? answer(webhook);
  };

/**
 * A key bound to agents may have at most `most` webhooks: each costs the dispatcher a claim
 * (a write) per event recorded, and one tenant's thousands slowed every other (S17). Counted
 * as the webhook is made: creates at the same moment may pass it by their number.
 */
async function assertRoomForWebhook(store: HandlerDeps['store'], principal: Principal | null, most: number): Promise<void> {
  if (principal?.admin !== false) return;
  const made = (await store.listWebhooks()).filter((webhook) => webhook.createdByKey === principal.id).length;
  if (made >= most) throw new ApiError('FORBIDDEN', `this API key has ${made} webhooks, the most a key bound to agents may have (WEBHOOKS_PER_KEY_MAX=${most}); delete one first`);
}
