// Through PgBouncer in session mode, the pooler PostgreSQL is commonly run behind: the
// store opens (its statement timeout is set by a statement: given as a startup parameter,
// PgBouncer refused every connection), the statement timeout applies, and the
// conformance suite passes. (Transaction mode is not supported: see the README.)
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatReport } from '../src/conformance/report.js';
import { runConformance } from '../src/conformance/run.js';
import { specPath } from '../src/spec.js';
import { openPostgresStore } from '../src/storage/postgres/postgres-store.js';
import { serveStore } from './helpers/conformance-target.js';
import { PGBOUNCER, type PgBouncer, startPgBouncer } from './helpers/pgbouncer.js';
import { createTestDatabase, postgresAdminUrl, type TestDatabase } from './helpers/postgres-database.js';
import { startTestApp } from './helpers/test-app.js';

const available = existsSync(PGBOUNCER);
if (!available) {
  console.warn(
    `\n!!! SKIPPING the PgBouncer tests: no ${PGBOUNCER}. Install it with \`apt-get install -y pgbouncer\`\n` +
      '!!! (.ci/run does so); the store is NOT tested behind a pooler on this machine.\n',
  );
}

describe.skipIf(!available)('the PostgreSQL store through PgBouncer (session mode)', { timeout: 120_000 }, () => {
  let bouncer: PgBouncer;
  let database: TestDatabase;
  beforeAll(async () => {
    bouncer = await startPgBouncer(postgresAdminUrl(), 'session');
    database = await createTestDatabase();
  });
  afterAll(async () => {
    bouncer?.stop();
    await database?.drop();
  });

  it('opens and serves; a statement over the statement timeout is cancelled there too (503 naming it)', async () => {
    const app = await startTestApp({ store: await openPostgresStore({ url: bouncer.urlOf(database.url), poolSize: 2, statementTimeoutMs: 300 }) });
    const locker = new pg.Client({ connectionString: database.url });
    try {
      const agentId = randomUUID();
      expect((await app.request({ method: 'POST', url: '/api/agents', body: { characterJson: { id: agentId, name: 'Eliza' } } })).status).toBe(201);
      const created = await app.request({ method: 'POST', url: '/api/messaging/sessions', body: { agentId, userId: randomUUID() } });
      expect(created.status).toBe(201);
      await locker.connect();
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE');
      const read = await app.request({ method: 'GET', url: `/api/messaging/sessions/${created.body.sessionId}` });
      expect(read.status).toBe(503);
      expect(read.body.error.details).toMatch(/the statement took longer than the statement timeout \(SQLSTATE 57014\)/);
      await locker.query('ROLLBACK');
      expect((await app.request({ method: 'GET', url: `/api/messaging/sessions/${created.body.sessionId}` })).status).toBe(200);
    } finally {
      await locker.end().catch(() => undefined);
      await app.close();
    }
  });

  it('passes the conformance suite', async () => {
    const target = await serveStore(await openPostgresStore({ url: bouncer.urlOf(database.url), poolSize: 8 }));
    try {
      const report = await runConformance({ baseUrl: target.url, specPath, seed: 20261129, validCases: 2, workers: 4 });
      expect(formatReport(report)).toMatch(/\n\d+ passed, 0 failed$/);
    } finally {
      await target.close();
    }
  });
});
