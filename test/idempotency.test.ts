// Idempotency keys on the writes whose spec declares the header: a retry gets the first
// answer and writes nothing; a different request under the key is refused; concurrent
// duplicates never make two writes; records expire after 24 h and the sweeper trims them.
import { createHash, randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { idempotentOperations } from '../src/http/idempotency.js';
import { specOperations } from '../src/spec.js';
import Database from 'better-sqlite3';
import { idempotencyRecords } from '../src/storage/sqlite/idempotency-records.js';
import { migrate, migrations } from '../src/storage/sqlite/migrations.js';
import { openSqliteStore } from '../src/storage/sqlite/sqlite-store.js';
import { IdempotencyKeyTaken, type SessionRecord } from '../src/storage/store.js';
import { registerAgent, USER_ID } from './helpers/fixtures.js';
import { fakeClock, MINUTE } from './helpers/fake-clock.js';
import { startTestApp, type TestApp, type TestRequest } from './helpers/test-app.js';

const apps: TestApp[] = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
});
async function start(options: Parameters<typeof startTestApp>[0] = {}): Promise<TestApp> {
  const app = await startTestApp(options);
  apps.push(app);
  return app;
}

/** One request per idempotent operation, and the table its write lands in. */
async function idempotentRequests(t: TestApp): Promise<Record<string, { request: TestRequest; table: string; other: unknown }>> {
  const agentId = await registerAgent(t);
  const session = await t.request({ method: 'POST', url: '/api/messaging/sessions', body: { agentId, userId: USER_ID } });
  return {
    createAgent: {
      request: { method: 'POST', url: '/api/agents', body: { characterJson: { name: 'Twice' } } },
      table: 'agents',
      other: { characterJson: { name: 'Other' } },
    },
    createSession: {
      request: { method: 'POST', url: '/api/messaging/sessions', body: { agentId, userId: USER_ID, metadata: { n: '1' } } },
      table: 'sessions',
      other: { agentId, userId: USER_ID, metadata: { n: '2' } },
    },
    sendSessionMessage: {
      request: { method: 'POST', url: `/api/messaging/sessions/${session.body.sessionId}/messages`, body: { content: 'Hello' } },
      table: 'messages',
      other: { content: 'Hello!' },
    },
    createWebhook: {
      request: { method: 'POST', url: '/api/webhooks', body: { url: 'https://hooks.example.com/a', types: ['session.created'] } },
      table: 'webhooks',
      other: { url: 'https://hooks.example.com/b', types: ['session.created'] },
    },
  };
}

const IDEMPOTENT_OPERATIONS = ['createAgent', 'createSession', 'createWebhook', 'sendSessionMessage'];

const keyed = (request: TestRequest, key: string, headers: Record<string, string> = {}): TestRequest => ({
  ...request,
  headers: { ...request.headers, ...headers, 'idempotency-key': key },
});

describe('Idempotency-Key', () => {
  it('is declared by exactly the creating writes that exist', () => {
    expect([...idempotentOperations()].sort()).toEqual(IDEMPOTENT_OPERATIONS);
  });

  it('is declared only where the spec documents its refusals: 409 (in use) and 422 (reused)', () => {
    for (const operationId of IDEMPOTENT_OPERATIONS) {
      const statuses = specOperations().find((operation) => operation.operationId === operationId)?.statuses ?? [];
      expect(statuses, operationId).toEqual(expect.arrayContaining(['409', '422']));
    }
  });

  it.each(IDEMPOTENT_OPERATIONS)('%s: a retry answers the same status and body, replayed, and writes nothing', async (operationId) => {
    const t = await start();
    const { request, table } = (await idempotentRequests(t))[operationId]!;
    const key = randomUUID();
    const first = await t.request(keyed(request, key));
    expect(first.status).toBe(201);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    const after = t.rowCounts();

    t.clock.advance(MINUTE); // a replay is the first answer, not a new one at a new time
    const again = await t.request(keyed(request, key));
    expect(again.status).toBe(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.rawBody).toBe(first.rawBody);
    expect(t.rowCounts()).toEqual(after);

    // Without the key, the same request is a new write.
    expect((await t.request(request)).status).toBe(201);
    expect(t.rowCounts()[table]).toBe(after[table]! + 1);
  });

  it.each(IDEMPOTENT_OPERATIONS)('%s: the same key with a different body answers 422 and writes nothing', async (operationId) => {
    const t = await start();
    const { request, other } = (await idempotentRequests(t))[operationId]!;
    const key = randomUUID();
    expect((await t.request(keyed(request, key))).status).toBe(201);
    const after = t.rowCounts();
    const reused = await t.request(keyed({ ...request, body: other }, key));
    expect(reused.status).toBe(422);
    expect(reused.body.error).toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
    expect(reused.body.error.details).toMatch(/^headers\/idempotency-key/);
    expect(t.rowCounts()).toEqual(after);
  });

  it('fingerprints the body as sent: the same bytes replay, the same values re-encoded answer 422', async () => {
    const t = await start();
    const { request } = (await idempotentRequests(t)).createSession!;
    const json = { 'content-type': 'application/json' };
    const text = JSON.stringify(request.body);
    const key = randomUUID();
    expect((await t.request(keyed({ ...request, body: text }, key, json))).status).toBe(201);
    expect((await t.request(keyed({ ...request, body: text }, key, json))).headers['idempotent-replayed']).toBe('true');
    const spaced = await t.request(keyed({ ...request, body: JSON.stringify(request.body, null, 1) }, key, json));
    expect(spaced.status).toBe(422);
    expect(spaced.body.error.code).toBe('IDEMPOTENCY_KEY_REUSED');
  });

  it('replays a record stored before the fingerprint covered the bytes (an upgrade within its 24 h), comparing the body’s value as then', async () => {
    const t = await start();
    const key = randomUUID();
    const agent = { id: randomUUID(), name: 'X', bio: 'Y', settings: {}, createdAt: 0 };
    const answer = JSON.stringify({ success: true, data: { character: { id: agent.id, name: 'X', bio: 'Y', settings: {} } } });
    // What the server before 2026-11-26 stored: SHA-256 in hex of the method, URL and canonical JSON (keys sorted).
    const fingerprint = createHash('sha256').update('POST /api/agents\n{"characterJson":{"bio":"Y","name":"X"}}').digest('hex');
    await t.store.insertAgent(agent, {
      idempotency: () => ({ scope: 'anonymous', key, fingerprint, status: 201, body: answer, createdAt: t.clock.now(), expiresAt: t.clock.now() + 24 * 60 * MINUTE }),
    });
    const request: TestRequest = { method: 'POST', url: '/api/agents', body: { characterJson: { name: 'X', bio: 'Y' } } };
    const replayed = await t.request(keyed(request, key));
    expect(replayed.status).toBe(201);
    expect(replayed.headers['idempotent-replayed']).toBe('true');
    expect(replayed.body.data.character.id).toBe(agent.id);
    const other = await t.request(keyed({ ...request, body: { characterJson: { name: 'X', bio: 'Z' } } }, key));
    expect(other.status).toBe(422);
    expect(t.rowCounts().agents).toBe(1);
  });

  it('treats the same key on another route as a different request (422)', async () => {
    const t = await start();
    const requests = await idempotentRequests(t);
    const key = randomUUID();
    expect((await t.request(keyed(requests.createAgent!.request, key))).status).toBe(201);
    expect((await t.request(keyed(requests.createSession!.request, key))).status).toBe(422);
  });

  it('treats the same key and the same body sent to another session as a different request (422), writing nothing', async () => {
    const t = await start();
    const { request } = (await idempotentRequests(t)).sendSessionMessage!;
    const agentId = await registerAgent(t);
    const other = await t.request({ method: 'POST', url: '/api/messaging/sessions', body: { agentId, userId: USER_ID } });
    const key = randomUUID();
    expect((await t.request(keyed(request, key))).status).toBe(201);
    const after = t.rowCounts();
    const elsewhere = await t.request(keyed({ ...request, url: `/api/messaging/sessions/${other.body.sessionId}/messages` }, key));
    expect(elsewhere.status).toBe(422);
    expect(elsewhere.body.error).toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
    expect(elsewhere.headers['idempotent-replayed']).toBeUndefined();
    expect(t.rowCounts()).toEqual(after);
  });

  it('does not replay a message send: the session is not renewed twice', async () => {
    const t = await start();
    const { request } = (await idempotentRequests(t)).sendSessionMessage!;
    const sessionId = request.url.split('/')[4]!;
    const key = randomUUID();
    await t.request(keyed(request, key));
    const renewed = await t.store.getSession(sessionId);
    t.clock.advance(MINUTE);
    await t.request(keyed(request, key));
    expect(await t.store.getSession(sessionId)).toEqual(renewed);
  });

  it.each(IDEMPOTENT_OPERATIONS)('%s: 50 concurrent requests with one key: exactly one write; the others replay it or answer 409', async (operationId) => {
    const t = await start();
    const { request, table } = (await idempotentRequests(t))[operationId]!;
    const before = t.rowCounts()[table]!;
    const key = randomUUID();
    const answers = await Promise.all(Array.from({ length: 50 }, () => t.request(keyed(request, key))));
    const written = answers.filter((a) => a.status === 201 && a.headers['idempotent-replayed'] === undefined);
    const replayed = answers.filter((a) => a.status === 201 && a.headers['idempotent-replayed'] === 'true');
    const inUse = answers.filter((a) => a.status === 409);
    expect(written).toHaveLength(1);
    expect(inUse.length).toBeGreaterThan(0); // the first was still running when the others came
    expect(replayed.length + inUse.length).toBe(49);
    for (const a of inUse) expect(a.body.error.code).toBe('IDEMPOTENCY_KEY_IN_USE');
    for (const a of replayed) expect(a.rawBody).toBe(written[0]!.rawBody);
    expect(t.rowCounts()[table]).toBe(before + 1);
    // Once the first has answered, a retry replays it.
    const retry = await t.request(keyed(request, key));
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.rawBody).toBe(written[0]!.rawBody);
  });

  it.each(IDEMPOTENT_OPERATIONS)('%s: retries sent at once after the first has answered all replay it (none 409)', async (operationId) => {
    const t = await start();
    const { request, table, other } = (await idempotentRequests(t))[operationId]!;
    const key = randomUUID();
    const first = await t.request(keyed(request, key));
    expect(first.status).toBe(201);
    const after = t.rowCounts()[table];
    const retries = await Promise.all(Array.from({ length: 5 }, () => t.request(keyed(request, key))));
    expect(retries.map((retry) => [retry.status, retry.headers['idempotent-replayed']])).toEqual(Array(5).fill([201, 'true']));
    for (const retry of retries) expect(retry.rawBody).toBe(first.rawBody);
    // And one of them with another body is refused as the first answer's key reused.
    const [reused] = await Promise.all([t.request({ ...keyed(request, key), body: other }), t.request(keyed(request, key))]);
    expect(reused.status).toBe(422);
    expect(t.rowCounts()[table]).toBe(after);
  });

  it('replays even when the handler would now fail before its write (agent deleted since), and refuses a different body there (422)', async () => {
    const t = await start();
    const { request } = (await idempotentRequests(t)).createSession!;
    const agentId = (request.body as { agentId: string }).agentId;
    const key = randomUUID();
    const first = await t.request(keyed(request, key));
    expect((await t.request({ method: 'DELETE', url: `/api/agents/${agentId}?force=true` })).status).toBe(200);
    const after = t.rowCounts();
    const again = await t.request(keyed(request, key));
    expect(again.status).toBe(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.rawBody).toBe(first.rawBody);
    const reused = await t.request(keyed({ ...request, body: { agentId, userId: USER_ID } }, key));
    expect(reused.status).toBe(422);
    expect(reused.body.error.code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(t.rowCounts()).toEqual(after);
  });

  it('refuses a key over 255 characters (400, naming the header) and an empty one; 255 is fine', async () => {
    const t = await start();
    const { request } = (await idempotentRequests(t)).createSession!;
    const before = t.rowCounts();
    for (const key of ['k'.repeat(256), '']) {
      const refused = await t.request(keyed(request, key));
      expect(refused.status).toBe(400);
      expect(refused.body.error.details).toMatch(/^headers\/idempotency-key must NOT have (more than 255|fewer than 1) characters/);
    }
    expect(t.rowCounts()).toEqual(before);
    expect((await t.request(keyed(request, 'k'.repeat(255)))).status).toBe(201);
  });

  it('refuses a key sent on two header lines (400): Node would join them into a key nobody sent', async () => {
    const t = await start();
    const { request } = (await idempotentRequests(t)).createSession!;
    const base = await t.listen();
    const before = t.rowCounts();
    const answer = await new Promise<{ status: number; body: any }>((resolve, reject) => {
      const sent = httpRequest(`${base}${request.url}`, { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': ['a', 'b'] } }, (response) => {
        let text = '';
        response.on('data', (chunk) => (text += chunk));
        response.on('end', () => resolve({ status: response.statusCode!, body: JSON.parse(text) }));
      });
      sent.on('error', reject);
      sent.end(JSON.stringify(request.body));
    });
    expect(answer.status).toBe(400);
    expect(answer.body.error).toMatchObject({ code: 'INVALID_REQUEST', details: 'headers/idempotency-key must be sent once' });
    expect(t.rowCounts()).toEqual(before);
  });

  it('records only a successful write: a failed request may be retried with the same key', async () => {
    const t = await start();
    const agentId = randomUUID();
    const request: TestRequest = { method: 'POST', url: '/api/messaging/sessions', body: { agentId, userId: USER_ID } };
    const key = randomUUID();
    expect((await t.request(keyed(request, key))).status).toBe(404);
    await registerAgent(t, { id: agentId });
    const retried = await t.request(keyed(request, key));
    expect(retried.status).toBe(201);
    expect(retried.headers['idempotent-replayed']).toBeUndefined();
  });

  it('keeps a record 24 hours: then the key makes a new write, and the sweeper trims old records', async () => {
    const t = await start();
    const { request } = (await idempotentRequests(t)).createSession!;
    const key = randomUUID();
    const first = await t.request(keyed(request, key));
    t.clock.advance(24 * 60 * MINUTE - 1);
    expect((await t.request(keyed(request, key))).body.sessionId).toBe(first.body.sessionId);
    expect(t.rowCounts().idempotency_records).toBe(1);
    t.clock.advance(1);
    expect((await t.sweeper.sweep()).trimmed).toBe(1);
    expect(t.rowCounts().idempotency_records).toBe(0);
    const fresh = await t.request(keyed(request, key));
    expect(fresh.status).toBe(201);
    expect(fresh.headers['idempotent-replayed']).toBeUndefined();
    expect(fresh.body.sessionId).not.toBe(first.body.sessionId);
  });

  it('keeps its 24 hours on the steady wall time: a clock stepped a day ahead replays until the step has held a minute', async () => {
    let steady = 0;
    const t = await start({ clock: Object.assign(fakeClock(), { monotonic: () => steady }) });
    const { request } = (await idempotentRequests(t)).createSession!;
    const key = randomUUID();
    const first = await t.request(keyed(request, key));
    t.clock.advance(25 * 60 * MINUTE); // stepped, not passed: 1 s of monotonic time
    steady += 1000;
    const retry = await t.request(keyed(request, key));
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.body.sessionId).toBe(first.body.sessionId);
    // Once the step has held, it is the time: the record is a day old, the key free.
    steady += 61_000;
    const later = await t.request(keyed(request, key));
    expect(later.headers['idempotent-replayed']).toBeUndefined();
    expect(later.body.sessionId).not.toBe(first.body.sessionId);
  });

  it('belongs to the API key that sent it: another key may use the same Idempotency-Key', async () => {
    const keys = ['first-admin-key-0123456789', 'second-admin-key-0123456789'];
    const t = await start({ access: { apiKeys: keys } });
    const agentId = await (async () => {
      const r = await t.request({ method: 'POST', url: '/api/agents', headers: { 'x-api-key': keys[0]! }, body: { characterJson: { name: 'E' } } });
      return r.body.data.character.id as string;
    })();
    const request: TestRequest = { method: 'POST', url: '/api/messaging/sessions', body: { agentId, userId: USER_ID } };
    const a = await t.request(keyed(request, 'same', { 'x-api-key': keys[0]! }));
    const b = await t.request(keyed(request, 'same', { 'x-api-key': keys[1]! }));
    expect(a.status).toBe(201);
    expect(b.headers['idempotent-replayed']).toBeUndefined();
    expect(b.body.sessionId).not.toBe(a.body.sessionId);
  });
});

describe('the idempotency record in the store', () => {
  function session(agentId: string): SessionRecord {
    return {
      id: randomUUID(),
      agentId,
      userId: USER_ID,
      metadata: {},
      status: 'active',
      announced: 'nothing',
      createdAt: 0,
      lastActivity: 0,
      anchorAt: 0,
      expiresAt: 1_800_000,
      warnsAt: 1_500_000,
      renewalCount: 0,
      config: { timeoutMinutes: 30, autoRenew: true, maxDurationMinutes: 720, warningThresholdMinutes: 5 },
    };
  }
  const carry = (key: string) => ({
    idempotency: () => ({ scope: 'anonymous', key, fingerprint: 'f', status: 201, body: '{}', createdAt: 0, expiresAt: Number.MAX_SAFE_INTEGER }),
  });

  it('is written in the write’s own savepoint: of two writes under one key in one group commit, one lands and the other is rolled back whole', async () => {
    const t = await start();
    const agentId = await registerAgent(t);
    const writes = [session(agentId), session(agentId)].map((s) => t.store.insertSession(s, carry('k')));
    const outcomes = await Promise.allSettled(writes);
    expect(outcomes.map((o) => o.status).sort()).toEqual(['fulfilled', 'rejected']);
    expect((outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult).reason).toBeInstanceOf(IdempotencyKeyTaken);
    expect(t.rowCounts()).toMatchObject({ sessions: 1, idempotency_records: 1 });
  });

  it('rides with any write: a modification or a deletion under a taken key is rolled back whole', async () => {
    const t = await start();
    const agentId = await registerAgent(t);
    const stored = session(agentId);
    expect(await t.store.insertSession(stored, carry('taken'))).toBe(true);
    const renewed = { ...stored, renewalCount: 1 };
    await expect(t.store.modifySession(stored.id, () => renewed, carry('taken'))).rejects.toBeInstanceOf(IdempotencyKeyTaken);
    await expect(t.store.deleteSession(stored.id, () => stored, carry('taken'))).rejects.toBeInstanceOf(IdempotencyKeyTaken);
    expect(await t.store.getSession(stored.id)).toEqual(stored);
    expect(await t.store.modifySession(stored.id, () => renewed, carry('free'))).toEqual(renewed);
    expect(t.rowCounts().idempotency_records).toBe(2);
  });

  it('is unique across processes: a second store on the same file cannot write under a taken key', async () => {
    const t = await start();
    const agentId = await registerAgent(t);
    const other = openSqliteStore(t.databasePath);
    try {
      expect(await t.store.insertSession(session(agentId), carry('k'))).toBe(true);
      await expect(other.insertSession(session(agentId), carry('k'))).rejects.toBeInstanceOf(IdempotencyKeyTaken);
      expect(t.rowCounts()).toMatchObject({ sessions: 1, idempotency_records: 1 });
    } finally {
      await other.close();
    }
  });

  it('is unique across processes also when the second store opened first: each write reads the records appended since', async () => {
    const t = await start();
    const agentId = await registerAgent(t);
    const other = openSqliteStore(t.databasePath);
    try {
      expect(await other.insertSession(session(agentId), carry('before'))).toBe(true);
      expect(await t.store.insertSession(session(agentId), carry('k'))).toBe(true);
      await expect(other.insertSession(session(agentId), carry('k'))).rejects.toBeInstanceOf(IdempotencyKeyTaken);
      await expect(t.store.insertSession(session(agentId), carry('before'))).rejects.toBeInstanceOf(IdempotencyKeyTaken);
      expect(t.rowCounts()).toMatchObject({ sessions: 2, idempotency_records: 2 });
    } finally {
      await other.close();
    }
  });

  it('keeps the live records of a database from before the records were keyed by digest (migration 15)', () => {
    const db = new Database(':memory:');
    try {
      for (const sql of migrations.slice(0, 14)) db.exec(sql);
      db.pragma('user_version = 14');
      db.prepare('INSERT INTO idempotency_records (scope, key, fingerprint, status, body, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)').run('key-1', 'k', 'f', 201, '{"a":1}', 5, 10);
      migrate(db);
      expect(idempotencyRecords(db).get('key-1', 'k', 9)).toEqual({ scope: 'key-1', key: 'k', fingerprint: 'f', status: 201, body: '{"a":1}', createdAt: 5, expiresAt: 10 });
      expect(idempotencyRecords(db).get('key-2', 'k', 9)).toBeUndefined();
    } finally {
      db.close();
    }
  });

  it('answers 409 when the database refuses the key (a write by another process)', async () => {
    const t = await start();
    const agentId = await registerAgent(t);
    const key = randomUUID();
    // Another process wrote under the key after this one looked it up: simulated by a
    // store whose lookup misses.
    expect(await t.store.insertSession(session(agentId), carry(key))).toBe(true);
    const blind = await start({ databasePath: t.databasePath, store: { ...openSqliteStore(t.databasePath), getIdempotencyRecord: async () => undefined } });
    const answer = await blind.request(keyed({ method: 'POST', url: '/api/messaging/sessions', body: { agentId, userId: USER_ID } }, key));
    expect(answer.status).toBe(409);
    expect(answer.body.error.code).toBe('IDEMPOTENCY_KEY_IN_USE');
    expect(t.rowCounts().sessions).toBe(1);
  });
});
