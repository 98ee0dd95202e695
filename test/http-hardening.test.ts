// Rate limits (per key, per address without keys), CORS (off unless configured) and the
// security headers of every answer.
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { generateApiKey, hashApiKey } from '../src/api-keys.js';
import { KEYS_MAX, MonotonicStore } from '../src/http/rate-limit.js';
import { createMetrics } from '../src/ops/metrics.js';
import { cleanUpServerProcesses, fetchChecked, startServer, tempDatabase } from './helpers/server-process.js';
import { logLines } from './helpers/log-lines.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';
import { specSchemaValidator } from '../src/spec.js';

const apps: TestApp[] = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
  cleanUpServerProcesses();
});
async function start(options: Parameters<typeof startTestApp>[0] = {}): Promise<TestApp> {
  const app = await startTestApp(options);
  apps.push(app);
  return app;
}

describe('RATE_LIMIT_PER_MINUTE', () => {
  it('answers 429 RATE_LIMITED in the envelope, with Retry-After and RateLimit-*, once a client is over the limit', async () => {
    const t = await start({ access: { rateLimitPerMinute: 3 } });
    for (let i = 0; i < 3; i += 1) {
      const ok = await t.request({ method: 'GET', url: '/api/agents' });
      expect(ok.status).toBe(200);
      expect(ok.headers).toMatchObject({ 'ratelimit-limit': '3', 'ratelimit-remaining': String(2 - i) });
    }
    const limited = await t.request({ method: 'POST', url: '/api/agents', body: { characterJson: { name: 'Late' } } });
    expect(limited.status).toBe(429);
    expect(limited.body.error).toMatchObject({ code: 'RATE_LIMITED', message: 'Too many requests' });
    expect(limited.body.error.details).toMatch(/^at most 3 requests per minute; retry in \d+ s$/);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect(limited.headers).toMatchObject({ 'ratelimit-limit': '3', 'ratelimit-remaining': '0' });
    expect(Number(limited.headers['ratelimit-reset'])).toBeGreaterThan(0);
    expect(t.rowCounts().agents).toBe(0);
    // The health check is not limited.
    expect((await t.request({ method: 'GET', url: '/api/messaging/sessions/health' })).status).toBe(200);
  });

  it('counts each API key on its own', async () => {
    const keys = ['rate-key-one-0123456789', 'rate-key-two-0123456789'];
    const t = await start({ access: { rateLimitPerMinute: 2, apiKeys: keys } });
    const list = (key: string) => t.request({ method: 'GET', url: '/api/agents', headers: { 'x-api-key': key } });
    expect([(await list(keys[0]!)).status, (await list(keys[0]!)).status, (await list(keys[0]!)).status]).toEqual([200, 200, 429]);
    expect([(await list(keys[1]!)).status, (await list(keys[1]!)).status, (await list(keys[1]!)).status]).toEqual([200, 200, 429]);
  });

  it('counts each client address on its own when keys are off', async () => {
    const t = await start({ access: { rateLimitPerMinute: 2 } });
    const list = (remoteAddress: string) => t.request({ method: 'GET', url: '/api/agents', remoteAddress });
    expect([(await list('10.0.0.1')).status, (await list('10.0.0.1')).status, (await list('10.0.0.1')).status]).toEqual([200, 200, 429]);
    expect([(await list('10.0.0.2')).status, (await list('10.0.0.2')).status, (await list('10.0.0.2')).status]).toEqual([200, 200, 429]);
  });

  it('behind a proxy named in TRUST_PROXY, counts each client by X-Forwarded-For; from any other address that header is ignored', async () => {
    const t = await start({ access: { rateLimitPerMinute: 1 }, app: { trustProxy: ['10.0.0.0/24'] } });
    const list = (remoteAddress: string, client: string) => t.request({ method: 'GET', url: '/api/agents', remoteAddress, headers: { 'x-forwarded-for': client } });
    expect([(await list('10.0.0.9', '203.0.113.1')).status, (await list('10.0.0.9', '203.0.113.2')).status, (await list('10.0.0.8', '203.0.113.1')).status]).toEqual([200, 200, 429]);
    // Not through the proxy: a client cannot choose its own budget by the header.
    expect([(await list('10.0.1.5', '203.0.113.3')).status, (await list('10.0.1.5', '203.0.113.4')).status]).toEqual([200, 429]);
    // Through it, an entry that is no address counts as the proxy; an ip:port as its ip.
    expect([(await list('10.0.0.7', 'unknown')).status, (await list('10.0.0.7', 'not-an-ip')).status]).toEqual([200, 429]);
    expect([(await list('10.0.0.9', '198.51.100.7:1111')).status, (await list('10.0.0.9', '198.51.100.7:2222')).status]).toEqual([200, 429]);
    expect([(await list('10.0.0.9', '[2001:db8::1]:1111')).status, (await list('10.0.0.9', '2001:db8::1')).status]).toEqual([200, 429]);
  });

  it('logs the client as it is counted: behind a trusted proxy the forwarded address (an ip:port as its ip), the proxy as proxyAddress', async () => {
    const { lines, stream } = logLines();
    const t = await start({ app: { trustProxy: ['10.0.0.0/24'], logger: { level: 'info', stream } } });
    const list = (remoteAddress: string, client: string) => t.request({ method: 'GET', url: '/api/agents', remoteAddress, headers: { 'x-forwarded-for': client } });
    await list('10.0.0.9', '198.51.100.7:1111');
    await list('10.0.0.9', 'unknown'); // counted as the proxy, but it came through it
    await list('10.0.0.9', '10.0.0.9'); // a client on the proxy's own host
    await list('10.0.0.9', '::ffff:203.0.113.9'); // the same client as 203.0.113.9
    await list('10.0.1.5', '203.0.113.3'); // not through a trusted proxy: direct
    const logged = lines.filter((line) => line.req).map((line) => line.req);
    expect(logged.map(({ remoteAddress, proxyAddress }) => [remoteAddress, proxyAddress])).toEqual([
      ['198.51.100.7', '10.0.0.9'],
      ['10.0.0.9', '10.0.0.9'],
      ['10.0.0.9', '10.0.0.9'],
      ['203.0.113.9', '10.0.0.9'],
      ['10.0.1.5', undefined],
    ]);
    expect(logged.slice(0, 4).every((req) => !('remotePort' in req))).toBe(true);
    expect(logged[4]).not.toHaveProperty('proxyAddress');
    expect(logged[0]).toMatchObject({ method: 'GET', url: '/api/agents', host: 'localhost:80' });
    // A direct client on a real socket: its own port.
    lines.length = 0;
    expect((await fetchChecked(await t.listen(), 'GET', '/api/agents')).status).toBe(200);
    const direct = lines.find((line) => line.req)!.req;
    expect(direct).toMatchObject({ remoteAddress: '127.0.0.1', remotePort: expect.any(Number) });
    expect(direct).not.toHaveProperty('proxyAddress');
  });

  it('counts per minute, and the 429 names the same wait as its Retry-After', async () => {
    const t = await start({ access: { rateLimitPerMinute: 1 } });
    const first = await t.request({ method: 'GET', url: '/api/agents' });
    expect(first.headers['ratelimit-reset']).toBe('60');
    const limited = await t.request({ method: 'GET', url: '/api/agents' });
    expect(limited.status).toBe(429);
    const retryAfter = Number(limited.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(50);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(limited.body.error.details).toBe(`at most 1 requests per minute; retry in ${retryAfter} s`);
  });

  it("keeps a client's window for its minute however many others are counted after it, up to KEYS_MAX (S17: 5,000 others gave it a new budget); forgets windows run out past 5,000", () => {
    vi.useFakeTimers({ toFake: ['performance'] });
    try {
      const windows = new MonotonicStore();
      const count = (key: string) => {
        let current = 0;
        windows.incr(key, (_error, result) => (current = result.current), 60_000);
        return current;
      };
      expect([count('over'), count('over')]).toEqual([1, 2]);
      for (let i = 0; i < 5_001; i += 1) count(`other-${i}`);
      expect(count('over')).toBe(3);
      // Past KEYS_MAX live windows, the least recently counted goes (other-0), though its minute runs.
      expect(count('other-0')).toBe(2);
      for (let i = 5_001; i <= KEYS_MAX; i += 1) count(`other-${i}`);
      expect(count('other-1')).toBe(1);
      expect(count('over')).toBe(4);
      expect(windows.size).toBe(KEYS_MAX);
      // A minute on, every window has run out: past 5,000 they are forgotten, oldest first; one counted again starts from 1.
      vi.advanceTimersByTime(60_000);
      count('after');
      expect(windows.size).toBe(5_000);
      expect(count('over')).toBe(1);
    } finally {
      vi.useRealTimers();
    }
  });

  it('says the time left in the window: 20 s into it, Retry-After and RateLimit-Reset are 40', async () => {
    const t = await start({ access: { rateLimitPerMinute: 1 } });
    vi.useFakeTimers({ toFake: ['performance'] });
    try {
      expect((await t.request({ method: 'GET', url: '/api/agents' })).headers['ratelimit-reset']).toBe('60');
      vi.advanceTimersByTime(20_000);
      const limited = await t.request({ method: 'GET', url: '/api/agents' });
      expect(limited.status).toBe(429);
      expect(limited.headers).toMatchObject({ 'retry-after': '40', 'ratelimit-reset': '40' });
    } finally {
      vi.useRealTimers();
    }
  });

  it('times its windows on the monotonic clock: a wall clock stepped back an hour does not hold a client for that hour', async () => {
    const t = await start({ access: { rateLimitPerMinute: 1 } });
    vi.useFakeTimers({ toFake: ['Date', 'performance'], now: Date.now() + 60 * 60_000 });
    try {
      expect((await t.request({ method: 'GET', url: '/api/agents' })).status).toBe(200);
      vi.setSystemTime(Date.now() - 60 * 60_000); // the wall clock only: the monotonic one stands
      const limited = await t.request({ method: 'GET', url: '/api/agents' });
      expect(limited.status).toBe(429);
      expect(Number(limited.headers['retry-after'])).toBeLessThanOrEqual(60);
      vi.advanceTimersByTime(60_000); // a minute passes: the window is over
      expect((await t.request({ method: 'GET', url: '/api/agents' })).status).toBe(200);
    } finally {
      vi.useRealTimers();
    }
  });

  it("counts a key's 403s against it: a key bound to agents cannot send admin-only requests without limit", async () => {
    const t = await start({ access: { rateLimitPerMinute: 2, apiKeys: ['rate-admin-0123456789'] } });
    const key = generateApiKey();
    await t.store.insertApiKey({ id: 'bound', name: 'bound', keyHash: hashApiKey(key), admin: false, agentIds: [randomUUID()], createdAt: t.clock.now() });
    const create = () => t.request({ method: 'POST', url: '/api/agents', headers: { 'x-api-key': key }, body: { characterJson: { name: 'No' } } });
    const answers = [await create(), await create(), await create()];
    expect(answers.map((answer) => [answer.status, answer.body.error.code, answer.headers['ratelimit-remaining']])).toEqual([
      [403, 'FORBIDDEN', '1'],
      [403, 'FORBIDDEN', '0'],
      [429, 'RATE_LIMITED', '0'],
    ]);
    expect(t.rowCounts().agents).toBe(0);
  });

  it('does not count a scrape carrying METRICS_TOKEN (scrapers on a host share no budget), but counts guesses per address', async () => {
    const t = await start({ metrics: createMetrics(), access: { rateLimitPerMinute: 2 }, app: { metricsToken: 's3cret' } });
    for (let i = 0; i < 3; i += 1) {
      const scraped = await t.requestText('/metrics', { authorization: 'Bearer s3cret' });
      expect(scraped.status).toBe(200);
      expect(scraped.headers['ratelimit-limit']).toBeUndefined();
    }
    const guesses = [];
    for (let i = 0; i < 3; i += 1) guesses.push((await t.requestText('/metrics', { authorization: `Bearer guess-${i}` })).status);
    expect(guesses).toEqual([401, 401, 429]);
    // The right token still scrapes.
    expect((await t.requestText('/metrics', { authorization: 'Bearer s3cret' })).status).toBe(200);
  });

  it('is off by default', async () => {
    const t = await start();
    for (let i = 0; i < 5; i += 1) expect((await t.request({ method: 'GET', url: '/api/agents' })).headers['ratelimit-limit']).toBeUndefined();
  });
});

describe('security headers', () => {
  it('come with every answer: success, error and unknown route', async () => {
    const t = await start({ access: { apiKeys: ['header-key-0123456789'] } });
    const answers = [
      await t.request({ method: 'GET', url: '/api/messaging/sessions/health' }),
      await t.request({ method: 'GET', url: '/api/agents' }),
      await t.request({ method: 'GET', url: '/nowhere' }),
    ];
    expect(answers.map((a) => a.status)).toEqual([200, 401, 404]);
    for (const answer of answers) {
      expect(answer.headers).toMatchObject({
        'x-content-type-options': 'nosniff',
        'cache-control': 'no-store',
        'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
        'x-frame-options': 'DENY',
        'referrer-policy': 'no-referrer',
      });
    }
  });

  it('come with /docs and its script too, but for a policy that lets the page run: nothing may frame or cache them', async () => {
    const t = await start();
    const baseUrl = await t.listen();
    for (const path of ['/docs', '/docs/js/scalar.js']) {
      const response = await fetch(`${baseUrl}${path}`);
      expect(response.status, path).toBe(200);
      expect(Object.fromEntries(response.headers), path).toMatchObject({
        'x-content-type-options': 'nosniff',
        'cache-control': 'no-store',
        'content-security-policy': "frame-ancestors 'none'",
        'x-frame-options': 'DENY',
        'referrer-policy': 'no-referrer',
      });
    }
  });
});

// A preflight (OPTIONS) is not an operation of the spec: it has no body to check, only headers.
const isErrorEnvelope = specSchemaValidator('ErrorEnvelope');
const preflight = (baseUrl: string, origin: string) =>
  fetch(`${baseUrl}/api/messaging/sessions`, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-api-key, idempotency-key, content-type' },
  });

describe('CORS_ORIGINS', () => {
  it('lets the configured origins call from a browser with the API key and Idempotency-Key headers', async () => {
    const server = startServer({ DATABASE_PATH: tempDatabase(), LOG_LEVEL: 'silent', CORS_ORIGINS: 'https://app.example.com' });
    const baseUrl = await server.listening;
    const allowed = await preflight(baseUrl, 'https://app.example.com');
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    expect(allowed.headers.get('access-control-allow-headers')).toMatch(/x-api-key.*idempotency-key/);
    expect((await preflight(baseUrl, 'https://evil.example.com')).headers.get('access-control-allow-origin')).toBeNull();
    const get = await fetchChecked(baseUrl, 'GET', '/api/agents', undefined, { origin: 'https://app.example.com' });
    expect(get.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    expect(get.headers.get('access-control-expose-headers')).toMatch(/idempotent-replayed/);
  });

  it('is off by default: no CORS headers, and no preflight route', async () => {
    const server = startServer({ DATABASE_PATH: tempDatabase(), LOG_LEVEL: 'silent' });
    const baseUrl = await server.listening;
    expect((await preflight(baseUrl, 'https://app.example.com')).headers.get('access-control-allow-origin')).toBeNull();
    const get = await fetchChecked(baseUrl, 'GET', '/api/agents', undefined, { origin: 'https://app.example.com' });
    expect(get.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('TRUST_PROXY', () => {
  it('reaches the server: behind the proxy named, each client forwarded has a budget of its own', async () => {
    const server = startServer({ DATABASE_PATH: tempDatabase(), LOG_LEVEL: 'silent', RATE_LIMIT_PER_MINUTE: '1', TRUST_PROXY: 'loopback' });
    const baseUrl = await server.listening;
    const list = (client: string) => fetchChecked(baseUrl, 'GET', '/api/agents', undefined, { 'x-forwarded-for': client });
    expect([(await list('203.0.113.1')).status, (await list('203.0.113.2')).status, (await list('203.0.113.1')).status]).toEqual([200, 200, 429]);
  });
});

describe('CORS_ORIGINS, in process', () => {
  it('with *, lets any origin call', async () => {
    const t = await start({ access: { corsOrigins: ['*'] } });
    const baseUrl = await t.listen();
    for (const origin of ['https://app.example.com', 'http://localhost:5173']) {
      const allowed = await preflight(baseUrl, origin);
      expect(allowed.status).toBe(204);
      expect(allowed.headers.get('access-control-allow-origin')).toBe('*');
      const get = await fetchChecked(baseUrl, 'GET', '/api/agents', undefined, { origin });
      expect(get.status).toBe(200);
      expect(get.headers.get('access-control-allow-origin')).toBe('*');
    }
  });

  it('lets a browser app send and read X-Request-Id, and resume an event stream with Last-Event-ID', async () => {
    const t = await start({ access: { corsOrigins: ['https://app.example.com'] } });
    const baseUrl = await t.listen();
    const allowed = await fetch(`${baseUrl}/api/messaging/sessions/events`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example.com', 'access-control-request-method': 'GET', 'access-control-request-headers': 'x-request-id, last-event-id' },
    });
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get('access-control-allow-headers')?.split(/,\s*/)).toEqual(expect.arrayContaining(['x-request-id', 'last-event-id']));
    const get = await fetchChecked(baseUrl, 'GET', '/api/agents', undefined, { origin: 'https://app.example.com', 'x-request-id': 'app-42' });
    expect(get.headers.get('x-request-id')).toBe('app-42');
    expect(get.headers.get('access-control-expose-headers')?.split(/,\s*/)).toContain('x-request-id');
  });

  it("gives the router's refusals (a malformed URL, a path parameter too long) the CORS headers of an allowed origin, so a browser sees the envelope", async () => {
    const t = await start({ access: { corsOrigins: ['https://app.example.com'] } });
    const baseUrl = await t.listen();
    for (const [path, status] of [
      ['/api/agents/%E0%A4%A', 400],
      [`/api/agents/${'a'.repeat(600)}`, 404],
    ] as const) {
      const allowed = await fetch(`${baseUrl}${path}`, { headers: { origin: 'https://app.example.com' } });
      expect(allowed.status).toBe(status);
      expect(isErrorEnvelope(await allowed.json())).toBe(true);
      expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
      expect(allowed.headers.get('vary')).toMatch(/origin/i);
      expect(allowed.headers.get('access-control-expose-headers')).toMatch(/idempotent-replayed/);
      const other = await fetch(`${baseUrl}${path}`, { headers: { origin: 'https://evil.example.com' } });
      expect(other.status).toBe(status);
      expect(other.headers.get('access-control-allow-origin')).toBeNull();
      // The preflight a browser sends first (any request with a key has one) is answered as
      // any other, or the page would see no answer at all (it was refused 400 / 404).
      const preflightHeaders = { 'access-control-request-method': 'GET', 'access-control-request-headers': 'x-api-key' };
      const ask = await fetch(`${baseUrl}${path}`, { method: 'OPTIONS', headers: { origin: 'https://app.example.com', ...preflightHeaders } });
      const usual = await fetch(`${baseUrl}/api/agents/x`, { method: 'OPTIONS', headers: { origin: 'https://app.example.com', ...preflightHeaders } });
      expect([ask.status, await ask.text()]).toEqual([204, '']);
      const corsOf = (headers: Headers) => [...headers].filter(([name]) => name.startsWith('access-control-') || name === 'vary');
      expect(corsOf(ask.headers)).toEqual(corsOf(usual.headers));
      expect(ask.headers.get('access-control-allow-headers')).toMatch(/x-api-key/);
      const refusedOrigin = await fetch(`${baseUrl}${path}`, { method: 'OPTIONS', headers: { origin: 'https://evil.example.com', ...preflightHeaders } });
      expect(refusedOrigin.headers.get('access-control-allow-origin')).toBeNull();
    }
    const any = await start({ access: { corsOrigins: ['*'] } });
    const refused = await fetch(`${await any.listen()}/api/agents/%E0%A4%A`, { headers: { origin: 'http://localhost:5173' } });
    expect(refused.headers.get('access-control-allow-origin')).toBe('*');
  });

  it('on: an OPTIONS that is no preflight finds no route (404 in the envelope), as with CORS off', async () => {
    const t = await start({ access: { corsOrigins: ['https://app.example.com'] } });
    const baseUrl = await t.listen();
    for (const [path, headers] of [
      ['/api/messaging/sessions', {}],
      ['/api/messaging/sessions', { origin: 'https://app.example.com' }],
      ['/nowhere', { 'access-control-request-method': 'GET' }],
    ] as Array<[string, Record<string, string>]>) {
      const response = await fetch(`${baseUrl}${path}`, { method: 'OPTIONS', headers });
      expect(response.status, JSON.stringify(headers)).toBe(404);
      const body = await response.json();
      expect(isErrorEnvelope(body), JSON.stringify(body)).toBe(true);
      expect(body.error).toMatchObject({ code: 'NOT_FOUND', details: `OPTIONS ${path} does not exist (a CORS preflight sends Origin and Access-Control-Request-Method)` });
    }
    expect((await preflight(baseUrl, 'https://app.example.com')).status).toBe(204);
  });

  it('off: a preflight finds no route (404), and no CORS header is sent', async () => {
    const t = await start();
    const baseUrl = await t.listen();
    const refused = await preflight(baseUrl, 'https://app.example.com');
    expect(refused.status).toBe(404);
    expect(refused.headers.get('access-control-allow-origin')).toBeNull();
    expect(refused.headers.get('access-control-allow-methods')).toBeNull();
  });
});

describe('Retry-After', () => {
  it('comes only with an answer that a retry later can change (429, 503): not with a 404, a 400 or a 401', async () => {
    const t = await start({ access: { apiKeys: ['retry-after-admin-key-0123456789'] } });
    const key = { 'x-api-key': 'retry-after-admin-key-0123456789' };
    const answers = [
      await t.request({ method: 'GET', url: `/api/messaging/sessions/${randomUUID()}`, headers: key }),
      await t.request({ method: 'POST', url: '/api/agents', headers: key, body: { characterJson: 'not an object' } }),
      await t.request({ method: 'GET', url: '/api/agents' }),
    ];
    expect(answers.map((answer) => answer.status)).toEqual([404, 400, 401]);
    for (const answer of answers) expect(answer.headers['retry-after'], String(answer.status)).toBeUndefined();
  });
});
