// API keys: off by default; with keys, every operation but the health check needs one;
// a key bound to agents sees only theirs (others are 404, lists filtered) and may not
// manage agents (403); a revoked key is refused at once, even when revoked elsewhere.
import { randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { generateApiKey, hashApiKey } from '../src/api-keys.js';
import { openOperations } from '../src/http/auth.js';
import { specOperations } from '../src/spec.js';
import { openPostgresStore } from '../src/storage/postgres/postgres-store.js';
import type { Store } from '../src/storage/store.js';
import { USER_ID } from './helpers/fixtures.js';
import { createTestDatabase, type TestDatabase } from './helpers/postgres-database.js';
import { storedMessages } from './helpers/stored-messages.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';

const ADMIN_KEY = 'admin-key-for-tests-0123456789';
const apps: TestApp[] = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
});

async function start(options: Parameters<typeof startTestApp>[0] = {}): Promise<TestApp> {
  const app = await startTestApp(options);
  apps.push(app);
  return app;
}

/** A key in the store's table, as `npm run keys -- create` makes one. */
async function storedKey(store: Store, options: { admin?: boolean; agentIds?: string[] } = {}): Promise<{ id: string; key: string }> {
  const key = generateApiKey();
  const id = randomUUID();
  const name = `key-${id.slice(0, 8)}`;
  expect(await store.insertApiKey({ id, name, keyHash: hashApiKey(key), admin: options.admin ?? false, agentIds: options.agentIds ?? [], createdAt: 0 })).toBe(true);
  return { id, key };
}

const withKey = (key: string) => ({ 'x-api-key': key });

const databases: TestDatabase[] = [];
afterAll(async () => {
  for (const database of databases.splice(0)) await database.drop();
});
/** A PostgreSQL store on a database of its own (dropped after the file). */
async function postgresStore(): Promise<Store> {
  const database = await createTestDatabase();
  databases.push(database);
  return openPostgresStore({ url: database.url, poolSize: 2 });
}

async function agentAndSession(t: TestApp, headers: Record<string, string>) {
  const agent = await t.request({ method: 'POST', url: '/api/agents', headers, body: { characterJson: { name: 'Eliza' } } });
  expect(agent.status).toBe(201);
  const agentId = agent.body.data.character.id as string;
  const session = await t.request({ method: 'POST', url: '/api/messaging/sessions', headers, body: { agentId, userId: USER_ID } });
  expect(session.status).toBe(201);
  return { agentId, sessionId: session.body.sessionId as string };
}

/** Every operation of the spec, as a request with its path parameters filled in. */
function everyOperation(ids: { agentId: string; sessionId: string }) {
  return specOperations().map((op) => ({
    operationId: op.operationId,
    method: op.method as 'GET' | 'POST' | 'PATCH' | 'DELETE',
    url: op.path.replace('{agentId}', ids.agentId).replace('{sessionId}', ids.sessionId),
  }));
}

describe('without keys configured (the default)', () => {
  it('needs no key, and ignores one that is sent', async () => {
    const t = await start();
    const ids = await agentAndSession(t, {});
    expect((await t.request({ method: 'GET', url: `/api/messaging/sessions/${ids.sessionId}` })).status).toBe(200);
    expect((await t.request({ method: 'GET', url: '/api/agents', headers: withKey('anything-at-all') })).status).toBe(200);
  });
});

describe('with API_KEYS', () => {
  it('answers 401 with WWW-Authenticate to every operation but the health check and the spec, without a key or with a wrong one', async () => {
    const t = await start({ access: { apiKeys: [ADMIN_KEY] } });
    const ids = await agentAndSession(t, withKey(ADMIN_KEY));
    const operations = everyOperation(ids);
    expect(operations.length).toBeGreaterThanOrEqual(14);
    const open = openOperations();
    for (const { operationId, method, url } of operations) {
      // The spec itself (/openapi.*) is open: test/ops-routes. /metrics with METRICS_TOKEN: test/metrics.
      if (open.has(operationId) && operationId !== 'getSessionsHealth') continue;
      const attempts: Array<[Record<string, string>, RegExp]> = [
        [{}, /API key is required/],
        [{ authorization: 'Basic YTpi' }, /API key is required/],
        [withKey('wrong-key-0123456789abcdef'), /not valid/],
        [{ authorization: 'Bearer wrong-key-0123456789' }, /not valid/],
      ];
      for (const [headers, details] of attempts) {
        const response = await t.request({ method, url, headers });
        if (operationId === 'getSessionsHealth') {
          expect(response.status, operationId).toBe(200);
          continue;
        }
        expect(response.status, `${operationId} ${JSON.stringify(headers)}`).toBe(401);
        expect(response.body.error.code).toBe('UNAUTHORIZED');
        expect(response.body.error.details).toMatch(details);
        expect(response.headers['www-authenticate']).toMatch(/^Bearer realm="sessions-api"/);
      }
    }
    // Nothing was written by the refused requests.
    expect(t.rowCounts()).toMatchObject({ agents: 1, sessions: 1, messages: 0 });
  });

  it('accepts the key as X-API-KEY or as Authorization: Bearer', async () => {
    const t = await start({ access: { apiKeys: ['another-admin-key-0123456', ADMIN_KEY] } });
    await agentAndSession(t, withKey(ADMIN_KEY));
    expect((await t.request({ method: 'GET', url: '/api/agents', headers: { authorization: `Bearer ${ADMIN_KEY}` } })).status).toBe(200);
    expect((await t.request({ method: 'GET', url: '/api/agents', headers: { authorization: `bearer ${ADMIN_KEY}` } })).status).toBe(200);
  });

  it('refuses a key sent on two lines of X-API-KEY or of Authorization (401): Node would join the one and drop the other', async () => {
    const t = await start({ access: { apiKeys: [ADMIN_KEY] } });
    const base = await t.listen();
    for (const headers of [{ 'x-api-key': [ADMIN_KEY, ADMIN_KEY] }, { authorization: [`Bearer ${ADMIN_KEY}`, 'Bearer not-the-key-0123456789'] }] as Array<Record<string, string[]>>) {
      const answer = await new Promise<{ status: number; body: any; authenticate?: string }>((resolve, reject) => {
        const sent = httpRequest(`${base}/api/agents`, { headers }, (response) => {
          let text = '';
          response.on('data', (chunk) => (text += chunk));
          response.on('end', () => resolve({ status: response.statusCode!, body: JSON.parse(text), authenticate: response.headers['www-authenticate'] }));
        });
        sent.on('error', reject);
        sent.end();
      });
      expect(answer.status, JSON.stringify(headers)).toBe(401);
      expect(answer.body.error).toMatchObject({ code: 'UNAUTHORIZED', details: 'the API key must be sent once (one X-API-KEY or Authorization line)' });
      expect(answer.authenticate).toBeDefined();
    }
    expect((await t.request({ method: 'GET', url: '/api/agents', headers: { 'x-api-key': ADMIN_KEY, authorization: `Bearer ${ADMIN_KEY}` } })).status).toBe(200);
  });

  it('reads a key only from a Bearer scheme, and an empty X-API-KEY as no key at all', async () => {
    const t = await start({ access: { apiKeys: [ADMIN_KEY] } });
    // A valid key under another scheme whose name ends in "Bearer" is not a Bearer token.
    const other = await t.request({ method: 'GET', url: '/api/agents', headers: { authorization: `NotBearer ${ADMIN_KEY}` } });
    expect(other.status).toBe(401);
    expect(other.body.error.code).toBe('UNAUTHORIZED');
    // An empty X-API-KEY presents nothing: the Bearer key beside it is the one read.
    const empty = await t.request({ method: 'GET', url: '/api/agents', headers: { 'x-api-key': '', authorization: `Bearer ${ADMIN_KEY}` } });
    expect(empty.status).toBe(200);
  });
});

describe('keys in the table', () => {
  it('turn keys on by existing; an admin key may do everything', async () => {
    const t = await start();
    expect((await t.request({ method: 'GET', url: '/api/agents' })).status).toBe(200);
    const admin = await storedKey(t.store, { admin: true });
    expect((await t.request({ method: 'GET', url: '/api/agents' })).status).toBe(401);
    const ids = await agentAndSession(t, withKey(admin.key));
    const deleted = await t.request({ method: 'DELETE', url: `/api/agents/${ids.agentId}?force=true`, headers: withKey(admin.key) });
    expect(deleted.status).toBe(200);
  });

  it('refuse a revoked key at once, even when another process revoked it; revoking every key keeps keys on', async () => {
    const t = await start();
    const admin = await storedKey(t.store, { admin: true });
    expect((await t.request({ method: 'GET', url: '/api/agents', headers: withKey(admin.key) })).status).toBe(200);
    // A second server on the same database file revokes it.
    const other = await start({ databasePath: t.databasePath });
    expect((await other.store.revokeApiKey(admin.id, 1))?.revokedAt).toBe(1);
    const refused = await t.request({ method: 'GET', url: '/api/agents', headers: withKey(admin.key) });
    expect(refused.status).toBe(401);
    expect(refused.body.error.details).toMatch(/not valid/);
    expect((await t.request({ method: 'GET', url: '/api/agents' })).status).toBe(401);
  });
});

// On both stores: what a key bound to agents may see is partly the store's to enforce (its listings and counts).
describe.each([
  { backend: 'SQLite', openStore: undefined },
  { backend: 'PostgreSQL', openStore: postgresStore },
])('a key bound to agents ($backend)', { timeout: 60_000 }, ({ openStore }) => {
  async function scopedSetup() {
    const t = await start({ access: { apiKeys: [ADMIN_KEY] }, ...(openStore && { store: await openStore() }) });
    const mine = await agentAndSession(t, withKey(ADMIN_KEY));
    const theirs = await agentAndSession(t, withKey(ADMIN_KEY));
    const scoped = await storedKey(t.store, { agentIds: [mine.agentId] });
    return { t, mine, theirs, headers: withKey(scoped.key) };
  }

  it("answers 404 on another agent's session, for every operation on a session, and changes nothing", async () => {
    const { t, mine, theirs, headers } = await scopedSetup();
    const stored = await t.store.getSession(theirs.sessionId);
    // Ending the session goes last: the operations after it need the session.
    // Streams are checked in event-stream.test.ts (their answer is not JSON).
    const sessionOperations = everyOperation(theirs)
      .filter((op) => op.url.includes(theirs.sessionId) && op.operationId !== 'streamSessionEvents')
      .sort((a, b) => Number(a.operationId === 'endSession') - Number(b.operationId === 'endSession'));
    expect(sessionOperations.map((op) => op.operationId).sort()).toEqual(
      ['endSession', 'getSession', 'getSessionMessages', 'renewSession', 'sendSessionMessage', 'sessionHeartbeat', 'updateSessionTimeout'],
    );
    const bodies: Record<string, unknown> = { sendSessionMessage: { content: 'hi' }, updateSessionTimeout: { timeoutMinutes: 60 } };
    for (const { operationId, method, url } of sessionOperations) {
      const response = await t.request({ method, url, headers, body: bodies[operationId] });
      expect(response.status, operationId).toBe(404);
      expect(response.body.error.code).toBe('SESSION_NOT_FOUND');
      // The same operation on its own agent's session works.
      const own = await t.request({ method, url: url.replace(theirs.sessionId, mine.sessionId), headers, body: bodies[operationId] });
      expect(own.status, `${operationId} on its own session`).toBeLessThan(300);
    }
    expect(await t.store.getSession(theirs.sessionId)).toEqual(stored);
    expect((await storedMessages(t.store, { sessionId: theirs.sessionId, limit: 10 })).messages).toEqual([]);
  });

  it("answers 404 for another agent (get, or a session created with it) and lists only its own", async () => {
    const { t, mine, theirs, headers } = await scopedSetup();
    expect((await t.request({ method: 'GET', url: `/api/agents/${theirs.agentId}`, headers })).status).toBe(404);
    expect((await t.request({ method: 'GET', url: `/api/agents/${mine.agentId}`, headers })).status).toBe(200);
    const create = await t.request({ method: 'POST', url: '/api/messaging/sessions', headers, body: { agentId: theirs.agentId, userId: USER_ID } });
    expect(create.status).toBe(404);
    expect(create.body.error).toMatchObject({ code: 'AGENT_NOT_FOUND', details: `body/agentId ${theirs.agentId} does not exist` });

    const agents = await t.request({ method: 'GET', url: '/api/agents', headers });
    expect(agents.body.data.agents.map((a: { id: string }) => a.id)).toEqual([mine.agentId]);
    const sessions = await t.request({ method: 'GET', url: '/api/messaging/sessions?status=all', headers });
    expect(sessions.body.sessions.map((s: { sessionId: string }) => s.sessionId)).toEqual([mine.sessionId]);
    expect(sessions.body).toMatchObject({ total: 1, stats: { totalSessions: 1, activeSessions: 1, expiredSessions: 0 } });
    const filtered = await t.request({ method: 'GET', url: `/api/messaging/sessions?agentId=${theirs.agentId}`, headers });
    expect(filtered.body).toMatchObject({ sessions: [], total: 0 });
    // The admin still sees both.
    const all = await t.request({ method: 'GET', url: '/api/messaging/sessions', headers: withKey(ADMIN_KEY) });
    expect(all.body).toMatchObject({ total: 2, stats: { totalSessions: 2 } });
  });

  it("counts its agents' active and expired sessions apart in stats, and no other agent's", async () => {
    const { t, mine, theirs, headers } = await scopedSetup();
    const short = { timeoutConfig: { timeoutMinutes: 5 } };
    for (const agentId of [mine.agentId, theirs.agentId]) {
      const created = await t.request({ method: 'POST', url: '/api/messaging/sessions', headers: withKey(ADMIN_KEY), body: { agentId, userId: USER_ID, ...short } });
      expect(created.status).toBe(201);
    }
    t.clock.advance(10 * 60_000); // the short sessions have expired, the default ones (30 min) not
    const sessions = await t.request({ method: 'GET', url: '/api/messaging/sessions?status=all', headers });
    expect(sessions.body).toMatchObject({ total: 2, stats: { totalSessions: 2, activeSessions: 1, expiredSessions: 1 } });
    const expired = await t.request({ method: 'GET', url: '/api/messaging/sessions?status=expired', headers });
    expect(expired.body).toMatchObject({ total: 1, stats: { totalSessions: 2, activeSessions: 1, expiredSessions: 1 } });
  });

  it('answers 403 FORBIDDEN to the admin-only operations (managing agents), before reading the body', async () => {
    const { t, mine, headers } = await scopedSetup();
    const create = await t.request({ method: 'POST', url: '/api/agents', headers, body: { characterJson: { name: 'Sneaky' } } });
    expect(create.status).toBe(403);
    expect(create.body.error).toMatchObject({ code: 'FORBIDDEN', details: 'createAgent needs an admin API key' });
    expect((await t.request({ method: 'POST', url: '/api/agents', headers, body: { invalid: true } })).status).toBe(403);
    const remove = await t.request({ method: 'DELETE', url: `/api/agents/${mine.agentId}?force=true`, headers });
    expect(remove.status).toBe(403);
    expect(await t.store.listAgents()).toHaveLength(2);
  });
});
