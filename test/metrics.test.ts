// GET /metrics: Prometheus text that a text-format parser reads, whose counters move by
// exactly the requests made, and whose session gauges are the store's counts.
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { generateApiKey, hashApiKey } from '../src/api-keys.js';
import { createWebhookDispatcher } from '../src/events/webhook-delivery.js';
import { createMetrics } from '../src/ops/metrics.js';
import { fakeClock, MINUTE } from './helpers/fake-clock.js';
import { USER_ID, registerAgent } from './helpers/fixtures.js';
import { type PromFamily, parsePrometheusText } from './helpers/prometheus-text.js';
import { openStream } from './helpers/sse-client.js';
import { type TestApp, type TestAppOptions, startTestApp } from './helpers/test-app.js';
import { receiver } from './helpers/webhook-receiver.js';

let t: TestApp | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

async function start(options: TestAppOptions = {}): Promise<TestApp> {
  t = await startTestApp({ metrics: createMetrics(), ...options });
  return t;
}

type Families = Map<string, PromFamily>;

async function scrape(app: TestApp, headers: Record<string, string> = {}): Promise<Families> {
  const response = await app.requestText('/metrics', headers);
  expect(response.status).toBe(200);
  expect(response.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  return parsePrometheusText(response.text);
}

function family(families: Families, name: string): PromFamily {
  const found = families.get(name);
  expect(found, name).toBeDefined();
  return found!;
}

/** A family's samples (of one suffix) as { 'label values': value }. */
function valuesBy(families: Families, name: string, labels: string[], suffix = ''): Record<string, number> {
  const samples = family(families, name).samples.filter((s) => s.name === name + suffix);
  return Object.fromEntries(samples.map((s) => [labels.map((l) => s.labels[l]).join(' '), s.value]));
}

/** A histogram's observation counts by the given labels, e.g. { 'createAgent 201': 3 }. */
const countsBy = (families: Families, name: string, labels: string[]) => valuesBy(families, name, labels, '_count');

function difference(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(after).map(([key, n]) => [key, n - (before[key] ?? 0)]).filter(([, n]) => n !== 0));
}

const REQUESTS = 'sessions_api_http_request_duration_seconds';

describe('GET /metrics', () => {
  it('counts exactly the requests made, by operationId and status', async () => {
    const app = await start();
    const before = countsBy(await scrape(app), REQUESTS, ['operationId', 'status']);
    for (const name of ['A', 'B', 'C']) await app.request({ method: 'POST', url: '/api/agents', body: { characterJson: { name } } });
    await app.request({ method: 'POST', url: '/api/agents', body: { characterJson: {} } });
    for (let i = 0; i < 2; i += 1) await app.request({ method: 'GET', url: '/api/agents/3c90c3cc-0d44-4b50-8888-8dd25736052a' });
    await app.request({ method: 'GET', url: '/nowhere' });
    // URLs the router refuses before any hook: malformed percent-encoding, a path parameter over 500 characters.
    expect((await app.request({ method: 'GET', url: '/api/messaging/sessions/%E0%A4%A', answeredByRouter: true })).status).toBe(400);
    expect((await app.request({ method: 'GET', url: `/api/messaging/sessions/${'a'.repeat(501)}`, answeredByRouter: true })).status).toBe(404);
    await app.requestText('/openapi.yaml');
    const after = countsBy(await scrape(app), REQUESTS, ['operationId', 'status']);
    expect(difference(after, before)).toEqual({
      'createAgent 201': 3,
      'createAgent 400': 1,
      'getAgent 404': 2,
      'not_found 404': 2,
      'not_found 400': 1,
      'getOpenApiYaml 200': 1,
      'getMetrics 200': 1, // the first scrape, counted once it was answered
    });
  });

  it('times every database call, by store method', async () => {
    const app = await start();
    const agentId = await registerAgent(app);
    for (let i = 0; i < 2; i += 1) await app.request({ method: 'POST', url: '/api/messaging/sessions', body: { agentId, userId: USER_ID } });
    const calls = countsBy(await scrape(app), 'sessions_api_db_call_duration_seconds', ['call']);
    expect(calls.insertAgent).toBe(1);
    expect(calls.insertSession).toBe(2);
    expect(calls.getSession).toBeUndefined();
  });

  it('reports sessions active, expiring soon and expired from the store at scrape time', async () => {
    const app = await start();
    const agentId = await registerAgent(app);
    const create = (timeoutConfig: Record<string, number>) =>
      app.request({ method: 'POST', url: '/api/messaging/sessions', body: { agentId, userId: USER_ID, timeoutConfig } });
    await create({ timeoutMinutes: 10, warningThresholdMinutes: 5 });
    await create({ timeoutMinutes: 60, warningThresholdMinutes: 5 });
    await create({ timeoutMinutes: 5, warningThresholdMinutes: 1 });
    app.clock.advance(6 * MINUTE);
    expect(valuesBy(await scrape(app), 'sessions_api_sessions', ['state'])).toEqual({ active: 2, expiring_soon: 1, expired: 1 });
  });

  it('still scrapes, without the session gauge, when the database cannot be read', async () => {
    const app = await start();
    vi.spyOn(app.store, 'countSessions').mockRejectedValue(new Error('disk gone'));
    const families = await scrape(app);
    expect(family(families, 'sessions_api_sessions').samples).toEqual([]);
    expect(families.has(REQUESTS)).toBe(true);
  });

  it('counts sweeper runs and what they did', async () => {
    const app = await start();
    const agentId = await registerAgent(app);
    await app.request({ method: 'POST', url: '/api/messaging/sessions', body: { agentId, userId: USER_ID, timeoutConfig: { timeoutMinutes: 5 } } });
    app.clock.advance(6 * MINUTE);
    await app.sweeper.sweep();
    await app.sweeper.sweep();
    const families = await scrape(app);
    expect(valuesBy(families, 'sessions_api_sweeper_runs_total', ['result'])).toEqual({ ok: 2 });
    expect(countsBy(families, 'sessions_api_sweeper_duration_seconds', [])).toEqual({ '': 2 });
    // The first pass announced the expiry the pump had not (its warning was announced at creation).
    expect(valuesBy(families, 'sessions_api_sweeper_sessions_total', ['action'])).toEqual({ announced: 1, purged: 0 });
  });

  it('counts a sweeper run that failed as failed', async () => {
    const app = await start();
    await app.sweeper.sweep();
    const purge = vi.spyOn(app.store, 'purgeExpired').mockRejectedValue(new Error('disk gone'));
    await app.sweeper.sweep();
    purge.mockRestore();
    const families = await scrape(app);
    expect(valuesBy(families, 'sessions_api_sweeper_runs_total', ['result'])).toEqual({ ok: 1, failed: 1 });
  });

  it('counts webhook delivery attempts by outcome, and the event streams open', async () => {
    const metrics = createMetrics();
    const app = await start({ metrics, clock: fakeClock(Date.now()) });
    const [up, down] = [await receiver(() => 200), await receiver(() => 500)];
    try {
      for (const hook of [up, down]) expect((await app.request({ method: 'POST', url: '/api/webhooks', body: { url: hook.url } })).status).toBe(201);
      await registerAgent(app);
      await createWebhookDispatcher({ store: app.store, clock: app.clock, onAttempt: metrics.observeDelivery }).tick();
      expect([up.received.length, down.received.length]).toEqual([1, 1]);
      const families = await scrape(app);
      expect(valuesBy(families, 'sessions_api_webhook_deliveries_total', ['outcome'])).toEqual({ delivered: 1, failed: 1 });
      expect(countsBy(families, 'sessions_api_webhook_delivery_duration_seconds', [])).toEqual({ '': 2 });
    } finally {
      await up.close();
      await down.close();
    }

    expect(valuesBy(await scrape(app), 'sessions_api_event_streams', [])).toEqual({ '': 0 });
    const stream = await openStream(`${await app.listen()}/api/messaging/sessions/events`);
    expect(stream.status).toBe(200);
    expect(valuesBy(await scrape(app), 'sessions_api_event_streams', [])).toEqual({ '': 1 });
    stream.close();
  });

  it("gives a wait for the agent's reply (30 s by default) and a webhook attempt (10 s at most) a bucket below +Inf", async () => {
    const metrics = createMetrics();
    metrics.observeRequest('sendSessionMessage', 504, 30);
    metrics.observeDelivery('failed', 9.5);
    const families = parsePrometheusText(await metrics.registry.metrics());
    const buckets = (name: string) => valuesBy(families, name, ['le'], '_bucket');
    expect(buckets(REQUESTS)).toMatchObject({ '5': 0, '10': 0, '30': 1, '60': 1, '+Inf': 1 });
    expect(buckets('sessions_api_webhook_delivery_duration_seconds')).toMatchObject({ '5': 0, '10': 1, '+Inf': 1 });
  });

  it('includes event-loop delay and process metrics', async () => {
    const names = [...(await scrape(await start())).keys()];
    expect(names).toEqual(expect.arrayContaining(['nodejs_eventloop_lag_p99_seconds', 'process_cpu_user_seconds_total', 'process_resident_memory_bytes']));
  });

  it('wants the METRICS_TOKEN as a bearer token when the server has one', async () => {
    const app = await start({ app: { metricsToken: 's3cret' } });
    for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: 's3cret' }, { authorization: 'Bearer s3cret2' }] as Array<Record<string, string>>) {
      const response = await app.requestText('/metrics', headers);
      expect(response.status).toBe(401);
      expect(JSON.parse(response.text).error).toMatchObject({ code: 'UNAUTHORIZED', details: 'header authorization must be Bearer <METRICS_TOKEN>' });
      expect(response.headers['www-authenticate']).toBe('Bearer realm="sessions-api-metrics"');
    }
    await scrape(app, { authorization: 'Bearer s3cret' });
    await scrape(app, { authorization: 'bearer  s3cret' }); // the scheme in any case (RFC 9110)
  });

  it('wants an admin API key when the server has keys and no METRICS_TOKEN (a key bound to agents: 403)', async () => {
    const admin = 'metrics-admin-key-0123456789';
    const app = await start({ access: { apiKeys: [admin] } });
    for (const headers of [{}, { 'x-api-key': 'not-a-key-0123456789' }] as Array<Record<string, string>>) {
      const refused = await app.requestText('/metrics', headers);
      expect(refused.status).toBe(401);
      expect(JSON.parse(refused.text).error.code).toBe('UNAUTHORIZED');
      expect(refused.headers['www-authenticate']).toBeDefined();
    }
    const scoped = generateApiKey();
    await app.store.insertApiKey({ id: randomUUID(), name: 'bot', keyHash: hashApiKey(scoped), admin: false, agentIds: [randomUUID()], createdAt: 0 });
    const forbidden = await app.requestText('/metrics', { 'x-api-key': scoped });
    expect(forbidden.status).toBe(403);
    expect(JSON.parse(forbidden.text).error).toMatchObject({ code: 'FORBIDDEN', details: 'getMetrics needs an admin API key' });
    await scrape(app, { 'x-api-key': admin });
    await scrape(app, { authorization: `Bearer ${admin}` });
  });

  it('wants the METRICS_TOKEN, not an API key, when the server has both', async () => {
    const admin = 'metrics-admin-key-0123456789';
    const app = await start({ access: { apiKeys: [admin] }, app: { metricsToken: 's3cret' } });
    const withKey = await app.requestText('/metrics', { 'x-api-key': admin });
    expect(withKey.status).toBe(401);
    expect(JSON.parse(withKey.text).error.details).toBe('header authorization must be Bearer <METRICS_TOKEN>');
    await scrape(app, { authorization: 'Bearer s3cret' });
  });

  it('answers 404 when metrics are off', async () => {
    t = await startTestApp();
    const response = await t.requestText('/metrics');
    expect(response.status).toBe(404);
    expect(JSON.parse(response.text).error.code).toBe('NOT_FOUND');
  });
});
