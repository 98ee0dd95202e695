// Prometheus metrics (prom-client), one registry per app: request durations by
// operationId and status, session counts read from the store at scrape time, sweeper
// runs, event deliveries (webhook attempts, open event streams), database call latency,
// and Node's default process and event-loop metrics.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { SessionCounts, Store } from '../storage/store.js';
import type { DeliveryOutcome } from '../events/webhook-delivery.js';
import type { SweepReport } from '../sweeper.js';
import { type HistogramChild, arrayHistogram } from './array-histogram.js';

const DB_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5];
// Up to a minute: a wait for the agent's reply (30 s by default) and a webhook attempt (10 s at most) have buckets, not +Inf.
const REQUEST_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export interface Metrics {
  registry: Registry;
  observeRequest(operationId: string, status: number, seconds: number): void;
  observeSweep(report: SweepReport, seconds: number, failed: boolean): void;
  observeDelivery(outcome: DeliveryOutcome, seconds: number): void;
  /** Where the open event streams gauge reads its value when scraped. */
  countStreamsWith(count: () => number): void;
  /** The store with every call timed into the database latency histogram. */
  instrumentStore(store: Store): Store;
  /** Where the session gauges read their counts when scraped. */
  countSessionsWith(count: () => Promise<SessionCounts>): void;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];

  // Observed on every request and every store call: histograms on plain arrays.
  const requestDuration = arrayHistogram({
    name: 'sessions_api_http_request_duration_seconds',
    help: 'Request duration by operationId (not_found: no route, or a URL the router refused; unread: answered by Node before the request was read) and status (499: the client left before any answer).',
    labelNames: ['operationId', 'status'],
    buckets: REQUEST_BUCKETS,
    registry,
  });
  const dbDuration = arrayHistogram({
    name: 'sessions_api_db_call_duration_seconds',
    help: 'Duration of each call to the store, by store method.',
    labelNames: ['call'],
    buckets: DB_BUCKETS,
    registry,
  });
  const sweepRuns = new Counter({ name: 'sessions_api_sweeper_runs_total', help: 'Sweeper passes, by result.', labelNames: ['result'], registers });
  const sweepDuration = new Histogram({ name: 'sessions_api_sweeper_duration_seconds', help: 'Duration of a sweeper pass.', registers });
  const swept = new Counter({ name: 'sessions_api_sweeper_sessions_total', help: 'What the sweeper did to sessions: announced (a due warning or expiry the event pump had not announced), purged.', labelNames: ['action'], registers });

  const deliveries = new Counter({
    name: 'sessions_api_webhook_deliveries_total',
    help: 'Webhook delivery attempts, by outcome (disabled: the attempt after which the webhook was disabled).',
    labelNames: ['outcome'],
    registers,
  });
  const deliveryDuration = new Histogram({ name: 'sessions_api_webhook_delivery_duration_seconds', help: 'Duration of a webhook delivery attempt.', buckets: REQUEST_BUCKETS, registers });
  let countStreams: (() => number) | undefined;
  new Gauge({
    name: 'sessions_api_event_streams',
    help: 'Event streams (Server-Sent Events) open at scrape time.',
    registers,
    collect() {
      if (countStreams) this.set(countStreams());
    },
  });

  const requestChildren = new Map<string, Map<number, HistogramChild>>();

  let countSessions: (() => Promise<SessionCounts>) | undefined;
  new Gauge({
    name: 'sessions_api_sessions',
    help: 'Sessions in the store at scrape time, by state (expired: not yet purged).',
    labelNames: ['state'],
    registers,
    async collect() {
      if (!countSessions) return;
      this.reset();
      // A database that cannot be read leaves the gauge empty; the rest still scrapes.
      const counts = await countSessions().catch(() => undefined);
      if (!counts) return;
      this.set({ state: 'active' }, counts.active);
      this.set({ state: 'expiring_soon' }, counts.expiringSoon);
      this.set({ state: 'expired' }, counts.total - counts.active);
    },
  });

  return {
    registry,
    observeRequest(operationId, status, seconds) {
      let byStatus = requestChildren.get(operationId);
      if (!byStatus) requestChildren.set(operationId, (byStatus = new Map()));
      let child = byStatus.get(status);
      if (!child) byStatus.set(status, (child = requestDuration.child(operationId, String(status))));
      child.observe(seconds);
    },
    observeSweep(report, seconds, failed) {
      sweepRuns.inc({ result: failed ? 'failed' : 'ok' });
      sweepDuration.observe(seconds);
      swept.inc({ action: 'announced' }, report.announced);
      swept.inc({ action: 'purged' }, report.purged);
    },
    observeDelivery(outcome, seconds) {
      deliveries.inc({ outcome });
      deliveryDuration.observe(seconds);
    },
    countStreamsWith(count) {
      countStreams = count;
    },
    instrumentStore(store) {
      // A plain object of wrappers made once (a Proxy's trap ran on every call). The caller
      // awaits the store's own promise; the timing hangs off it.
      const timed: Record<string, unknown> = {};
      for (const [method, original] of Object.entries(store)) {
        if (typeof original !== 'function') {
          timed[method] = original;
          continue;
        }
        const child = dbDuration.child(method);
        timed[method] = (...args: unknown[]) => {
          const started = performance.now();
          const result: unknown = original.apply(store, args);
          // Only calls that return a promise are database calls; a synchronous one (onEventsWritten) passes through.
          if (result instanceof Promise) {
            const observe = () => child.observe((performance.now() - started) / 1000);
            result.then(observe, observe);
          }
          return result;
        };
      }
      return timed as unknown as Store;
    },
    countSessionsWith(count) {
      countSessions = count;
    },
  };
}
