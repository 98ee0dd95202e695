// `npm start`: serve the API from the configuration in the environment.
import closeWithGrace from 'close-with-grace';
import { buildApp } from './app.js';
import { createBackgroundWork } from './background-work.js';
import { ConfigError, loadConfig } from './config.js';
import { steadyClock, systemClock } from './domain/clock.js';
import { announceUpgrade, describeStore, openStore } from './storage/open-store.js';
import { compileRouteSchemasInTurns } from './http/route-schemas.js';
import { logOutput } from './ops/log-output.js';
import { createMetrics } from './ops/metrics.js';
import { listenUrl } from './listen-url.js';

/** Startup failures are one line, naming what is wrong; never a stack trace. */
function fail(message: string): never {
  console.error(`sessions-api: ${message}`);
  process.exit(1);
}

const reason = (error: unknown) => {
  const { message, code } = error as { message?: string; code?: string };
  return code && !message?.includes(code) ? `${message} (${code})` : String(message ?? error);
};

let config;
try {
  config = loadConfig(process.env);
} catch (error) {
  if (error instanceof ConfigError) fail(`invalid configuration: ${error.message}`);
  fail(`cannot read the configuration: ${reason(error)}`);
}

const { logPretty, metricsEnabled, metricsToken } = config.observability;
const metrics = metricsEnabled ? createMetrics() : undefined;
// As PID 1 (a container's `node dist/main.js`, with no init), a signal with no handler is
// ignored: a SIGTERM during a long schema upgrade was lost, and the server went on to serve
// (L19). There, until the graceful handlers below, a stop signal ends the process once what
// runs now is done (an upgrade is a transaction: done, or not begun). Elsewhere the default
// action ends it at once, as before.
const stopBeforeListening = (signal: NodeJS.Signals) => {
  console.error(`Sessions API stopped (${signal}, before it listened)`);
  process.exit(0);
};
const STOP_SIGNALS = ['SIGTERM', 'SIGINT'] as const;
if (process.pid === 1) for (const signal of STOP_SIGNALS) process.on(signal, stopBeforeListening);

let openedStore;
try {
  openedStore = await openStore(config, { onUpgrade: announceUpgrade });
} catch (error) {
  fail(`cannot open the database ${describeStore(config)}: ${reason(error)}`);
}
// A signal sent during the upgrade (synchronous) is read in the event loop's poll phase:
// the second immediate runs after one (the first may run in the phase that ran the upgrade).
await new Promise((resolve) => setImmediate(() => setImmediate(resolve)));
const store = metrics ? metrics.instrumentStore(openedStore) : openedStore;
const { retentionMs, sessionDefaults } = config;
// One reading of the time for the requests and the background work: a forward jump of the
// wall clock is followed by all of them once it has held a minute (steadyClock).
// (Logged by the app's logger, made below: a jump seen before it is not logged.)
let logClockJump = (_aheadMs: number) => {};
const clock = steadyClock(systemClock, (aheadMs) => logClockJump(aheadMs));
const { sweeper, eventPump, webhooks } = createBackgroundWork({ store, clock, config, ...(metrics ? { metrics } : {}), log: () => app.log });
const access = { apiKeys: config.apiKeys, rateLimitPerMinute: config.rateLimitPerMinute, corsOrigins: config.corsOrigins };
// JSON lines to stdout from a bounded buffer, never waited for (log-output.ts); LOG_PRETTY's through pino-pretty's worker.
const output = logOutput({ onDropped: (lines) => app.log.warn({ dropped: lines }, 'log lines dropped: stdout did not take them') });
process.on('exit', () => output.flushSync());
const logger = { level: config.logLevel, ...(logPretty ? { transport: { target: 'pino-pretty' } } : { stream: output }) };
const app = buildApp(
  { store, clock, sessionDefaults, retentionMs, sweeper, agentReplyTimeoutMs: config.agentReplyTimeoutMs, webhookPrivateAddresses: config.webhookPrivateAddresses, webhooksPerKeyMax: config.webhooksPerKeyMax },
  { logger, timeouts: config.http, access, metrics, metricsToken, maxEventStreams: config.eventStreamsMax, maxEventStreamsPerKey: config.eventStreamsPerKeyMax, trustProxy: config.trustProxy },
);

logClockJump = (aheadMs) =>
  app.log.warn({ aheadMs }, 'the wall clock jumped ahead: the server follows it once the jump has held a minute (expiries, purges, the times requests store)');

try {
  await app.ready();
} catch (error) {
  await app.close().catch(() => undefined);
  fail(`cannot start: ${reason(error)}`);
}
try {
  await app.listen({ host: config.host, port: config.port });
} catch (error) {
  await app.close().catch(() => undefined);
  fail(`cannot listen on ${listenUrl(config.host, config.port)}: ${reason(error)}`);
}

// SIGINT / SIGTERM: stop accepting connections, close idle keep-alive sockets, finish the
// requests in flight (each answer then closes its connection), close the store, exit 0.
// Past the grace period it exits 1 with whatever is still in flight.
closeWithGrace(
  {
    delay: config.shutdownGraceMs,
    logger: { error: (message: unknown) => console.error(`sessions-api: ${message instanceof Error ? message.message : message}`) },
    onTimeout: (delay) => console.error(`sessions-api: requests still in flight after the ${delay / 1000} s shutdown grace period; exiting`),
  },
  async ({ signal, err }) => {
    if (err) app.log.fatal({ err }, 'unexpected error; shutting down');
    await eventPump.stop();
    await webhooks.stop();
    await app.close();
    await output.drained(1000);
    console.error(`Sessions API stopped (${signal ?? 'error'})`);
  },
);
for (const signal of STOP_SIGNALS) process.off(signal, stopBeforeListening);

// After the signal handlers: a signal sent on seeing this line stops the server gracefully.
// The process's own lines go to stderr: stdout carries the logs alone, one JSON document a line.
sweeper.start();
eventPump.start();
webhooks.start();
const address = app.server.address();
const port = typeof address === 'object' && address ? address.port : config.port;
console.error(`Sessions API listening on ${listenUrl(config.host, port)} (database: ${describeStore(config)})`);
// The routes' schemas, compiled between requests from a second on: no first request waits
// for its own, and a process that lives less (a test's, a health probe's) does not pay.
setTimeout(() => void compileRouteSchemasInTurns(), 1000).unref();
