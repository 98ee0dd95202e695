import { randomUUID } from 'node:crypto';
import { ApiError, notFound } from '../../errors.js';
import { newWebhookSecret } from '../../events/webhook-delivery.js';
import { undeliverableReason } from '../../events/webhook-url.js';
import type { WebhookRecord } from '../../storage/store.js';
import { agentScope } from '../access-scope.js';
import { INVALID_KEY, unauthorized } from '../auth.js';
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
    // A key bound to agents: at most webhooksPerKeyMax (each costs the dispatcher a claim, a write, per event recorded; S17).
    const most = request.principal?.admin === false ? webhooksPerKeyMax : undefined;
    const inserted = await store.insertWebhook(webhook, carryAnswer(request, 201, answer), most);
    // Its key revoked while this request ran: refused as the key would be now.
    if (inserted === 'keyRevoked') throw unauthorized(reply, INVALID_KEY);
    if (inserted === 'keyFull') throw new ApiError('FORBIDDEN', `this API key has the most webhooks a key bound to agents may have (WEBHOOKS_PER_KEY_MAX=${most}); delete one first`);
    reply.code(201);
    return (sendCarriedAnswer(request, reply) as never) ?? answer(webhook);
  };

