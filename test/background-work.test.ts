// The server's background work: on a store that is down each task logs its first failure,
// then holds the next back (at most one line a minute), and says when it works again, as
// the README's Logs say; wired to the metrics.
import { describe, expect, it, vi } from 'vitest';
import { createBackgroundWork } from '../src/background-work.js';
import type { Clock } from '../src/domain/clock.js';
import { createEventFeed } from '../src/events/event-feed.js';
import type { Store } from '../src/storage/store.js';
import { fakeClock, T0 } from './helpers/fake-clock.js';
import { registerAgent } from './helpers/fixtures.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';
import { receiver } from './helpers/webhook-receiver.js';

/** A store whose every call fails, as one whose database is down. */
const storeDown = new Proxy({} as Store, {
  get(_, name) {
    if (name === 'onEventsWritten') return () => () => undefined;
    if (typeof name !== 'string' || name.endsWith('OffEventLoop') || name === 'moveCountMarks' || name === 'then') return undefined;
    return () => Promise.reject(new Error(`the database is down (${name})`));
  },
});

describe('the background work', () => {
  it('logs the first failure of the sweeper, the due-event pump and the webhook dispatcher, and holds back the next', async () => {
    const lines: Array<{ message: string; heldBack: unknown; err: unknown }> = [];
    const log = { error: (fields: object, message: string) => lines.push({ message, ...(fields as { heldBack: unknown; err: unknown }) }), warn: () => undefined };
    const config = { retentionMs: 60_000, sweepIntervalMs: 60_000, sweepBatchSize: 100, eventRetentionMs: 3_600_000, webhookPrivateAddresses: 'allow' as const };
    const { sweeper, eventPump, webhooks } = createBackgroundWork({ store: storeDown, clock: fakeClock(T0), config, log: () => log });
    for (let pass = 0; pass < 3; pass += 1) {
      await sweeper.sweep();
      eventPump.start();
      await eventPump.stop();
      webhooks.start();
      await webhooks.stop();
    }
    expect(lines.map(({ message, heldBack }) => [message, heldBack])).toEqual([
      ['expiry sweep failed', 0],
      ['announcing due events failed', 0],
      ['webhook delivery failed', 0],
    ]);
    for (const line of lines) expect(String((line.err as Error).message)).toMatch(/^the database is down/);
  });
});

/** `store` failing every call while `outage.down` (its optional work off the event loop hidden, as storeDown's). */
function withOutage(store: Store) {
  const outage = { down: true, eventsWritten: (_committed?: unknown) => {} };
  const proxy = new Proxy(store, {
    get(target, name) {
      if (name === 'onEventsWritten')
        return (listener: (committed?: unknown) => void) => {
          outage.eventsWritten = listener;
          return () => undefined;
        };
      if (typeof name !== 'string' || name.endsWith('OffEventLoop') || name === 'moveCountMarks' || name === 'then') return undefined;
      const value = Reflect.get(target, name) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => (outage.down ? Promise.reject(new Error(`the database is down (${name})`)) : (value as (...a: unknown[]) => unknown).apply(target, args));
    },
  });
  return { store: proxy, outage };
}

describe('the background work, once the store is back', () => {
  it('logs at warn that each task works again, with how many times it failed', async () => {
    const clock = fakeClock(Date.now());
    const t = await startTestApp({ clock });
    try {
      const { store, outage } = withOutage(t.store);
      const lines: unknown[] = [];
      const log = { error: (_: object, message: string) => lines.push(message), warn: (fields: object, message: string) => lines.push([message, (fields as { failures: number }).failures]) };
      const config = { retentionMs: 60_000, sweepIntervalMs: 60_000, sweepBatchSize: 100, eventRetentionMs: 3_600_000, webhookPrivateAddresses: 'allow' as const };
      const { sweeper, eventPump, webhooks } = createBackgroundWork({ store, clock, config, log: () => log });
      const pass = async () => {
        await sweeper.sweep();
        eventPump.start();
        await eventPump.stop();
        webhooks.start();
        await webhooks.stop();
      };
      await pass();
      await pass();
      outage.down = false;
      await pass();
      await pass();
      expect(lines).toEqual([
        'expiry sweep failed',
        'announcing due events failed',
        'webhook delivery failed',
        ['expiry sweep works again', 2],
        ['announcing due events works again', 2],
        ['webhook delivery works again', 2],
      ]);
    } finally {
      await t.close();
    }
  });

  it('the event feed: a read that failed passes the failure on, the next that completes says so', async () => {
    const t = await startTestApp();
    try {
      const { store, outage } = withOutage(t.store);
      const outcomes: string[] = [];
      const feed = createEventFeed(store, { onError: (error) => outcomes.push(String((error as Error).message)), onSuccess: () => outcomes.push('read') });
      outage.down = false;
      const stop = await feed.follow({ see: () => undefined });
      outage.down = true;
      outage.eventsWritten(undefined); // another process wrote: read the log
      await vi.waitFor(() => expect(outcomes).toEqual(['the database is down (listEvents)']));
      outage.down = false;
      outage.eventsWritten(undefined);
      await vi.waitFor(() => expect(outcomes).toEqual(['the database is down (listEvents)', 'read']));
      stop();
    } finally {
      await t.close();
    }
  });
});

describe('the background work, wired', () => {
  it('reports sweeps and delivery attempts to the metrics', async () => {
    const t = await startTestApp({ clock: fakeClock(Date.now()) });
    const hook = await receiver(() => 200);
    try {
      expect((await t.request({ method: 'POST', url: '/api/webhooks', body: { url: hook.url } })).status).toBe(201);
      await registerAgent(t);
      const sweeps: unknown[] = [];
      const attempts: unknown[] = [];
      const warnings: unknown[] = [];
      const metrics = { observeSweep: (...args: unknown[]) => sweeps.push(args), observeDelivery: (outcome: unknown) => attempts.push(outcome) } as never;
      const log = { error: () => undefined, warn: (fields: object) => warnings.push(fields) };
      const config = { retentionMs: 60_000, sweepIntervalMs: 60_000, sweepBatchSize: 100, eventRetentionMs: 3_600_000, webhookPrivateAddresses: 'allow' as const };
      const { sweeper, webhooks } = createBackgroundWork({ store: t.store, clock: t.clock, config, metrics, log: () => log });
      await sweeper.sweep();
      expect(sweeps).toHaveLength(1);
      await webhooks.tick();
      expect(attempts).toEqual(['delivered']);
      expect(warnings).toEqual([]);
    } finally {
      await hook.close();
      await t.close();
    }
  });
});

/** The background work's webhook dispatcher on the app's store, its warn lines as { message, ...fields }. */
function webhooksWarning(t: TestApp, clock: Clock, webhookPrivateAddresses: 'allow' | 'deny' = 'allow') {
  const warnings: Array<Record<string, unknown>> = [];
  const log = { error: () => undefined, warn: (fields: object, message: string) => warnings.push({ message, ...fields }) };
  const config = { retentionMs: 60_000, sweepIntervalMs: 60_000, sweepBatchSize: 100, eventRetentionMs: 72 * 3_600_000, webhookPrivateAddresses };
  const { webhooks } = createBackgroundWork({ store: t.store, clock, config, log: () => log });
  return { webhooks, warnings };
}

const CREDENTIALS_NAMED = 'the URL has a user name or password, which are never sent: make the webhook again without them';

describe('the background work, webhook attempts that fail', () => {
  it('logs each at warn with the webhook, the event, the attempt, the answer and the next try; the one that disables the webhook says so', async () => {
    const clock = fakeClock(Date.now());
    const t = await startTestApp({ clock });
    const hook = await receiver(() => 500);
    try {
      const created = await t.request({ method: 'POST', url: '/api/webhooks', body: { url: hook.url } });
      expect(created.status).toBe(201);
      await registerAgent(t);
      const { webhooks, warnings } = webhooksWarning(t, clock);
      await webhooks.tick();
      expect(hook.received).toHaveLength(1);
      const event = (await t.store.listEvents({ limit: 1 }))[0]!;
      expect(warnings).toEqual([{ message: 'webhook delivery attempt failed', webhookId: created.body.id, eventId: event.id, attempt: 1, statusCode: 500, error: 'HTTP 500', nextRetryAt: expect.any(String) }]);
      const retryIn = Date.parse(warnings[0]!.nextRetryAt as string) - clock.now();
      expect(retryIn).toBeGreaterThanOrEqual(2_500);
      expect(retryIn).toBeLessThanOrEqual(7_500);
      clock.advance(24 * 3_600_000);
      await webhooks.tick();
      expect(hook.received).toHaveLength(2);
      expect(warnings.slice(1)).toEqual([{ message: 'webhook disabled: its deliveries failed for 24 hours', webhookId: created.body.id, eventId: event.id, attempt: 2, statusCode: 500, error: 'HTTP 500', nextRetryAt: undefined }]);
    } finally {
      await hook.close();
      await t.close();
    }
  });
});

describe('the background work, a failed attempt logged (r48)', () => {
  /** A webhook at `url`, as a server before 008e2e2 stored it: the create then let credentials through. */
  async function storedBefore008e2e2(t: TestApp, clock: Clock, url: string): Promise<void> {
    await t.store.insertWebhook({ id: 'wh-old', url, secret: 'whsec_c2VjcmV0', createdAt: clock.now(), cursor: '0', attempts: 0, nextAttemptAt: clock.now() });
    await registerAgent(t);
  }

  it('does not write a webhook URL\'s credentials to the log (a webhook stored before the create refused them)', async () => {
    const clock = fakeClock(Date.now());
    const t = await startTestApp({ clock });
    try {
      await storedBefore008e2e2(t, clock, 'https://user:s3cret@example.invalid/hook?token=t0ken');
      const { webhooks, warnings } = webhooksWarning(t, clock);
      await webhooks.tick();
      expect(warnings).toHaveLength(1);
      expect(warnings[0]!.error).toBe(CREDENTIALS_NAMED);
      expect(JSON.stringify(warnings)).not.toContain('s3cret');
      expect(JSON.stringify(warnings)).not.toContain('t0ken');
    } finally {
      await t.close();
    }
  });

  it('names the credentials before a private address (WEBHOOK_PRIVATE_ADDRESSES=deny): the webhook is to be made again either way, without them', async () => {
    const clock = fakeClock(Date.now());
    const t = await startTestApp({ clock });
    try {
      await storedBefore008e2e2(t, clock, 'http://user:s3cret@127.0.0.1/hook');
      const { webhooks, warnings } = webhooksWarning(t, clock, 'deny');
      await webhooks.tick();
      expect(warnings).toHaveLength(1);
      expect(warnings[0]!.error).toBe(CREDENTIALS_NAMED);
    } finally {
      await t.close();
    }
  });
});
