// `npm start`: serve the API from the configuration in the environment.
import { buildApp } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { systemClock } from './domain/clock.js';
import { createEventPump } from './events/due-events.js';
import { createWebhookDispatcher } from './events/webhook-delivery.js';
import { openSqliteStore } from './storage/sqlite/sqlite-store.js';
import { createSweeper } from './sweeper.js';

function fail(message: string): never {
  console.error(`sessions-api: ${message}`);
  process.exit(1);
}

let config;
try {
  config = loadConfig(process.env);
} catch (error) {
  if (error instanceof ConfigError) fail(`invalid configuration: ${error.message}`);
  throw error;
}

const store = openSqliteStore(config.databasePath, { synchronous: config.sqliteSynchronous });
const { retentionMs, sessionDefaults } = config;
const sweeper = createSweeper({
  store,
  clock: systemClock,
  retentionMs,
  intervalMs: config.sweepIntervalMs,
  batchSize: config.sweepBatchSize,
  eventRetentionMs: config.eventRetentionMs,
  onError: (error) => app.log.error({ err: error }, 'expiry sweep failed'),
});
const eventPump = createEventPump({
  store,
  clock: systemClock,
  onError: (error) => app.log.error({ err: error }, 'announcing due events failed'),
});
const webhooks = createWebhookDispatcher({
  store,
  clock: systemClock,
  onError: (error) => app.log.error({ err: error }, 'webhook delivery failed'),
});
const access = { apiKeys: config.apiKeys, rateLimitPerMinute: config.rateLimitPerMinute, corsOrigins: config.corsOrigins };
const app = buildApp({ store, clock: systemClock, sessionDefaults, retentionMs, sweeper }, { logger: { level: config.logLevel }, access });

try {
  await app.listen({ host: config.host, port: config.port });
} catch (error) {
  await app.close();
  fail(`cannot listen on ${config.host}:${config.port}: ${(error as Error).message}`);
}

sweeper.start();
eventPump.start();
webhooks.start();
const address = app.server.address();
const port = typeof address === 'object' && address ? address.port : config.port;
console.log(`Sessions API listening on http://${config.host}:${port} (database: ${config.databasePath})`);

let stopping = false;
async function stop(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  // close() stops accepting connections, lets requests in flight finish, then closes the store.
  await eventPump.stop();
  await webhooks.stop();
  await app.close();
  console.log(`Sessions API stopped (${signal})`);
  process.exit(0);
}
process.once('SIGINT', () => void stop('SIGINT'));
process.once('SIGTERM', () => void stop('SIGTERM'));
