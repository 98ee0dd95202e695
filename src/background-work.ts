// The server's background work: the sweeper, the due-event pump and the webhook
// dispatcher, each logging its failures as throttledErrors passes them on (its first
// failure with its stack, then one line a minute with how many it held back, and the first
// success after one it logged, at warn: "… works again"); and each
// webhook attempt that failed, a line at warn (the backoff bounds them: ~35 a day a webhook).
import type { ServerConfig } from './config.js';
import type { Clock } from './domain/clock.js';
import { createEventPump } from './events/due-events.js';
import { createWebhookDispatcher } from './events/webhook-delivery.js';
import type { Metrics } from './ops/metrics.js';
import { throttledErrors } from './ops/throttled-errors.js';
import type { DeliveryRecord, Store } from './storage/store.js';
import { createSweeper } from './sweeper.js';

/** The part of a logger the background work writes to (the app's, which exists only once the work does). */
export interface BackgroundLog {
  error(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

type BackgroundConfig = Pick<ServerConfig, 'retentionMs' | 'sweepIntervalMs' | 'sweepBatchSize' | 'eventRetentionMs' | 'webhookPrivateAddresses'>;

/** A failed attempt's log fields: what the receiver answered (or why none), and when it is tried again. */
function failedAttempt({ webhookId, eventId, attempt, statusCode, error, nextRetryAt }: DeliveryRecord) {
  return { webhookId, eventId, attempt, statusCode, error, nextRetryAt: nextRetryAt === undefined ? undefined : new Date(nextRetryAt).toISOString() };
}

export function createBackgroundWork(options: { store: Store; clock: Clock; config: BackgroundConfig; metrics?: Metrics; log: () => BackgroundLog }) {
  const { store, clock, config, metrics, log } = options;
  const failureLog = (task: string) => {
    const failed = throttledErrors((error, heldBack) => log().error({ err: error, heldBack }, `${task} failed`), {
      recovered: (failures) => log().warn({ failures }, `${task} works again`),
    });
    return { onError: failed, onSuccess: failed.succeeded };
  };
  const sweeper = createSweeper({
    store,
    clock,
    retentionMs: config.retentionMs,
    intervalMs: config.sweepIntervalMs,
    batchSize: config.sweepBatchSize,
    eventRetentionMs: config.eventRetentionMs,
    ...failureLog('expiry sweep'),
    ...(metrics ? { onSweep: metrics.observeSweep } : {}),
  });
  const eventPump = createEventPump({ store, clock, ...failureLog('announcing due events') });
  const webhooks = createWebhookDispatcher({
    store,
    clock,
    privateAddresses: config.webhookPrivateAddresses,
    ...failureLog('webhook delivery'),
    onAttempt: (outcome, seconds, delivery) => {
      metrics?.observeDelivery(outcome, seconds);
      if (outcome !== 'delivered') log().warn(failedAttempt(delivery), outcome === 'disabled' ? 'webhook disabled: its deliveries failed for 24 hours' : 'webhook delivery attempt failed');
    },
  });
  return { sweeper, eventPump, webhooks };
}
