// A PostgreSQL database lost while the server runs: requests answer 503
// STORAGE_UNAVAILABLE in the envelope (never a 500, never a hang), health says unhealthy,
// and everything works again once the database is back. On a cluster of its own, as
// it is stopped and restarted (the run's shared cluster serves other test files).
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgresStore } from '../src/storage/postgres/postgres-store.js';
import { type PostgresCluster, startPostgresCluster } from './helpers/postgres-cluster.js';
import { postgresAdminUrl } from './helpers/postgres-database.js';
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
    app = await startTestApp({ store: await openPostgresStore({ url: cluster.urlOf('outage'), poolSize: 4, connectTimeoutMs: 2000 }) });
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

    cluster.start();
    const back = await app.request({ method: 'GET', url: `/api/agents/${agentId}` });
    expect(back.status).toBe(200);
    expect((await app.request({ method: 'GET', url: '/api/agents' })).body.data.agents.map((a: { id: string }) => a.id)).toEqual([agentId]);
    expect((await app.request({ method: 'GET', url: '/api/messaging/sessions/health' })).status).toBe(200);
  });
});
