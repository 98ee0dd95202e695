// DATABASE_STATEMENT_TIMEOUT_MS: a statement PostgreSQL cancels for running too long (here,
// waiting on a lock another connection holds) answers 503 STORAGE_UNAVAILABLE, naming the
// timeout, never a 500 or a hang; the next request, the lock gone, is served. And a
// database that answers nothing at all (frozen, out of reach), which enforces no timeout
// of its own: 503 soon after the statement timeout, not a wait as long as the freeze.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { describe, expect, it, vi } from 'vitest';
import { openPostgresStore } from '../src/storage/postgres/postgres-store.js';
import { freezingProxy } from './helpers/freezing-proxy.js';
import { createTestDatabase } from './helpers/postgres-database.js';
import { startTestApp } from './helpers/test-app.js';
import { until } from './helpers/until.js';

const USER = '5f1c1c8e-4a3b-4c7d-9e2f-0a1b2c3d4e5f';
const TIMEOUT_MS = 300;

describe('a statement over the statement timeout, on PostgreSQL', { timeout: 60_000 }, () => {
  it('is cancelled and answers 503 STORAGE_UNAVAILABLE naming the timeout; the request after it is served', async () => {
    const database = await createTestDatabase();
    const app = await startTestApp({ store: await openPostgresStore({ url: database.url, poolSize: 2, statementTimeoutMs: TIMEOUT_MS }) });
    const locker = new pg.Client({ connectionString: database.url });
    try {
      const agentId = randomUUID();
      expect((await app.request({ method: 'POST', url: '/api/agents', body: { characterJson: { id: agentId, name: 'Eliza' } } })).status).toBe(201);
      const created = await app.request({ method: 'POST', url: '/api/messaging/sessions', body: { agentId, userId: USER } });
      const sessionUrl = `/api/messaging/sessions/${created.body.sessionId}`;

      await locker.connect();
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE');
      const read = await app.request({ method: 'GET', url: sessionUrl }); // waits for the lock until cancelled
      expect(read.status).toBe(503);
      expect(read.body).toMatchObject({ success: false, error: { code: 'STORAGE_UNAVAILABLE' } });
      expect(read.body.error.details).toMatch(/the statement took longer than the statement timeout \(SQLSTATE 57014\)/);
      expect(read.headers['retry-after']).toBe('1');

      // A create waits in a batch: cancelled once, it is not tried again alone (another timeout).
      const queries = vi.spyOn(pg.Client.prototype, 'query');
      const create = await app.request({ method: 'POST', url: '/api/messaging/sessions', body: { agentId, userId: USER } });
      expect(create.status).toBe(503);
      expect(create.body.error.details).toMatch(/SQLSTATE 57014/);
      const inserts = queries.mock.calls.filter(([query]) => /INSERT INTO sessions \(/.test(typeof query === 'string' ? query : (query as { text: string }).text));
      expect(inserts).toHaveLength(1);
      queries.mockRestore();

      await locker.query('ROLLBACK');
      const again = await app.request({ method: 'GET', url: sessionUrl });
      expect(again.status).toBe(200);
      expect(again.body.sessionId).toBe(created.body.sessionId);
    } finally {
      await locker.end().catch(() => undefined);
      await app.close();
      await database.drop();
    }
  });

  it('answers 503 when the database answers nothing at all, saying a write may have been applied; then serves again', async () => {
    const database = await createTestDatabase();
    const proxy = await freezingProxy(database.url);
    // One connection: the write below finds it, and the freeze meets its statements.
    const app = await startTestApp({ store: await openPostgresStore({ url: proxy.url, poolSize: 1, statementTimeoutMs: TIMEOUT_MS, connectTimeoutMs: 1000 }) });
    try {
      const agentId = randomUUID();
      expect((await app.request({ method: 'POST', url: '/api/agents', body: { characterJson: { id: agentId, name: 'Eliza' } } })).status).toBe(201);
      // Until the instance listens for notifications and knows there is no API key (a request
      // asks the database before), as it does a moment after it starts: then a read of the
      // agent, cached, sends no statement, and the write below is the only one the freeze meets.
      const queries = vi.spyOn(pg.Client.prototype, 'query');
      await until('the key check and the agent are answered without a statement', async () => {
        queries.mockClear();
        expect((await app.request({ method: 'GET', url: `/api/agents/${agentId}` })).status).toBe(200);
        return queries.mock.calls.length === 0;
      }, { everyMs: 20 });
      queries.mockRestore();
      expect(proxy.sockets).toHaveLength(4); // the pool's connection, and the one that listens

      proxy.freeze();
      // Without the driver's own limit, the write waited for the thaw (this test's own timeout).
      const write = await app.request({ method: 'POST', url: '/api/agents', body: { characterJson: { id: randomUUID(), name: 'Ada' } } });
      // Its connection dropped, the read needs a new one, which the frozen database does not accept.
      const read = await app.request({ method: 'GET', url: '/api/agents' });
      for (const answer of [write, read]) {
        expect(answer.status).toBe(503);
        expect(answer.body.error).toMatchObject({ code: 'STORAGE_UNAVAILABLE' });
      }
      expect(write.body.error.details).toMatch(/^the database did not answer, not even with its statement timeout .*; the write may have been applied: retry with the same Idempotency-Key, or read before retrying$/);
      expect(read.body.error.details).toMatch(/^the database did not accept a connection in time .*; nothing was changed, retry later$/);

      proxy.thaw();
      const again = await app.request({ method: 'GET', url: '/api/agents' });
      expect(again.status).toBe(200);
      expect(again.body.data.agents.map((agent: { id: string }) => agent.id)).toContain(agentId);
    } finally {
      proxy.thaw();
      await app.close();
      await proxy.close();
      await database.drop();
    }
  });
});
