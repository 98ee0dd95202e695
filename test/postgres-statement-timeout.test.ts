// DATABASE_STATEMENT_TIMEOUT_MS: a statement PostgreSQL cancels for running too long (here,
// waiting on a lock another connection holds) answers 503 STORAGE_UNAVAILABLE, naming the
// timeout, never a 500 or a hang; the next request, the lock gone, is served. And a
// database that answers nothing at all (frozen, out of reach), which enforces no timeout
// of its own: 503 soon after the statement timeout, not a wait as long as the freeze.
import { randomUUID } from 'node:crypto';
import { createServer, connect, type Socket } from 'node:net';
import pg from 'pg';
import { describe, expect, it, vi } from 'vitest';
import { NO_ANSWER_MARGIN_MS, openPostgresStore } from '../src/storage/postgres/postgres-store.js';
import { createTestDatabase } from './helpers/postgres-database.js';
import { startTestApp } from './helpers/test-app.js';

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
    const target = new URL(database.url);
    // A proxy that can stop passing bytes either way while keeping its connections open:
    // a database frozen (SIGSTOP, a paused VM) or a network partition without a reset.
    let frozen = false;
    const held: Array<() => void> = [];
    const sockets: Socket[] = [];
    const pass = (from: Socket, to: Socket) => from.on('data', (chunk) => (frozen ? held.push(() => to.write(chunk)) : to.write(chunk)));
    const proxy = createServer((client) => {
      const upstream = connect(Number(target.port), target.hostname);
      sockets.push(client, upstream);
      for (const socket of [client, upstream]) socket.on('error', () => undefined);
      pass(client, upstream);
      pass(upstream, client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const proxied = new URL(database.url);
    proxied.port = String((proxy.address() as { port: number }).port);
    const app = await startTestApp({ store: await openPostgresStore({ url: proxied.href, poolSize: 2, statementTimeoutMs: TIMEOUT_MS, connectTimeoutMs: 1000 }) });
    try {
      const agentId = randomUUID();
      expect((await app.request({ method: 'POST', url: '/api/agents', body: { characterJson: { id: agentId, name: 'Eliza' } } })).status).toBe(201);
      // Both connections of the pool open: the requests below find theirs, and the freeze meets their statements.
      const warm = await Promise.all([0, 1].map(() => app.request({ method: 'GET', url: '/api/agents' })));
      expect(warm.map((answer) => answer.status)).toEqual([200, 200]);
      expect(sockets).toHaveLength(6); // and the one that listens for notifications

      frozen = true;
      const started = performance.now();
      const [read, write] = await Promise.all([
        app.request({ method: 'GET', url: `/api/agents/${agentId}` }),
        app.request({ method: 'POST', url: '/api/agents', body: { characterJson: { id: randomUUID(), name: 'Ada' } } }),
      ]);
      // Not a measure of speed: without the driver's own limit, these waited for the thaw.
      expect(performance.now() - started).toBeLessThan(TIMEOUT_MS + NO_ANSWER_MARGIN_MS + 2000);
      for (const answer of [read, write]) {
        expect(answer.status).toBe(503);
        expect(answer.body.error).toMatchObject({ code: 'STORAGE_UNAVAILABLE' });
        expect(answer.body.error.details).toMatch(/the database did not answer/);
      }
      expect(read.body.error.details).toMatch(/nothing was changed, retry later$/);
      expect(write.body.error.details).toMatch(/the write may have been applied: retry with the same Idempotency-Key, or read before retrying$/);

      frozen = false;
      for (const flush of held.splice(0)) flush();
      const again = await app.request({ method: 'GET', url: `/api/agents/${agentId}` });
      expect(again.status).toBe(200);
    } finally {
      frozen = false;
      await app.close();
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => proxy.close(resolve));
      await database.drop();
    }
  });
});
