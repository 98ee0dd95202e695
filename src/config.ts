// Server configuration from the environment. A bad value stops startup with a clear
// message; nothing is clamped or guessed.
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { DEFAULTS } from './defaults.js';
import type { TimeoutConfigInput } from './domain/timeout-policy.js';
import type { PrivateAddresses } from './events/private-addresses.js';
import type { HttpTimeouts } from './http/server-options.js';
import { specSchemaValidator } from './spec.js';
import type { SqliteOptions } from './storage/sqlite/connection.js';

export interface ServerConfig {
  host: string;
  port: number;
  databasePath: string;
  /** normal: an acknowledged write survives the process being killed; full: also a power loss. */
  sqliteSynchronous: NonNullable<SqliteOptions['synchronous']>;
  logLevel: string;
  /** The server's layer of the timeout configuration (between agent settings and built-in defaults). */
  sessionDefaults: TimeoutConfigInput;
  /** How long an expired session is kept (answering 410) before it is purged (then 404). */
  retentionMs: number;
  sweepIntervalMs: number;
  sweepBatchSize: number;
  /** How long a write waits for another process's write lock before answering 503. */
  lockWaitMs: number;
  http: HttpTimeouts;
  /** How long a shutdown waits for requests in flight before exiting anyway (exit 1). */
  shutdownGraceMs: number;
  /** How long the event log keeps an event (EVENT_RETENTION_HOURS). */
  eventRetentionMs: number;
  /** How long a message sent with transport http or sse waits for the agent's reply (AGENT_REPLY_TIMEOUT_SECONDS). */
  agentReplyTimeoutMs: number;
  /** Event streams (SSE) open at once; one more is answered 503 (EVENT_STREAMS_MAX). */
  eventStreamsMax: number;
  /** Event streams one API key bound to agents keeps open at once; one more is answered 429 (EVENT_STREAMS_PER_KEY_MAX). */
  eventStreamsPerKeyMax: number;
  /** Webhooks one API key bound to agents may have; one more is answered 403 (WEBHOOKS_PER_KEY_MAX). */
  webhooksPerKeyMax: number;
  /** Admin API keys (API_KEYS); keys in the database's table count too. */
  apiKeys: string[];
  /** Requests per minute per key (per address without keys); undefined: no limit. */
  rateLimitPerMinute?: number;
  /** Origins allowed by CORS; empty: CORS off. */
  corsOrigins: string[];
  /** The reverse proxies whose X-Forwarded-For names the client (TRUST_PROXY); empty: none. */
  trustProxy: string[];
  /** deny: webhooks only to public addresses (WEBHOOK_PRIVATE_ADDRESSES). */
  webhookPrivateAddresses: PrivateAddresses;
  observability: ObservabilityConfig;
  /** DATABASE_URL given: the PostgreSQL store instead of SQLite at databasePath. */
  postgres?: PostgresConfig;
}

export interface PostgresConfig {
  url: string;
  /** Connections per instance (DATABASE_POOL_SIZE). */
  poolSize: number;
  /** A statement running longer is cancelled and answered 503 (DATABASE_STATEMENT_TIMEOUT_MS). */
  statementTimeoutMs: number;
}

export interface ObservabilityConfig {
  /** LOG_PRETTY=1: human-readable log lines (pino-pretty) instead of JSON. */
  logPretty: boolean;
  /** METRICS_ENABLED=false: no metrics collected, /metrics answers 404. */
  metricsEnabled: boolean;
  /** When set, /metrics wants `Authorization: Bearer <METRICS_TOKEN>`. */
  metricsToken?: string;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Env = Record<string, string | undefined>;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Environment variable → timeoutConfig field it sets. */
const SESSION_DEFAULT_VARS = {
  SESSION_DEFAULT_TIMEOUT_MINUTES: 'timeoutMinutes',
  SESSION_AUTO_RENEW: 'autoRenew',
  SESSION_MAX_DURATION_MINUTES: 'maxDurationMinutes',
  SESSION_WARNING_THRESHOLD_MINUTES: 'warningThresholdMinutes',
} as const satisfies Record<string, keyof TimeoutConfigInput>;

function read(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === '' ? undefined : value;
}

function parseInteger(name: string, value: string): number {
  if (!/^-?\d+$/.test(value)) throw new ConfigError(`${name}=${JSON.stringify(value)} must be an integer`);
  return Number(value);
}

function parseRanged(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  const value = parseInteger(name, raw);
  if (value < min || value > max) throw new ConfigError(`${name}=${raw} must be between ${min} and ${max}`);
  return value;
}

function parseBoolean(name: string, value: string): boolean {
  if (value !== 'true' && value !== 'false') {
    throw new ConfigError(`${name}=${JSON.stringify(value)} must be true or false`);
  }
  return value === 'true';
}

function parseSessionDefaults(env: Env): TimeoutConfigInput {
  const layer: Record<string, number | boolean> = {};
  for (const [name, field] of Object.entries(SESSION_DEFAULT_VARS)) {
    const value = read(env, name);
    if (value === undefined) continue;
    layer[field] = field === 'autoRenew' ? parseBoolean(name, value) : parseInteger(name, value);
  }
  // The ranges are the spec's: the same schema that validates request bodies.
  const validate = specSchemaValidator('TimeoutConfigInput');
  if (!validate(layer)) {
    const problems = (validate.errors ?? []).map((error) => {
      const field = error.instancePath.slice(1);
      const name = Object.entries(SESSION_DEFAULT_VARS).find(([, f]) => f === field)?.[0] ?? field;
      return `${name}=${read(env, name)} ${error.message}`;
    });
    throw new ConfigError(problems.join('; '));
  }
  return layer as TimeoutConfigInput;
}

const MIN_API_KEY_LENGTH = 16;

/** A comma-separated list; an empty value is none, an empty item (`a,,b`, `,`) a mistake. */
function parseList(env: Env, name: string): string[] {
  const value = read(env, name);
  if (value === undefined) return [];
  const items = value.split(',').map((item) => item.trim());
  const empty = items.indexOf('');
  if (empty >= 0) throw new ConfigError(`${name}: item ${empty + 1} of ${items.length} is empty (a stray comma?)`);
  return items;
}

/** A secret sent as a header's value (a key, a bearer token): visible ASCII, no spaces. */
const SENDABLE_IN_A_HEADER = /^[\x21-\x7e]+$/;

function parseApiKeys(env: Env): string[] {
  const keys = parseList(env, 'API_KEYS');
  const short = keys.findIndex((key) => key.length < MIN_API_KEY_LENGTH);
  if (short >= 0) throw new ConfigError(`API_KEYS: key ${short + 1} must be at least ${MIN_API_KEY_LENGTH} characters`);
  // Sent in a header (X-API-KEY, or Authorization: Bearer): a space or a non-ASCII character never arrives as written.
  const unsendable = keys.findIndex((key) => !SENDABLE_IN_A_HEADER.test(key));
  if (unsendable >= 0) throw new ConfigError(`API_KEYS: key ${unsendable + 1} must be visible ASCII without spaces (it is sent in a header); not shown here`);
  return keys;
}

function parseCorsOrigins(env: Env): string[] {
  const origins = parseList(env, 'CORS_ORIGINS');
  for (const origin of origins) {
    if (origin !== '*' && !/^https?:\/\/[^/\s]+$/.test(origin)) {
      throw new ConfigError(`CORS_ORIGINS: ${JSON.stringify(origin)} must be an origin like https://app.example.com (or *)`);
    }
  }
  return origins;
}

/** proxy-addr's names for address ranges, which Fastify's trustProxy takes beside addresses and CIDR ranges. */
const PROXY_RANGE_NAMES = ['loopback', 'linklocal', 'uniquelocal'];

function parseTrustProxy(env: Env): string[] {
  const entries = parseList(env, 'TRUST_PROXY');
  for (const entry of entries) {
    const [address = '', bits, ...more] = entry.split('/');
    const version = isIP(address);
    const range = bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (version === 4 ? 32 : 128));
    if (!PROXY_RANGE_NAMES.includes(entry) && (version === 0 || more.length > 0 || !range)) {
      throw new ConfigError(`TRUST_PROXY: ${JSON.stringify(entry)} must be an IP address, a CIDR range like 10.0.0.0/8, or one of ${PROXY_RANGE_NAMES.join(', ')}`);
    }
  }
  return entries;
}

function parseObservability(env: Env): ObservabilityConfig {
  const pretty = read(env, 'LOG_PRETTY') ?? '0';
  if (!['0', '1', 'true', 'false'].includes(pretty)) throw new ConfigError(`LOG_PRETTY=${JSON.stringify(pretty)} must be 1, 0, true or false`);
  const enabled = read(env, 'METRICS_ENABLED');
  const metricsToken = read(env, 'METRICS_TOKEN');
  // It travels as `Authorization: Bearer <token>`: a space or a non-ASCII character could never arrive.
  if (metricsToken !== undefined && !SENDABLE_IN_A_HEADER.test(metricsToken)) {
    throw new ConfigError('METRICS_TOKEN must be visible ASCII without spaces (it is sent in an Authorization header); not shown here');
  }
  return {
    logPretty: pretty === '1' || pretty === 'true',
    metricsEnabled: enabled === undefined ? true : parseBoolean('METRICS_ENABLED', enabled),
    ...(metricsToken === undefined ? {} : { metricsToken }),
  };
}

/** Query parameters of a connection URL that hold a secret (pg reads `password` there too). */
const SECRET_PARAMETERS = ['password', 'sslpassword'];

/** The URL without its password, for messages and logs. */
export function redactedUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    for (const name of SECRET_PARAMETERS) if (parsed.searchParams.has(name)) parsed.searchParams.set(name, '***');
    return parsed.toString();
  } catch {
    return '(unparsable URL)';
  }
}

function parsePostgres(env: Env): PostgresConfig | undefined {
  // Checked without DATABASE_URL too: a bad value is refused before the day it is used.
  const poolSize = parseRanged(env, 'DATABASE_POOL_SIZE', DEFAULTS.postgres.poolSize, 1, 1000);
  const statementTimeoutMs = parseRanged(env, 'DATABASE_STATEMENT_TIMEOUT_MS', DEFAULTS.postgres.statementTimeoutMs, 1, 600_000);
  const url = read(env, 'DATABASE_URL');
  if (url === undefined) return undefined;
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  // A Unix socket's folder is the host too: `postgres:///sessions?host=/var/run/postgresql`, as libpq has it.
  if (!parsed || !['postgres:', 'postgresql:'].includes(parsed.protocol) || !(parsed.hostname || parsed.searchParams.get('host'))) {
    throw new ConfigError(`DATABASE_URL must be a postgres://user:password@host:port/database URL, or postgres:///database?host=/socket/folder (got ${redactedUrl(url)})`);
  }
  return { url, poolSize, statementTimeoutMs };
}

export function loadConfig(env: Env = process.env): ServerConfig {
  const port = parseRanged(env, 'PORT', 3000, 0, 65535);
  const logLevel = read(env, 'LOG_LEVEL') ?? 'warn';
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError(`LOG_LEVEL=${JSON.stringify(logLevel)} must be one of ${LOG_LEVELS.join(', ')}`);
  }
  const databasePath = read(env, 'DATABASE_PATH') ?? './data/sessions.db';
  const sqliteSynchronous = read(env, 'SQLITE_SYNCHRONOUS') ?? DEFAULTS.sqliteSynchronous;
  if (sqliteSynchronous !== 'normal' && sqliteSynchronous !== 'full') {
    throw new ConfigError(`SQLITE_SYNCHRONOUS=${JSON.stringify(sqliteSynchronous)} must be normal or full`);
  }
  const webhookPrivateAddresses = read(env, 'WEBHOOK_PRIVATE_ADDRESSES') ?? DEFAULTS.webhookPrivateAddresses;
  if (webhookPrivateAddresses !== 'allow' && webhookPrivateAddresses !== 'deny') {
    throw new ConfigError(`WEBHOOK_PRIVATE_ADDRESSES=${JSON.stringify(webhookPrivateAddresses)} must be allow or deny`);
  }
  return {
    host: read(env, 'HOST') ?? '127.0.0.1',
    port,
    databasePath: databasePath === ':memory:' ? databasePath : resolve(databasePath),
    sqliteSynchronous,
    logLevel,
    sessionDefaults: parseSessionDefaults(env),
    retentionMs: parseRanged(env, 'SESSION_RETENTION_MINUTES', 1440, 0, 525_600) * 60_000,
    sweepIntervalMs: parseRanged(env, 'SESSION_SWEEP_INTERVAL_SECONDS', 60, 1, 86_400) * 1000,
    sweepBatchSize: parseRanged(env, 'SESSION_SWEEP_BATCH_SIZE', 100, 1, 100_000),
    lockWaitMs: parseRanged(env, 'SQLITE_LOCK_WAIT_MS', DEFAULTS.lockWaitMs, 0, 600_000),
    http: {
      requestTimeoutMs: parseRanged(env, 'HTTP_REQUEST_TIMEOUT_SECONDS', DEFAULTS.http.requestTimeoutMs / 1000, 1, 3600) * 1000,
      headersTimeoutMs: parseRanged(env, 'HTTP_HEADERS_TIMEOUT_SECONDS', DEFAULTS.http.headersTimeoutMs / 1000, 1, 3600) * 1000,
      keepAliveTimeoutMs: parseRanged(env, 'HTTP_KEEP_ALIVE_TIMEOUT_SECONDS', DEFAULTS.http.keepAliveTimeoutMs / 1000, 1, 3600) * 1000,
    },
    shutdownGraceMs: parseRanged(env, 'SHUTDOWN_GRACE_SECONDS', 10, 1, 3600) * 1000,
    eventRetentionMs: parseRanged(env, 'EVENT_RETENTION_HOURS', 72, 1, 87_600) * 3_600_000,
    agentReplyTimeoutMs: parseRanged(env, 'AGENT_REPLY_TIMEOUT_SECONDS', DEFAULTS.agentReplyTimeoutMs / 1000, 1, 3600) * 1000,
    eventStreamsMax: parseRanged(env, 'EVENT_STREAMS_MAX', DEFAULTS.eventStreamsMax, 1, 1_000_000),
    eventStreamsPerKeyMax: parseRanged(env, 'EVENT_STREAMS_PER_KEY_MAX', DEFAULTS.eventStreamsPerKeyMax, 1, 1_000_000),
    webhooksPerKeyMax: parseRanged(env, 'WEBHOOKS_PER_KEY_MAX', DEFAULTS.webhooksPerKeyMax, 1, 1_000_000),
    apiKeys: parseApiKeys(env),
    rateLimitPerMinute: read(env, 'RATE_LIMIT_PER_MINUTE') === undefined ? undefined : parseRanged(env, 'RATE_LIMIT_PER_MINUTE', 0, 1, 1_000_000),
    corsOrigins: parseCorsOrigins(env),
    trustProxy: parseTrustProxy(env),
    webhookPrivateAddresses,
    observability: parseObservability(env),
    postgres: parsePostgres(env),
  };
}
