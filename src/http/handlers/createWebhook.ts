import { randomUUID } from 'node:crypto';
import { ApiError } from '../../errors.js';
import { newWebhookSecret } from '../../events/webhook-delivery.js';
import type { WebhookRecord } from '../../storage/store.js';
import { agentScope } from '../access-scope.js';
import type { HandlerDeps } from '../handler-deps.js';
import { carryAnswer, sendCarriedAnswer } from '../idempotency.js';
import { clip } from '../limits.js';
import type { Handler } from '../operation-types.js';
import { webhookView } from '../webhook-views.js';

export const createWebhook =
  ({ store, clock }: HandlerDeps): Handler<'createWebhook'> =>
  async (request, reply) => {
    const { url, types, agentId } = request.body;
    assertDeliverable(url);
    if (agentId !== undefined && !(await store.getAgent(agentId))) throw new ApiError('AGENT_NOT_FOUND', `body/agentId ${agentId} does not exist`);
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

/**
 * A URL every delivery could be POSTed to: the spec's pattern lets through what fetch
 * then refuses on every attempt (no host, a port out of range, credentials in the URL),
 * which would be retried for 24 hours and show the credentials in its deliveries.
 */
function assertDeliverable(url: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ApiError('INVALID_REQUEST', `body/url ${clip(url, 100)} is not a valid URL`);
  }
  if (parsed.hostname === '') throw new ApiError('INVALID_REQUEST', 'body/url has no host');
  if (parsed.username !== '' || parsed.password !== '') {
    throw new ApiError('INVALID_REQUEST', 'body/url must not carry credentials (user:password@); authenticate the deliveries by their signature');
  }
}
