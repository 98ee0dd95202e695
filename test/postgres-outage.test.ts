// A PostgreSQL database lost while the server runs: requests answer 503
// STORAGE_UNAVAILABLE in the envelope (never a 500, never a hang), health says unhealthy,
// and everything works again once the database is back. On a cluster of its own, as
// it is stopped and restarted (the run's shared cluster serves other test files).
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics } from '../src/ops/metrics.js';
import { openPostgresStore } from '../src/storage/postgres/postgres-store.js';
import { type PostgresCluster, startPostgresCluster } from './helpers/postgres-cluster.js';
import { createTestDatabase, postgresAdminUrl } from './helpers/postgres-database.js';
import { createSession, registerAgent } from './helpers/fixtures.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';

describe('the server when PostgreSQL is lost and comes back', { timeout: 60_000 }, () => {
  let cluster: PostgresCluster;
  let app: TestApp;
  beforeAll(async () => {
    postgresAdminUrl(); // fails, saying how to install PostgreSQL, when it is missing
    cluster = await startPostgresCluster();
    const admin = new pg.Client({ connectionString: cluster.adminUrl });
    await admin.connect();
    // The test clusters acknowledge commits before writing their WAL (synchronous_commit
    // off); an immediate stop would then lose the last ones. Not here: every write counts.
    await admin.query('CREATE DATABASE outage');
    await admin.query('ALTER DATABASE outage SET synchronous_commit = on').finally(() => admin.end());
    app = await startTestApp({ store: await openPostgresStore({ url: cluster.urlOf('outage'), poolSize: 4, connectTimeoutMs: 2000 }), metrics: createMetrics() });
  }, 60_000); // initdb and a cluster of its own: a few seconds, more on a loaded machine
  afterAll(async () => {
    await app?.close();
    cluster?.destroy();
  });

  it('answers 503 STORAGE_UNAVAILABLE while it is down, and recovers with every acknowledged write', async () => {
    const agentId = randomUUID();
    expect((await app.request({ method: 'POST', url: '/api/agents', body: { characterJson: { id: agentId, name: 'Eliza' } } })).status).toBe(201);

    cluster.stop();
    const read = await app.request({ method: 'GET', url: `/api/agents/${agentId}` });
    expect(read.status).toBe(503);
    expect(read.body).toMatchObject({ success: false, error: { code: 'STORAGE_UNAVAILABLE' } });
    expect(read.body.error.details).toMatch(/^the database (cannot be reached|connection was lost)/);
    expect(read.headers['retry-after']).toBe('1');
    const write = await app.request({ method: 'POST', url: '/api/agents', body: { characterJson: { id: randomUUID(), name: 'Lost' } } });
    expect(write.status).toBe(503);
    expect(write.body.error.code).toBe('STORAGE_UNAVAILABLE');
    const health = await app.request({ method: 'GET', url: '/api/messaging/sessions/health' });
    expect(health.status).toBe(503);
    // The metrics still scrape (the key check keeps its last answer, no keys), the outage's 503s counted.
    const metrics = await app.requestText('/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.text).toMatch(/sessions_api_http_request_duration_seconds_count\{[^}]*status="503"[^}]*\} [1-9]/);

    cluster.start();
    const back = await app.request({ method: 'GET', url: `/api/agents/${agentId}` });
    expect(back.status).toBe(200);
    expect((await app.request({ method: 'GET', url: '/api/agents' })).body.data.agents.map((a: { id: string }) => a.id)).toEqual([agentId]);
    expect((await app.request({ method: 'GET', url: '/api/messaging/sessions/health' })).status).toBe(200);
  });
});

/** An app on a fresh PostgreSQL database with an agent's session, and an admin connection to it; all gone after `work`. */
async function withSession(poolSize: number, work: (context: { app: TestApp; admin: pg.Client; sessionId: string }) => Promise<void>): Promise<void> {
  const database = await createTestDatabase();
  const app = await startTestApp({ store: await openPostgresStore({ url: database.url, poolSize }) });
  const admin = new pg.Client({ connectionString: database.url });
  await admin.connect();
  try {
    const agentId = await registerAgent(app);
    await work({ app, admin, sessionId: (await createSession(app, { agentId })).sessionId });
  } finally {
    await admin.end();
    await app.close();
    await database.drop();
  }
}

describe('the server when PostgreSQL ends its connections', { timeout: 60_000 }, () => {
  it('lives on when its connections are terminated mid-request (pg_terminate_backend): 503 or success, then works', async () => {
    await withSession(4, async ({ app, admin, sessionId }) => {
      const statuses = new Set<number>();
      for (let round = 0; round < 5; round++) {
        const requests = Array.from({ length: 20 }, (_, i) =>
          i % 2 === 0
            ? app.request({ method: 'POST', url: `/api/messaging/sessions/${sessionId}/messages`, body: { content: `m${round}-${i}` } })
            : app.request({ method: 'GET', url: `/api/messaging/sessions/${sessionId}` }),
        );
        // Checked out mid-request: the pool's own error listener is off them then. Only this
        // test's database: the cluster is shared with the other test files running meanwhile.
        await admin.query(
          "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'sessions-api' AND pid <> pg_backend_pid()",
        );
        for (const response of await Promise.all(requests)) {
          statuses.add(response.status);
          if (response.status === 503) expect(response.body.error.code).toBe('STORAGE_UNAVAILABLE');
        }
      }
      expect([...statuses].every((status) => [200, 201, 503].includes(status)), [...statuses].join()).toBe(true);
      const after = await app.request({ method: 'POST', url: `/api/messaging/sessions/${sessionId}/messages`, body: { content: 'after' } });
      expect(after.status).toBe(201);
    });
  });
});

describe('the server when its database changes under it', { timeout: 60_000 }, () => {
  it('answers 503 STORAGE_UNAVAILABLE to writes on a database made read-only, not 500, and writes again once it is not', async () => {
    await withSession(2, async ({ app, admin, sessionId }) => {
      const database = (await admin.query<{ name: string }>('SELECT current_database() AS name')).rows[0]!.name;
      // New connections take the setting: the app's are ended, as a failover to a standby would.
      const reconnectWith = async (readOnly: boolean) => {
        await admin.query(`ALTER DATABASE "${database}" SET default_transaction_read_only = ${readOnly ? 'on' : 'off'}`);
        await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'sessions-api' AND pid <> pg_backend_pid()");
      };
      await reconnectWith(true);
      let refused = await app.request({ method: 'POST', url: `/api/messaging/sessions/${sessionId}/heartbeat` });
      // The first request may meet a connection that was just ended (503 as well).
      if (!/read-only/.test(refused.body.error?.details ?? '')) refused = await app.request({ method: 'POST', url: `/api/messaging/sessions/${sessionId}/heartbeat` });
      expect(refused.status).toBe(503);
      expect(refused.body.error).toMatchObject({ code: 'STORAGE_UNAVAILABLE', details: expect.stringMatching(/the database is read-only .*\(SQLSTATE 25006\)/) });
      expect(refused.headers['retry-after']).toBe('1');
      await reconnectWith(false);
      let renewed = await app.request({ method: 'POST', url: `/api/messaging/sessions/${sessionId}/heartbeat` });
      if (renewed.status === 503) renewed = await app.request({ method: 'POST', url: `/api/messaging/sessions/${sessionId}/heartbeat` });
      expect(renewed.status).toBe(200);
    });
  });

  it('answers 503 STORAGE_UNAVAILABLE for a table gone (an operator at work), not 500, and serves again once it is back', async () => {
    await withSession(2, async ({ app, admin, sessionId }) => {
      await admin.query('ALTER TABLE messages RENAME TO messages_away');
      const refused = await app.request({ method: 'POST', url: `/api/messaging/sessions/${sessionId}/messages`, body: { content: 'hi' } });
      expect(refused.status).toBe(503);
      expect(refused.body.error).toMatchObject({ code: 'STORAGE_UNAVAILABLE', details: expect.stringMatching(/a table is missing from the database \(SQLSTATE 42P01\)/) });
      expect(refused.headers['retry-after']).toBe('1');
      await admin.query('ALTER TABLE messages_away RENAME TO messages');
      expect((await app.request({ method: 'POST', url: `/api/messaging/sessions/${sessionId}/messages`, body: { content: 'hi' } })).status).toBe(201);
      expect((await app.request({ method: 'GET', url: `/api/messaging/sessions/${sessionId}` })).body.renewalCount).toBe(1);
    });
  });
});
