// Idempotency-Key when requests under one key meet in this process: a retry behind the
// first request answers 409 while that one may still change its answer (a message waiting
// for its agent's reply, even when the first writes during the retry's read of the record),
// and replays once it has answered, also behind another retry that is replaying; a replay
// carries the first answer's headers, not those of the refusal its own handler had begun.
// The store is wrapped to hold a write or a read at the moment that matters.
import { randomUUID } from 'node:crypto';
import { afterEach, expect, it } from 'vitest';
import { generateApiKey, hashApiKey } from '../src/api-keys.js';
import { openSqliteStore } from '../src/storage/sqlite/sqlite-store.js';
import type { Store } from '../src/storage/store.js';
import { fakeClock } from './helpers/fake-clock.js';
import { createSession, registerAgent } from './helpers/fixtures.js';
import { tempDatabaseEachTest } from './helpers/temp-database.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';
import { until } from './helpers/until.js';

const database = tempDatabaseEachTest('sessions-api-idempotency-races-');
let t: TestApp | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

it('a retry behind a first that writes during its read answers 409, not a replay of the unsettled answer', async () => {
  const plain = openSqliteStore(database.path);
  let retryRead: () => void = () => undefined;
  const retryReading = new Promise<void>((resolve) => (retryRead = resolve));
  let gateWrites = false;
  const store: Store = {
    ...plain,
    // The first's write waits until the retry has started its read (holder.answer still undefined then).
    async appendMessage(...args: Parameters<Store['appendMessage']>) {
      if (gateWrites) await retryReading;
      return plain.appendMessage(...args);
    },
    // The retry's read is answered only once the first's record is committed (as a read queued behind a busy pool).
    async getIdempotencyRecord(scope, key, now) {
      retryRead();
      await until('the first has committed its record', async () => (await plain.getIdempotencyRecord(scope, key, now)) !== undefined);
      return plain.getIdempotencyRecord(scope, key, now);
    },
  } as Store;
  t = await startTestApp({ store, agentReplyTimeoutMs: 10_000 });
  const app = t;
  const agentId = await registerAgent(app);
  const { sessionId } = await createSession(app, { agentId });
  const keyed = { method: 'POST' as const, url: `/api/messaging/sessions/${sessionId}/messages`, body: { content: 'hello?', transport: 'http' }, headers: { 'idempotency-key': 'race' } };
  gateWrites = true;
  const first = app.request(keyed);
  await until('the first holds the key', async () => app.replies.size() === 1);
  const retry = await app.request(keyed);
  // The first still waits for the agent: its stored answer has no agentResponse yet.
  expect(app.replies.size()).toBe(1);
  expect([retry.status, retry.body.error?.code, retry.headers['idempotent-replayed']]).toEqual([409, 'IDEMPOTENCY_KEY_IN_USE', undefined]);
  gateWrites = false;
  await app.request({ method: 'POST', url: keyed.url, body: { content: 'here', authorId: agentId } });
  await first;
});

it('a retry behind a replaying retry replays too (the first answered before both)', async () => {
  const plain = openSqliteStore(database.path);
  let slowReads = false;
  let readStarted: () => void = () => undefined;
  const reading = new Promise<void>((resolve) => (readStarted = resolve));
  const store: Store = {
    ...plain,
    // A record read that takes a round trip's while (PostgreSQL under load): 300 ms.
    async getIdempotencyRecord(scope, key, now) {
      if (slowReads) {
        readStarted();
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
      return plain.getIdempotencyRecord(scope, key, now);
    },
  } as Store;
  t = await startTestApp({ store });
  const agentId = await registerAgent(t);
  const create = { method: 'POST' as const, url: '/api/messaging/sessions', body: { agentId, userId: '7c9e6679-7425-40de-944b-e07fc1f66afe' }, headers: { 'idempotency-key': 'done-long-ago' } };
  const first = await t.request(create);
  expect(first.status).toBe(201);
  slowReads = true;
  const second = t.request(create);
  await reading; // the second's write was refused (key taken): it reads the record to replay it
  const third = await t.request(create);
  expect([(await second).status, third.status, third.body.error?.code]).toEqual([201, 201, undefined]);
});

it('a keyed retry of a webhook create, its key revoked under it: no WWW-Authenticate on the replayed 201', async () => {
  const ADMIN_KEY = 'admin-key-for-idempotency-races-1';
  const plain = openSqliteStore(database.path);
  let revokeFirst = false;
  const store: Store = {
    ...plain,
    async insertWebhook(...args: Parameters<Store['insertWebhook']>) {
      if (revokeFirst) await plain.revokeApiKey('leaked', Date.now());
      return plain.insertWebhook(...args);
    },
  } as Store;
  t = await startTestApp({ store, clock: fakeClock(Date.now()), access: { apiKeys: [ADMIN_KEY] } });
  const admin = { 'x-api-key': ADMIN_KEY };
  const agentId = (await t.request({ method: 'POST', url: '/api/agents', headers: admin, body: { characterJson: { name: 'A' } } })).body.data.character.id as string;
  const key = generateApiKey();
  await plain.insertApiKey({ id: randomUUID(), name: 'leaked', keyHash: hashApiKey(key), admin: false, agentIds: [agentId], createdAt: 0 });
  const create = { method: 'POST' as const, url: '/api/webhooks', headers: { 'x-api-key': key, 'idempotency-key': 'wh-1' }, body: { url: 'https://hooks.example.com/x' } };
  const first = await t.request(create);
  expect(first.status).toBe(201);
  revokeFirst = true;
  const retry = await t.request(create);
  expect([retry.status, retry.headers['idempotent-replayed']]).toEqual([201, 'true']);
  expect(retry.headers['www-authenticate']).toBeUndefined();
});
