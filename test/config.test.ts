import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import Fastify from 'fastify';
import { ConfigError, loadConfig, redactedUrl } from '../src/config.js';
import { serverOptions } from '../src/http/server-options.js';

describe('loadConfig', () => {
  it('has working defaults for a fresh machine', () => {
    expect(loadConfig({})).toEqual({
      host: '127.0.0.1',
      port: 3000,
      databasePath: resolve('./data/sessions.db'),
      sqliteSynchronous: 'normal',
      logLevel: 'warn',
      sessionDefaults: {},
      retentionMs: 1440 * 60_000,
      sweepIntervalMs: 60_000,
      sweepBatchSize: 100,
      lockWaitMs: 5000,
      http: { requestTimeoutMs: 30_000, headersTimeoutMs: 10_000, keepAliveTimeoutMs: 5000 },
      shutdownGraceMs: 10_000,
      eventRetentionMs: 72 * 3_600_000,
      agentReplyTimeoutMs: 30_000,
      eventStreamsMax: 10_000,
      eventStreamsPerKeyMax: 1000,
      webhooksPerKeyMax: 100,
      apiKeys: [],
      rateLimitPerMinute: undefined,
      corsOrigins: [],
      trustProxy: [],
      webhookPrivateAddresses: 'allow',
      observability: { logPretty: false, metricsEnabled: true },
    });
  });

  it('reads every variable', () => {
    const config = loadConfig({
      HOST: '0.0.0.0',
      PORT: '8080',
      DATABASE_PATH: ':memory:',
      SQLITE_SYNCHRONOUS: 'full',
      LOG_LEVEL: 'info',
      SESSION_DEFAULT_TIMEOUT_MINUTES: '45',
      SESSION_AUTO_RENEW: 'false',
      SESSION_MAX_DURATION_MINUTES: '600',
      SESSION_WARNING_THRESHOLD_MINUTES: '10',
      SESSION_RETENTION_MINUTES: '0',
      SESSION_SWEEP_INTERVAL_SECONDS: '5',
      SESSION_SWEEP_BATCH_SIZE: '1000',
      SQLITE_LOCK_WAIT_MS: '250',
      HTTP_REQUEST_TIMEOUT_SECONDS: '60',
      HTTP_HEADERS_TIMEOUT_SECONDS: '20',
      HTTP_KEEP_ALIVE_TIMEOUT_SECONDS: '2',
      SHUTDOWN_GRACE_SECONDS: '3',
      EVENT_RETENTION_HOURS: '2',
      AGENT_REPLY_TIMEOUT_SECONDS: '5',
      EVENT_STREAMS_MAX: '50',
      EVENT_STREAMS_PER_KEY_MAX: '5',
      WEBHOOKS_PER_KEY_MAX: '7',
      API_KEYS: 'admin-key-0123456789, second-key-0123456789',
      RATE_LIMIT_PER_MINUTE: '600',
      CORS_ORIGINS: 'https://app.example.com,http://localhost:5173',
      WEBHOOK_PRIVATE_ADDRESSES: 'deny',
      TRUST_PROXY: '10.0.0.0/8',
      LOG_PRETTY: '1',
      METRICS_ENABLED: 'false',
      METRICS_TOKEN: 's3cret',
    });
    expect(config).toEqual({
      host: '0.0.0.0',
      port: 8080,
      databasePath: ':memory:',
      sqliteSynchronous: 'full',
      logLevel: 'info',
      sessionDefaults: { timeoutMinutes: 45, autoRenew: false, maxDurationMinutes: 600, warningThresholdMinutes: 10 },
      retentionMs: 0,
      sweepIntervalMs: 5000,
      sweepBatchSize: 1000,
      lockWaitMs: 250,
      http: { requestTimeoutMs: 60_000, headersTimeoutMs: 20_000, keepAliveTimeoutMs: 2000 },
      shutdownGraceMs: 3000,
      eventRetentionMs: 2 * 3_600_000,
      agentReplyTimeoutMs: 5000,
      eventStreamsMax: 50,
      eventStreamsPerKeyMax: 5,
      webhooksPerKeyMax: 7,
      apiKeys: ['admin-key-0123456789', 'second-key-0123456789'],
      rateLimitPerMinute: 600,
      corsOrigins: ['https://app.example.com', 'http://localhost:5173'],
      trustProxy: ['10.0.0.0/8'],
      webhookPrivateAddresses: 'deny',
      observability: { logPretty: true, metricsEnabled: false, metricsToken: 's3cret' },
    });
  });

  it('treats an empty variable as unset', () => {
    expect(loadConfig({ PORT: '', SESSION_AUTO_RENEW: ' ' }).port).toBe(3000);
  });

  it.each([
    [{ SESSION_DEFAULT_TIMEOUT_MINUTES: 'abc' }, /SESSION_DEFAULT_TIMEOUT_MINUTES="abc" must be an integer/],
    [{ SESSION_DEFAULT_TIMEOUT_MINUTES: '4' }, /SESSION_DEFAULT_TIMEOUT_MINUTES=4 must be >= 5/],
    [{ SESSION_DEFAULT_TIMEOUT_MINUTES: '1441' }, /SESSION_DEFAULT_TIMEOUT_MINUTES=1441 must be <= 1440/],
    [{ SESSION_DEFAULT_TIMEOUT_MINUTES: '30.5' }, /must be an integer/],
    [{ SESSION_MAX_DURATION_MINUTES: '20161' }, /SESSION_MAX_DURATION_MINUTES=20161 must be <= 20160/],
    [{ SESSION_WARNING_THRESHOLD_MINUTES: '0' }, /SESSION_WARNING_THRESHOLD_MINUTES=0 must be >= 1/],
    [{ SESSION_AUTO_RENEW: 'yes' }, /SESSION_AUTO_RENEW="yes" must be true or false/],
    [{ PORT: '70000' }, /PORT=70000 must be between 0 and 65535/],
    // As written: the number it parses to (1e+20) is not what the operator wrote.
    [{ PORT: '99999999999999999999' }, /PORT=99999999999999999999 must be between 0 and 65535/],
    [{ API_KEYS: 'long-enough-key-0001,short' }, /API_KEYS: key 2 must be at least 16 characters/],
    // A header never carries these as written: the key could never authenticate.
    [{ API_KEYS: 'ключ-ключ-ключ-ключ' }, /^API_KEYS: key 1 must be visible ASCII without spaces \(it is sent in a header\); not shown here$/],
    [{ API_KEYS: 'long-enough-key-0001,clé-secrète-0123456789' }, /API_KEYS: key 2 must be visible ASCII/],
    [{ API_KEYS: 'long enough key 0001' }, /API_KEYS: key 1 must be visible ASCII/],
    // Meant to turn keys on, these would have left every operation open.
    [{ API_KEYS: ',' }, /API_KEYS: item 1 of 2 is empty/],
    [{ API_KEYS: ' , ,' }, /API_KEYS: item 1 of 3 is empty/],
    [{ API_KEYS: 'long-enough-key-0001,,long-enough-key-0002' }, /API_KEYS: item 2 of 3 is empty/],
    [{ CORS_ORIGINS: 'https://app.example.com,' }, /CORS_ORIGINS: item 2 of 2 is empty/],
    [{ RATE_LIMIT_PER_MINUTE: '0' }, /RATE_LIMIT_PER_MINUTE=0 must be between 1 and 1000000/],
    [{ METRICS_TOKEN: 'two words' }, /^METRICS_TOKEN must be visible ASCII without spaces/],
    [{ METRICS_TOKEN: 'tök' }, /^METRICS_TOKEN must be visible ASCII without spaces/],
    [{ RATE_LIMIT_PER_MINUTE: 'lots' }, /RATE_LIMIT_PER_MINUTE="lots" must be an integer/],
    [{ CORS_ORIGINS: 'app.example.com' }, /CORS_ORIGINS: "app.example.com" must be an origin/],
    [{ SESSION_RETENTION_MINUTES: '-1' }, /SESSION_RETENTION_MINUTES=-1 must be between 0 and 525600/],
    [{ SESSION_SWEEP_INTERVAL_SECONDS: '0' }, /SESSION_SWEEP_INTERVAL_SECONDS=0 must be between 1 and 86400/],
    [{ SESSION_SWEEP_BATCH_SIZE: 'many' }, /SESSION_SWEEP_BATCH_SIZE="many" must be an integer/],
    [{ EVENT_RETENTION_HOURS: '0' }, /EVENT_RETENTION_HOURS=0 must be between 1 and 87600/],
    [{ AGENT_REPLY_TIMEOUT_SECONDS: '0' }, /AGENT_REPLY_TIMEOUT_SECONDS=0 must be between 1 and 3600/],
    [{ AGENT_REPLY_TIMEOUT_SECONDS: '1.5' }, /AGENT_REPLY_TIMEOUT_SECONDS="1.5" must be an integer/],
    [{ PORT: 'http' }, /PORT="http" must be an integer/],
    [{ SQLITE_SYNCHRONOUS: 'off' }, /SQLITE_SYNCHRONOUS="off" must be normal or full/],
    [{ WEBHOOK_PRIVATE_ADDRESSES: 'block' }, /WEBHOOK_PRIVATE_ADDRESSES="block" must be allow or deny/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL="loud" must be one of/],
    [{ SHUTDOWN_GRACE_SECONDS: '0' }, /SHUTDOWN_GRACE_SECONDS=0 must be between 1 and 3600/],
    [{ HTTP_REQUEST_TIMEOUT_SECONDS: '0' }, /HTTP_REQUEST_TIMEOUT_SECONDS=0 must be between 1 and 3600/],
    [{ LOG_PRETTY: 'yes' }, /LOG_PRETTY="yes" must be 1, 0, true or false/],
    [{ METRICS_ENABLED: 'on' }, /METRICS_ENABLED="on" must be true or false/],
  ])('refuses %o instead of clamping it', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });
});

describe('loadConfig: the documented ranges', () => {
  // Where loadConfig puts each ranged variable, and in which unit; the range and the default
  // are read from the README's Configuration table, so that the table cannot drift.
  const fields: Record<string, [(config: ReturnType<typeof loadConfig>) => unknown, number]> = {
    PORT: [(c) => c.port, 1],
    SESSION_RETENTION_MINUTES: [(c) => c.retentionMs, 60_000],
    SESSION_SWEEP_INTERVAL_SECONDS: [(c) => c.sweepIntervalMs, 1000],
    SESSION_SWEEP_BATCH_SIZE: [(c) => c.sweepBatchSize, 1],
    EVENT_RETENTION_HOURS: [(c) => c.eventRetentionMs, 3_600_000],
    AGENT_REPLY_TIMEOUT_SECONDS: [(c) => c.agentReplyTimeoutMs, 1000],
    EVENT_STREAMS_MAX: [(c) => c.eventStreamsMax, 1],
    EVENT_STREAMS_PER_KEY_MAX: [(c) => c.eventStreamsPerKeyMax, 1],
    WEBHOOKS_PER_KEY_MAX: [(c) => c.webhooksPerKeyMax, 1],
    RATE_LIMIT_PER_MINUTE: [(c) => c.rateLimitPerMinute, 1],
    SQLITE_LOCK_WAIT_MS: [(c) => c.lockWaitMs, 1],
    HTTP_REQUEST_TIMEOUT_SECONDS: [(c) => c.http.requestTimeoutMs, 1000],
    HTTP_HEADERS_TIMEOUT_SECONDS: [(c) => c.http.headersTimeoutMs, 1000],
    HTTP_KEEP_ALIVE_TIMEOUT_SECONDS: [(c) => c.http.keepAliveTimeoutMs, 1000],
    SHUTDOWN_GRACE_SECONDS: [(c) => c.shutdownGraceMs, 1000],
    DATABASE_POOL_SIZE: [(c) => c.postgres?.poolSize, 1],
    DATABASE_STATEMENT_TIMEOUT_MS: [(c) => c.postgres?.statementTimeoutMs, 1],
  };
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const table = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('\n## ', readme.indexOf('## Configuration') + 1));
  // | `NAME` | `default` or (none) | meaning … (min–max) … |, the session defaults aside (the spec's ranges, tested with the policy).
  const rows = [...table.matchAll(/^\| `([A-Z_]+)` \| ([^|]+) \| (.*) \|$/gm)].filter(([, name]) => !name!.startsWith('SESSION_DEFAULT') && !/^SESSION_(AUTO_RENEW|MAX_DURATION|WARNING)/.test(name!));
  const ranged = rows.flatMap(([, name, defaultText, meaning]) => {
    const range = /\((\d+)–(\d+)[);]/.exec(meaning!);
    return range ? [[name!, Number(range[1]), Number(range[2]), defaultText!.trim()] as const] : [];
  });

  it('has every ranged variable of the table, and only those, where loadConfig puts it', () => {
    expect(ranged.map(([name]) => name).sort()).toEqual(Object.keys(fields).sort());
  });

  it.each(ranged)('takes %s at both ends of %i-%i and refuses one past either; its default is the table\'s (%s)', (name, min, max, defaultText) => {
    const [field, unit] = fields[name]!;
    const base = { DATABASE_URL: 'postgres://db/sessions' };
    expect(field(loadConfig({ ...base, [name]: String(min) }))).toBe(min * unit);
    expect(field(loadConfig({ ...base, [name]: String(max) }))).toBe(max * unit);
    const message = `${name}=%d must be between ${min} and ${max}`;
    expect(() => loadConfig({ ...base, [name]: String(min - 1) })).toThrow(message.replace('%d', String(min - 1)));
    expect(() => loadConfig({ ...base, [name]: String(max + 1) })).toThrow(message.replace('%d', String(max + 1)));
    const documented = /^`(\d+)`$/.exec(defaultText)?.[1];
    expect(field(loadConfig(base))).toBe(documented === undefined ? undefined : Number(documented) * unit);
  });

  it('takes API keys of exactly 16 characters, names the first key when it is short, and takes CORS_ORIGINS=*', () => {
    expect(loadConfig({ API_KEYS: '0123456789abcdef' }).apiKeys).toEqual(['0123456789abcdef']);
    expect(() => loadConfig({ API_KEYS: '0123456789abcde,long-enough-key-0001' })).toThrow('API_KEYS: key 1 must be at least 16 characters');
    expect(loadConfig({ CORS_ORIGINS: '*' }).corsOrigins).toEqual(['*']);
  });

  it('takes TRUST_PROXY as addresses, CIDR ranges and proxy-addr\'s range names; refuses anything else, naming it', () => {
    expect(loadConfig({}).trustProxy).toEqual([]);
    expect(loadConfig({ TRUST_PROXY: '10.0.0.7, 10.0.0.0/8,fd00::/8,::1,loopback,uniquelocal' }).trustProxy).toEqual(['10.0.0.7', '10.0.0.0/8', 'fd00::/8', '::1', 'loopback', 'uniquelocal']);
    expect(loadConfig({ TRUST_PROXY: '10.0.0.7/32,::1/128,0.0.0.0/0' }).trustProxy).toEqual(['10.0.0.7/32', '::1/128', '0.0.0.0/0']);
    for (const [value, entry] of [['proxy.internal', 'proxy.internal'], ['10.0.0.0/33', '10.0.0.0/33'], ['::1/129', '::1/129'], ['10.0.0.1/8/8', '10.0.0.1/8/8'], ['10.0.0.0/x', '10.0.0.0/x'], ['10.0.0.0/', '10.0.0.0/'], ['true', 'true']]) {
      expect(() => loadConfig({ TRUST_PROXY: value }), value).toThrow(`TRUST_PROXY: "${entry}" must be an IP address, a CIDR range like 10.0.0.0/8, or one of loopback, linklocal, uniquelocal`);
    }
    expect(() => loadConfig({ TRUST_PROXY: '10.0.0.1,' })).toThrow('TRUST_PROXY: item 2 of 2 is empty');
  });

  it('refuses a DATABASE_URL without a host (a socket folder in `?host=` is one)', () => {
    expect(() => loadConfig({ DATABASE_URL: 'postgres:///sessions' })).toThrow(ConfigError);
    expect(() => loadConfig({ DATABASE_URL: 'postgres:///sessions?host=' })).toThrow(
      'DATABASE_URL must be a postgres://user:password@host:port/database URL, or postgres:///database?host=/socket/folder (got postgres:///sessions?host=)',
    );
    expect(loadConfig({ DATABASE_URL: 'postgres:///sessions?host=/var/run/postgresql' }).postgres?.url).toBe('postgres:///sessions?host=/var/run/postgresql');
  });
});

describe('loadConfig: PostgreSQL', () => {
  it('selects PostgreSQL with DATABASE_URL, with its pool size and statement timeout', () => {
    expect(loadConfig({}).postgres).toBeUndefined();
    expect(loadConfig({ DATABASE_URL: 'postgres://app:pw@db.internal:5432/sessions' }).postgres).toEqual({
      url: 'postgres://app:pw@db.internal:5432/sessions',
      poolSize: 10,
      statementTimeoutMs: 5000,
    });
    const config = loadConfig({ DATABASE_URL: 'postgresql://db/sessions', DATABASE_POOL_SIZE: '3', DATABASE_STATEMENT_TIMEOUT_MS: '250' });
    expect(config.postgres).toEqual({ url: 'postgresql://db/sessions', poolSize: 3, statementTimeoutMs: 250 });
  });

  it('names the database in messages and logs without its password, in the userinfo or the query', () => {
    expect(redactedUrl('postgres://app:secret@db:5432/sessions?password=secret&application_name=x')).toBe('postgres://app:***@db:5432/sessions?password=***&application_name=x');
  });

  it.each([
    [{ DATABASE_URL: 'mysql://app:secret@db/sessions' }, 'DATABASE_URL must be a postgres://user:password@host:port/database URL, or postgres:///database?host=/socket/folder (got mysql://app:***@db/sessions)'],
    [{ DATABASE_URL: 'not a url' }, 'DATABASE_URL must be a postgres://'],
    // pg reads a password from the query too: hidden there as well.
    [{ DATABASE_URL: 'mysql://app@db/sessions?password=secret&sslpassword=secret&sslmode=require' }, '(got mysql://app@db/sessions?password=***&sslpassword=***&sslmode=require)'],
    [{ DATABASE_URL: 'postgres://db/s', DATABASE_POOL_SIZE: '0' }, 'DATABASE_POOL_SIZE=0 must be between 1 and 1000'],
    [{ DATABASE_URL: 'postgres://db/s', DATABASE_STATEMENT_TIMEOUT_MS: '1.5' }, 'DATABASE_STATEMENT_TIMEOUT_MS="1.5" must be an integer'],
    // Without DATABASE_URL (SQLite) too: refused before the day the variable is used.
    [{ DATABASE_POOL_SIZE: '0' }, 'DATABASE_POOL_SIZE=0 must be between 1 and 1000'],
    [{ DATABASE_STATEMENT_TIMEOUT_MS: 'soon' }, 'DATABASE_STATEMENT_TIMEOUT_MS="soon" must be an integer'],
  ])('refuses %o, never showing the password', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
    expect(() => loadConfig(env)).not.toThrow(/secret/);
  });
});

describe('loadConfig: documented spellings and lowerings', () => {
  it('takes LOG_PRETTY=true as 1 and false as 0 (README, Configuration)', () => {
    expect(loadConfig({ LOG_PRETTY: 'true' }).observability.logPretty).toBe(true);
    expect(loadConfig({ LOG_PRETTY: 'false' }).observability.logPretty).toBe(false);
  });

  it('starts with HTTP_HEADERS_TIMEOUT_SECONDS above HTTP_REQUEST_TIMEOUT_SECONDS: the headers timeout is lowered to the request timeout', async () => {
    const config = loadConfig({ HTTP_REQUEST_TIMEOUT_SECONDS: '5', HTTP_HEADERS_TIMEOUT_SECONDS: '60' });
    // Node refuses a headers timeout longer than the request timeout (ERR_OUT_OF_RANGE) when the server is made.
    const app = Fastify(serverOptions(config.http));
    try {
      expect(app.server.headersTimeout).toBe(5000);
      expect(app.server.requestTimeout).toBe(5000);
    } finally {
      await app.close();
    }
  });
});
