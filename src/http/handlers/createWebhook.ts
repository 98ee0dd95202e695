import { randomUUID } from 'node:crypto';
import { ApiError, notFound } from '../../errors.js';
import { type PrivateAddresses, privateHostOf } from '../../events/private-addresses.js';
import { newWebhookSecret } from '../../events/webhook-delivery.js';
import type { WebhookRecord } from '../../storage/store.js';
import { agentScope } from '../access-scope.js';
import type { HandlerDeps } from '../handler-deps.js';
import { carryAnswer, sendCarriedAnswer } from '../idempotency.js';
import { clip } from '../limits.js';
import type { Handler } from '../operation-types.js';
import { webhookView } from '../webhook-views.js';

export const createWebhook =
  ({ store, clock, webhookPrivateAddresses }: HandlerDeps): Handler<'createWebhook'> =>
  async (request, reply) => {
    const { url, types, agentId } = request.body;
    assertDeliverable(url, webhookPrivateAddresses);
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
    await store.insertWebhook(webhook, carryAnswer(request, 201, answer));
    reply.code(201);
    return (sendCarriedAnswer(request, reply) as never) ?? answer(webhook);
  };

/**
 * Ports fetch refuses to connect to, whatever answers there (the Fetch standard's "bad
 * ports": SMTP, IRC, X11 and the like), and port 0.
 */
const FETCH_BAD_PORTS = new Set([
  0, 1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101, 102, 103, 104, 109, 110, 111, 113, 115, 117, 119, 123,
  135, 137, 139, 143, 161, 179, 389, 427, 465, 512, 513, 514, 515, 526, 530, 531, 532, 540, 548, 554, 556, 563, 587, 601, 636, 989, 990, 993, 995,
  1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060, 5061, 6000, 6566, 6665, 6666, 6667, 6668, 6669, 6679, 6697, 10080,
]);

/**
 * A URL every delivery could be POSTed to: the spec's pattern lets through what fetch
 * then refuses on every attempt (no host, a port out of range or one fetch blocks,
 * credentials in the URL), which would be retried for 24 hours and show the credentials
 * in its deliveries; and, under `deny`, a host that is a private address or this machine.
 */
function assertDeliverable(url: string, privateAddresses: PrivateAddresses): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ApiError('INVALID_REQUEST', `body/url ${clip(url, 100)} is not a valid URL`);
  }
  // `http:///path` parses with host "path": as written, it names none.
  if (parsed.hostname === '' || /^https?:\/\/\//i.test(url)) throw new ApiError('INVALID_REQUEST', 'body/url has no host');
  if (parsed.port !== '' && FETCH_BAD_PORTS.has(Number(parsed.port))) {
    throw new ApiError('INVALID_REQUEST', `body/url port ${parsed.port} is one fetch never connects to (the Fetch standard's bad ports)`);
  }
  if (parsed.username !== '' || parsed.password !== '') {
    throw new ApiError('INVALID_REQUEST', 'body/url must not carry credentials (user:password@); authenticate the deliveries by their signature');
  }
  const privateHost = privateAddresses === 'deny' ? privateHostOf(parsed) : undefined;
  if (privateHost) throw new ApiError('INVALID_REQUEST', `body/url host ${privateHost}: this server delivers to public addresses only (WEBHOOK_PRIVATE_ADDRESSES=deny)`);
}
