// The PostgreSQL store's writes meeting another connection's lock (another instance's
// transaction under way): a wait cancelled by the statement timeout fails as a storage
// fault (503), never a 500, and no other write goes down with it wrongly; a webhook deleted
// while an attempt is recorded is waited for, not met as a foreign-key error; the due
// announcements pass by an agent being deleted.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgresStore } from '../src/storage/postgres/postgres-store.js';
import { StorageFault, type Store } from '../src/storage/store.js';
import { createTestDatabase, type TestDatabase } from './helpers/postgres-database.js';
import { MINUTE, T0 } from './helpers/fake-clock.js';
import { announce } from '../src/events/due-events.js';
import { agentRecord, idempotencyRecord, sessionRecord } from './store/records.js';

const webhookRecord = (id: string) => ({ id, url: 'http://127.0.0.1:9/hook', secret: 'whsec_c2VjcmV0', createdAt: T0, cursor: '0', attempts: 0, nextAttemptAt: T0 });

/** Until `admin` sees `count` backends of the database waiting on a lock. */
async function untilWaitingOnLock(admin: pg.Client, count = 1): Promise<void> {
  for (let i = 0; i < 200; i += 1) {
    const { rows } = await admin.query("SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'");
    if (rows.length >= count) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error('no backend waits on a lock');
}

describe('PostgreSQL writes meeting another connection\'s lock', { timeout: 30_000 }, () => {
  let database: TestDatabase;
  let store: Store;
  let admin: pg.Client;
  let blocker: pg.Client;
  beforeAll(async () => {
    database = await createTestDatabase();
    // A short statement timeout: a statement waiting on a lock is cancelled quickly.
    store = await openPostgresStore({ url: database.url, poolSize: 4, statementTimeoutMs: 500 });
    admin = new pg.Client({ connectionString: database.url });
    blocker = new pg.Client({ connectionString: database.url });
    await admin.connect();
    await blocker.connect();
  });
  afterAll(async () => {
    await blocker?.end();
    await admin?.end();
    await store?.close();
    await database?.drop();
  });

  /** Another request (another instance) writing under the record's key: its record inserted, not committed (blocker rolls it back). */
  async function writeUnderKeyElsewhere(record: ReturnType<typeof idempotencyRecord>): Promise<void> {
    await blocker.query('BEGIN');
    await blocker.query(
      'INSERT INTO idempotency_records (scope, key, fingerprint, status, body, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)',
      [record.scope, record.key, 'other', 201, '{}', record.createdAt, record.expiresAt],
    );
  }

  it('a keyed write to a session cancelled by the statement timeout fails its batch as a storage fault, changing nothing', async () => {
    const agent = agentRecord();
    const session = sessionRecord(agent.id);
    expect(await store.insertAgent(agent)).toBe(true);
    expect(await store.insertSession(session)).toBe(true);
    // Another request (another instance) is writing under key `held`: its record is not committed yet.
    await writeUnderKeyElsewhere(idempotencyRecord('held'));
    try {
      const renew = (key: string) =>
        store.modifySession(session.id, (current) => ({ ...current!, metadata: { ...current!.metadata, by: key } }), {
          idempotency: () => idempotencyRecord(key),
        });
      // Two requests to one session in one turn of the event loop: one transaction (session-writes.ts).
      const [free, blocked] = await Promise.allSettled([renew('free'), renew('held')]);
      // The blocked one waited past the statement timeout, aborting the transaction: both fail
      // as a storage fault (503, retry), as README promises, not as a 500 at the COMMIT (25P02).
      expect(blocked.status).toBe('rejected');
      expect((blocked as PromiseRejectedResult).reason).toBeInstanceOf(StorageFault);
      expect((blocked as PromiseRejectedResult).reason.message).toMatch(/statement timeout/);
      expect(free.status).toBe('rejected');
      expect((free as PromiseRejectedResult).reason).toBeInstanceOf(StorageFault);
      expect((await store.getSession(session.id))?.metadata).toEqual(session.metadata);
    } finally {
      await blocker.query('ROLLBACK');
    }
  });

  it('a revocation waits for a webhook insert of its key under way, then disables that webhook too', async () => {
    await store.insertApiKey({ id: 'key-lw', name: 'lock-waits', keyHash: 'h-lw', admin: false, agentIds: [], createdAt: T0 });
    const id = `wh-${Math.random().toString(36).slice(2)}`;
    // Another request (instance) writing under the Idempotency-Key the insert carries: the insert waits for it before its COMMIT.
    const record = idempotencyRecord('lock-waits');
    await writeUnderKeyElsewhere(record);
    try {
      const inserting = store.insertWebhook({ ...webhookRecord(id), createdByKey: 'key-lw' }, { idempotency: () => record });
      await untilWaitingOnLock(admin);
      // The revocation waits for the key's row, which the insert holds to its COMMIT.
      const revoking = store.revokeApiKey('lock-waits', T0 + 1);
      await untilWaitingOnLock(admin, 2);
      await blocker.query('ROLLBACK');
      expect(await inserting).toBe('inserted');
      expect(await revoking).toMatchObject({ revokedAt: T0 + 1 });
      expect((await store.getWebhook(id))?.disabledAt).toBe(T0 + 1);
    } finally {
      await blocker.query('ROLLBACK').catch(() => undefined);
    }
  });

  it("counts each of a key's webhook creates made at once after the others (held together by the key's row, then let go at once)", async () => {
    await store.insertApiKey({ id: 'key-cap', name: 'capped', keyHash: 'h-cap', admin: false, agentIds: [], createdAt: T0 });
    await blocker.query('BEGIN');
    await blocker.query("SELECT 1 FROM api_keys WHERE id = 'key-cap' FOR UPDATE");
    let inserting: Array<Promise<unknown>> = [];
    try {
      inserting = Array.from({ length: 4 }, (_, i) => store.insertWebhook({ ...webhookRecord(`wh-cap-${i}`), createdByKey: 'key-cap' }, undefined, 2));
      await untilWaitingOnLock(admin, 4);
    } finally {
      await blocker.query('ROLLBACK');
    }
    expect((await Promise.all(inserting)).sort()).toEqual(['inserted', 'inserted', 'keyFull', 'keyFull']);
    expect((await store.listWebhooks()).filter((webhook) => webhook.createdByKey === 'key-cap')).toHaveLength(2);
  });

  it('recordDelivery by a non-holder of a webhook deleted meanwhile answers false, recording nothing (no foreign-key error)', async () => {
    const id = `wh-${Math.random().toString(36).slice(2)}`;
    await store.insertWebhook(webhookRecord(id));
    expect(await store.claimWebhook(id, 'holder-a', T0, T0 + MINUTE)).toBeDefined();
    // The webhook is being deleted (DELETE /webhooks/{id} on another instance), not yet committed.
    await blocker.query('BEGIN');
    await blocker.query('DELETE FROM webhooks WHERE id = $1', [id]);
    try {
      // Holder b's claim ran out under a slow attempt (a holds it now): it records its attempt.
      const recording = store.recordDelivery(
        { webhookId: id, eventId: '1', attempt: 1, attemptedAt: T0 + 1, statusCode: 200 },
        { id, cursor: '1', attempts: 0, nextAttemptAt: T0 + 1 },
        'holder-b',
      );
      const settled = recording.then(
        (value) => ({ value }),
        (error: unknown) => ({ error }),
      );
      await untilWaitingOnLock(admin);
      await blocker.query('COMMIT');
      // Store contract: "False when the state was not stored: the webhook deleted meanwhile (then nothing is recorded)".
      expect(await settled).toEqual({ value: false });
    } finally {
      await blocker.query('ROLLBACK').catch(() => undefined);
    }
  });

  it('announceDue passes by the sessions of an agent being deleted, with no deadlock, and announces the others', async () => {
    const [going, staying] = [agentRecord(), agentRecord()];
    await store.insertAgent(going);
    await store.insertAgent(staying);
    // Warning and expiry both due: announceDue updates each session's row twice (the
    // second update re-checks the agent's foreign key).
    const doomed = sessionRecord(going.id);
    const other = sessionRecord(staying.id);
    await store.insertSession(doomed);
    await store.insertSession(other);
    // A forced deleteAgent on another instance: the agent's row locked, then its sessions deleted.
    await blocker.query('BEGIN');
    await blocker.query('SELECT 1 FROM agents WHERE id = $1 FOR UPDATE', [going.id]);
    try {
      const announcing = store.announceDue(T0 + 40 * MINUTE, 10, announce).then(
        (value) => ({ value }),
        (error: unknown) => ({ error }),
      );
      // The deletion of its sessions goes on once the announcer is done or waits on a lock
      // (before: on the agent's, to re-check the foreign key of a row it had updated).
      await Promise.race([announcing, untilWaitingOnLock(admin).catch(() => undefined)]);
      const deleting = blocker.query('DELETE FROM sessions WHERE agent_id = $1', [going.id]).then(
        (result) => ({ deleted: result.rowCount }),
        (error: unknown) => ({ error }),
      );
      // No error (before: a deadlock, cut short by the statement timeout as a storage fault).
      expect(await announcing).toEqual({ value: expect.any(Number) });
      expect(await deleting).toEqual({ deleted: 1 });
      await blocker.query('DELETE FROM agents WHERE id = $1', [going.id]);
      await blocker.query('COMMIT');
    } finally {
      await blocker.query('ROLLBACK').catch(() => undefined);
    }
    // Both announcements of the other agent's session; none of the doomed one's.
    const announced = async (session: { id: string }) => (await store.listEvents({ sessionId: session.id, limit: 10 })).map((e) => e.type);
    expect(await announced(other)).toEqual(['session.warning', 'session.expired']);
    expect(await announced(doomed)).toEqual([]);
  });
});
