// A session whose expiry has come but is not announced yet (the pump runs up to 250 ms
// after the moment; on PostgreSQL it may have passed the session by, its row or agent held
// by another instance), then ended or deleted with its agent: its due events are recorded
// before session.ended, once, each dated its moment, as the pump would have recorded them.
import { afterEach, describe, expect, it } from 'vitest';
import { openPostgresStore } from '../src/storage/postgres/postgres-store.js';
import type { Store } from '../src/storage/store.js';
import { createTestDatabase, type TestDatabase } from './helpers/postgres-database.js';
import { createSession, registerAgent } from './helpers/fixtures.js';
import { MINUTE } from './helpers/fake-clock.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';

describe('an expiry due but not yet announced, then the session ends', { timeout: 30_000 }, () => {
  let t: TestApp | undefined;
  let database: TestDatabase | undefined;
  let pgStore: Store | undefined;
  afterEach(async () => {
    await t?.close();
    // t.close() closes the store it was given.
    await database?.drop();
    [t, database, pgStore] = [undefined, undefined, undefined];
  });

  /** An app on `backend` with an agent and a session of it. */
  async function appWithSession(backend: 'sqlite' | 'postgres') {
    if (backend === 'postgres') {
      database = await createTestDatabase();
      pgStore = await openPostgresStore({ url: database.url, poolSize: 2 });
    }
    t = await startTestApp(pgStore ? { store: pgStore } : {});
    const agentId = await registerAgent(t);
    const sessionId = (await createSession(t, { agentId })).sessionId as string;
    return { agentId, sessionId, session: (await t.store.getSession(sessionId))! };
  }

  it('sqlite: DELETE the session at the very millisecond its warning falls due: session.warning is recorded, before session.ended', async () => {
    const { sessionId, session } = await appWithSession('sqlite');
    t!.clock.set(session.warnsAt); // due now; the pump has not run
    expect((await t!.request({ method: 'DELETE', url: `/api/messaging/sessions/${sessionId}` })).status).toBe(200);
    const events = await t!.store.listEvents({ sessionId, limit: 10 });
    expect(events.map((e) => e.type)).toEqual(['session.created', 'session.warning', 'session.ended']);
    expect(events.map((e) => e.occurredAt)).toEqual([session.createdAt, session.warnsAt, session.warnsAt]);
  });

  it('sqlite: a renewal after the warning fell due, before the pump ran: that deadline\'s session.warning is recorded first, dated its moment', async () => {
    const { sessionId, session } = await appWithSession('sqlite');
    t!.clock.set(session.warnsAt + 1);
    const renewed = await t!.request({ method: 'POST', url: `/api/messaging/sessions/${sessionId}/renew` });
    expect(renewed.status).toBe(200);
    const events = await t!.store.listEvents({ sessionId, limit: 10 });
    expect(events.map((e) => e.type)).toEqual(['session.created', 'session.warning', 'session.renewed']);
    expect(events.map((e) => e.occurredAt)).toEqual([session.createdAt, session.warnsAt, session.warnsAt + 1]);
    expect((events[1]!.data as { expiresAt: string }).expiresAt).toBe(new Date(session.expiresAt).toISOString());
  });

  for (const backend of ['sqlite', 'postgres'] as const) {
    it(`${backend}: DELETE the session after its expiry came, before the pump ran: session.expired is recorded, before session.ended`, async () => {
      const { sessionId, session } = await appWithSession(backend);
      t!.clock.set(session.expiresAt + 1); // expired; the pump has not run yet
      expect((await t!.request({ method: 'DELETE', url: `/api/messaging/sessions/${sessionId}` })).status).toBe(200);
      const events = await t!.store.listEvents({ sessionId, limit: 10 });
      expect(events.map((e) => e.type)).toEqual(['session.created', 'session.warning', 'session.expired', 'session.ended']);
      expect(events.map((e) => e.occurredAt)).toEqual([session.createdAt, session.warnsAt, session.expiresAt, session.expiresAt + 1]);
    });

    it(`${backend}: DELETE the agent (force=false: nothing active) after its session's expiry came, before the pump ran: session.expired is recorded, before session.ended`, async () => {
      const { agentId, sessionId, session } = await appWithSession(backend);
      t!.clock.set(session.expiresAt + MINUTE);
      const deleted = await t!.request({ method: 'DELETE', url: `/api/agents/${agentId}?force=false` });
      expect(deleted.status).toBe(200);
      const types = (await t!.store.listEvents({ sessionId, limit: 10 })).map((e) => e.type);
      expect(types).toEqual(['session.created', 'session.warning', 'session.expired', 'session.ended']);
    });
  }
});
