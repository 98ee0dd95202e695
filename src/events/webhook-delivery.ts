// Webhook deliveries: each webhook walks the event log from its cursor, one event at a
// time, POSTing the Event JSON signed as Standard Webhooks says. A failure (non-2xx, or
// no answer within 10 s) is retried with exponential backoff and jitter, before any later
// event (in order); 24 hours of failure disable the webhook. The cursor and the backoff
// are in the store, so a restart resumes where it stopped: at least once. Instances
// sharing a store (PostgreSQL, or processes on one SQLite file) claim each webhook
// before each attempt: one delivers it.
// POSTs go through undici's fetch, whose connections can be given a DNS lookup of their
// own (WEBHOOK_PRIVATE_ADDRESSES=deny: public addresses only).
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import type { LookupFunction } from 'node:net';
import { createRequire } from 'node:module';
import type { Agent } from 'undici';
import { type Clock, steadyWallTime } from '../domain/clock.js';
import type { DeliveryRecord, EventRecord, Store, WebhookRecord } from '../storage/store.js';
import { eventJson } from './event-records.js';
import { PRIVATE_ADDRESS_CODE, type PrivateAddresses, privateAddressIn, publicOnlyLookup } from './private-addresses.js';

/**
 * undici, loaded on the first delivery: a server without webhooks does not pay for it at start
 * (0.1 s of CPU). By require, not import(): Node keeps a failed import() for good (X19: one
 * EMFILE at the first delivery failed every later one until a restart); a failed require is
 * tried again.
 */
const requireHere = createRequire(import.meta.url);
let undici: typeof import('undici') | undefined;
const loadUndici = () => (undici ??= requireHere('undici') as typeof import('undici'));

const DELIVERY_TIMEOUT_MS = 10_000;
const FAILURE_WINDOW_MS = 24 * 60 * 60_000;
const FIRST_RETRY_MS = 5_000;
const LONGEST_RETRY_MS = 60 * 60_000;

export function newWebhookSecret(): string {
  return `whsec_${randomBytes(24).toString('base64')}`;
}

/** `v1,<base64 HMAC-SHA256 of id.timestamp.body>`, keyed with the secret's bytes. */
export function signature(secret: string, messageId: string, timestampSeconds: number, body: string): string {
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  return `v1,${createHmac('sha256', key).update(`${messageId}.${timestampSeconds}.${body}`).digest('base64')}`;
}

/**
 * Whether a webhook's next attempt is due at `now`: always when it is not failing. A retry
 * further ahead than its backoff can reach (with the largest jitter) was scheduled by a
 * clock since stepped back: it is due, instead of waiting out the step too.
 */
function isDue(webhook: Pick<WebhookRecord, 'nextAttemptAt' | 'disabledAt' | 'attempts'>, now: number): boolean {
  if (webhook.disabledAt !== undefined) return false;
  // A nextAttemptAt ahead with no failure is the last delivery's time, before a clock set back.
  if (webhook.attempts === 0 || webhook.nextAttemptAt <= now) return true;
  return webhook.nextAttemptAt - now > retryDelayMs(webhook.attempts, 1);
}

/** The wait before retry `attempt + 1`: 5 s doubling up to an hour, times a jitter of 0.5-1.5 (`random` in [0, 1)). */
export function retryDelayMs(attempt: number, random: number): number {
  const base = Math.min(FIRST_RETRY_MS * 2 ** (attempt - 1), LONGEST_RETRY_MS);
  return Math.round(base * (0.5 + random));
}

export interface WebhookDispatcherOptions {
  store: Store;
  clock: Clock;
  intervalMs?: number;
  timeoutMs?: number;
  random?: () => number;
  onError?: (error: unknown) => void;
  /** A tick in which nothing failed (after failures, the log says delivery works again). */
  onSuccess?: () => void;
  /** After each attempt is recorded, with its outcome, how long the POST took, and the attempt as recorded. */
  onAttempt?: (outcome: DeliveryOutcome, seconds: number, delivery: DeliveryRecord) => void;
  /** IDLE_REREAD_MS unless given. */
  idleRereadMs?: number;
  /** `deny`: only public addresses are POSTed to (WEBHOOK_PRIVATE_ADDRESSES); `allow` unless given. */
  privateAddresses?: PrivateAddresses;
  /** With `deny`: how its connections look names up (publicOnlyLookup unless given; a test stands in a resolver). */
  publicLookup?: LookupFunction;
  /** How long `stop()` lets the POSTs under way finish (STOP_GRACE_MS unless given). */
  stopGraceMs?: number;
}

/**
 * How long a stopping dispatcher lets the POSTs under way finish and be recorded, before
 * it abandons them: a receiver that already has one would get it again after a restart.
 * Short: a receiver that does not answer holds the server's shutdown this long at most.
 */
const STOP_GRACE_MS = 2_000;

/** A delivery attempt: answered 2xx, failed (retried later), or failed for good (the webhook disabled). */
export type DeliveryOutcome = 'delivered' | 'failed' | 'disabled';

export interface WebhookDispatcher {
  /** Delivers what is due now, for every webhook; resolves when those attempts are over. */
  tick(): Promise<void>;
  start(): void;
  stop(): Promise<void>;
}

/** A claim on a webhook outlasts one delivery attempt by this much. */
const CLAIM_MARGIN_MS = 5_000;

/** Events a webhook takes, at most, per tick: the next tick goes on. */
const EVENTS_PER_TICK = 100;

/**
 * While the last read of the webhooks found none, commits wake a read at most this
 * often: a store without webhooks is not read once per write, and a webhook made since
 * (by any instance) gets its first event at most this late.
 */
const IDLE_REREAD_MS = 100;

export function createWebhookDispatcher(options: WebhookDispatcherOptions): WebhookDispatcher {
  const { store, clock, intervalMs = 1000, timeoutMs = DELIVERY_TIMEOUT_MS, random = Math.random, onError, onSuccess, onAttempt, idleRereadMs = IDLE_REREAD_MS, stopGraceMs = STOP_GRACE_MS } = options;
  const actingNow = steadyWallTime(clock);
  const publicOnly = options.privateAddresses === 'deny';
  // With `deny`: the connections, through a lookup that refuses private addresses. Made on first use, closed by stop().
  let publicOnlyAgent: Agent | undefined;
  const busy = new Set<string>();
  /**
   * Per webhook: the last event id a read went past finding nothing for it. Else a filter
   * that matches rarely (a quiet agent, a rare type) would walk every event since its last
   * match on every tick: the next claim moves the cursor here.
   */
  const readPast = new Map<string, string>();
  /** This dispatcher, as the holder of its claims on webhooks (store.claimWebhook). */
  const holder = randomUUID();
  /** Until when this dispatcher's claims run, per webhook: stop() gives back those not run out. */
  const claimedUntil = new Map<string, number>();
  let timer: NodeJS.Timeout | undefined;
  let idleWake: NodeJS.Timeout | undefined;
  /** When the last read of the webhooks found none (performance.now()); undefined when it found some. */
  let noneSince: number | undefined;
  let unsubscribe: (() => void) | undefined;
  let stopped = false;
  /** Aborts the POSTs still under way once a stopping dispatcher's grace is over: it does not wait out a slow receiver. */
  let stopping = new AbortController();
  const running = new Set<Promise<void>>();

  /** The attempt's outcome; undefined when the dispatcher stopped under it (not an attempt: the event goes again after the restart). */
  async function post(webhook: WebhookRecord, event: EventRecord): Promise<{ statusCode?: number; error?: string } | undefined> {
    const body = eventJson(event);
    const messageId = `evt_${event.id}`;
    const timestamp = Math.floor(clock.now() / 1000);
    const url = new URL(webhook.url);
    // fetch refuses them, with the whole URL in its message (stored with the attempt, and logged): a webhook made before the create refused them.
    if (url.username !== '' || url.password !== '') return { error: 'the URL has a user name or password, which are never sent: make the webhook again without them' };
    // An address in the URL itself is never looked up: checked here (a webhook made before `deny`).
    const privateAddress = publicOnly && privateAddressIn(url);
    if (privateAddress) return { error: `${privateAddress} (WEBHOOK_PRIVATE_ADDRESSES=deny)` };
    // A timer of its own, not AbortSignal.timeout inside AbortSignal.any: Node 20 holds that
    // one weakly, a garbage collection takes it, and the attempt waited for undici's 300 s.
    const attempt = new AbortController();
    const timer = setTimeout(() => attempt.abort(new DOMException(`no answer within ${timeoutMs} ms`, 'TimeoutError')), timeoutMs);
    const stop = stopping.signal;
    const onStop = () => attempt.abort(stop.reason);
    if (stop.aborted) onStop();
    else stop.addEventListener('abort', onStop, { once: true });
    try {
      const { Agent, fetch } = loadUndici();
      const response = await fetch(webhook.url, {
        ...(publicOnly ? { dispatcher: (publicOnlyAgent ??= new Agent({ connect: { lookup: options.publicLookup ?? publicOnlyLookup } })) } : {}),
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'webhook-id': messageId,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signature(webhook.secret, messageId, timestamp, body),
        },
        body,
        redirect: 'manual',
        signal: attempt.signal,
      });
      await response.body?.cancel();
      return response.ok ? { statusCode: response.status } : { statusCode: response.status, error: `HTTP ${response.status}` };
    } catch (error) {
      if (stop.aborted) return undefined;
      const name = (error as Error).name;
      if (name === 'TimeoutError') return { error: `no answer within ${timeoutMs} ms` };
      // fetch says only "fetch failed": why (ECONNREFUSED, ENOTFOUND, bad port) is its cause.
      const cause = (error as Error & { cause?: { code?: unknown; message?: unknown } }).cause;
      const reason = cause?.code === PRIVATE_ADDRESS_CODE ? cause.message : typeof cause?.code === 'string' ? cause.code : typeof cause?.message === 'string' ? cause.message : undefined;
      const message = String((error as Error).message ?? error);
      return { error: reason === undefined ? message : `${message}: ${reason}` };
    } finally {
      clearTimeout(timer);
      stop.removeEventListener('abort', onStop);
    }
  }

  /**
   * This dispatcher's claim on the webhook, with its stored state; undefined when another
   * server's dispatcher has it. The claim stores what the last read passed over.
   */
  async function claim(state: WebhookRecord): Promise<WebhookRecord | undefined> {
    const now = clock.now();
    const passed = readPast.get(state.id);
    readPast.delete(state.id);
    const until = now + timeoutMs + CLAIM_MARGIN_MS;
    const claimed = await store.claimWebhook(state.id, holder, now, until, passed);
    if (claimed) claimedUntil.set(state.id, until);
    return claimed && isDue(claimed, now) ? claimed : undefined;
  }

  /**
   * Stopping: every claim not run out goes back (those of the attempts just finished, and of
   * the deliveries done in the last 15 s), so that the next start, or another server, goes
   * on at once: a restart held each webhook delivered to shortly before it that long.
   */
  async function giveClaimsBack(): Promise<void> {
    const now = clock.now();
    const live = [...claimedUntil].filter(([, until]) => until > now);
    claimedUntil.clear();
    await Promise.all(live.map(([id]) => store.claimWebhook(id, holder, now, now).catch((error) => onError?.(error))));
  }

  async function deliver(webhook: WebhookRecord): Promise<void> {
    let state = webhook;
    for (let sent = 0; sent < EVENTS_PER_TICK && !stopped; sent += 1) {
      // Read before the events: the read below sees at least these. Nothing past the cursor: no claim (a write).
      const head = await store.lastEventId();
      if (head === undefined || BigInt(head) <= BigInt(readPast.get(state.id) ?? state.cursor)) return;
      const held = await claim(state);
      if (!held) return;
      state = held;
      if (BigInt(head) <= BigInt(state.cursor)) return; // delivered meanwhile by another server
      const [event] = await store.listEvents({ after: state.cursor, types: state.types, agentId: state.agentId, agentIds: state.agentIds, limit: 1 });
      if (!event) {
        readPast.set(state.id, head);
        return;
      }
      const started = performance.now();
      const attemptedAt = clock.now(); // when it was sent: an answer may take up to the delivery timeout
      const outcome = await post(state, event);
      if (!outcome) return; // stopped under it: no attempt, the event goes again
      const seconds = (performance.now() - started) / 1000;
      const now = clock.now();
      const attempt = state.attempts + 1;
      if (outcome.error === undefined) {
        state = { ...state, cursor: event.id, attempts: 0, nextAttemptAt: now, failingSince: undefined };
        const delivery = { webhookId: state.id, eventId: event.id, attempt, attemptedAt, statusCode: outcome.statusCode };
        const stored = await store.recordDelivery(delivery, state, holder);
        onAttempt?.('delivered', seconds, delivery);
        if (!stored) return; // deleted meanwhile (the attempt under way was its last), or another server's now
        continue;
      }
      const failingSince = state.failingSince ?? now;
      // Disabling cannot be undone: a clock that jumped ahead counts once the jump has held.
      const disabled = actingNow() - failingSince >= FAILURE_WINDOW_MS;
      const nextRetryAt = disabled ? undefined : now + retryDelayMs(attempt, random());
      state = { ...state, attempts: attempt, failingSince, nextAttemptAt: nextRetryAt ?? now, disabledAt: disabled ? now : undefined };
      const delivery = { webhookId: state.id, eventId: event.id, attempt, attemptedAt, ...outcome, nextRetryAt };
      await store.recordDelivery(delivery, state, holder);
      onAttempt?.(disabled ? 'disabled' : 'failed', seconds, delivery);
      return;
    }
  }

  /** The webhooks, read once for every tick that starts while a read is in flight: each commit wakes a tick. */
  let listing: Promise<WebhookRecord[]> | undefined;
  const listWebhooks = () =>
    (listing ??= store
      .listWebhooks()
      .then((webhooks) => {
        noneSince = webhooks.length === 0 ? performance.now() : undefined;
        return webhooks;
      })
      .finally(() => (listing = undefined)));

  async function tick(): Promise<void> {
    const webhooks = await listWebhooks();
    const listed = new Set(webhooks.map((webhook) => webhook.id));
    for (const id of readPast.keys()) if (!listed.has(id)) readPast.delete(id);
    const now = clock.now();
    for (const [id, until] of claimedUntil) if (until <= now || !listed.has(id)) claimedUntil.delete(id);
    // A webhook whose cursor (or what the last read here passed over) is the log's newest
    // event has nothing to deliver: not claimed, which is a write (S17: with thousands of
    // webhooks every tick wrote once for each, events or not).
    const head = BigInt((await store.lastEventId()) ?? '0');
    const due = webhooks.filter((w) => isDue(w, now) && !busy.has(w.id) && head > BigInt(readPast.get(w.id) ?? w.cursor));
    let failed = false;
    await Promise.all(
      due.map(async (webhook) => {
        busy.add(webhook.id);
        try {
          await deliver(webhook);
        } catch (error) {
          failed = true;
          onError?.(error);
        } finally {
          busy.delete(webhook.id);
        }
      }),
    );
    if (!failed) onSuccess?.();
  }

  function run(): void {
    const pass = tick().catch((error) => onError?.(error));
    running.add(pass);
    void pass.finally(() => running.delete(pass));
  }

  /** Events were committed: deliver them, unless there were no webhooks a moment ago (then read again once that moment is over). */
  function runAfterCommit(): void {
    const idleFor = noneSince === undefined ? Infinity : performance.now() - noneSince;
    if (idleFor >= idleRereadMs) return run();
    if (idleWake) return;
    idleWake = setTimeout(() => {
      idleWake = undefined;
      if (!stopped) run();
    }, idleRereadMs - idleFor);
    idleWake.unref();
  }

  return {
    tick,
    start() {
      stopped = false;
      // A dispatcher started again after stop(): its POSTs are not aborted at once.
      if (stopping.signal.aborted) stopping = new AbortController();
      run();
      timer ??= setInterval(run, intervalMs);
      timer.unref();
      unsubscribe ??= store.onEventsWritten(runAfterCommit);
    },
    async stop() {
      stopped = true;
      clearInterval(timer);
      timer = undefined;
      clearTimeout(idleWake);
      idleWake = undefined;
      unsubscribe?.();
      unsubscribe = undefined;
      let graceOver: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all(running), new Promise((resolve) => (graceOver = setTimeout(resolve, stopGraceMs)))]);
      clearTimeout(graceOver);
      stopping.abort();
      await Promise.all(running);
      await giveClaimsBack();
      const agent = publicOnlyAgent;
      publicOnlyAgent = undefined;
      await agent?.close();
    },
  };
}
