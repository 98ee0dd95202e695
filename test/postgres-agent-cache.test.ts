// The agents a PostgreSQL instance keeps for session creates: kept only while deletes
// are heard, forgotten on a delete (and a read begun before it is not kept).
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { postgresAgentCache } from '../src/storage/postgres/agent-cache.js';
import { EVENTS_CHANNEL, openPostgresStore } from '../src/storage/postgres/postgres-store.js';
import type { AgentRecord } from '../src/storage/store.js';
import { T0 } from './helpers/fake-clock.js';
import { createTestDatabase } from './helpers/postgres-database.js';
import { until } from './helpers/until.js';

const agent = (id: string, createdAt = 1): AgentRecord => ({ id, name: 'Eliza', settings: {}, createdAt });

function reading(answer: AgentRecord | undefined) {
  const reads = { count: 0 };
  return { reads, read: async () => (reads.count++, answer) };
}

describe('the agent cache (PostgreSQL)', () => {
  it('reads every time while not listening', async () => {
    const cache = postgresAgentCache();
    const { reads, read } = reading(agent('a'));
    await cache.get('a', read);
    await cache.get('a', read);
    expect(reads.count).toBe(2);
    expect(cache.kept('a')).toBeUndefined();
  });

  it('keeps agents while listening; a delete or a lost connection forgets them; a missing agent is not kept', async () => {
    const cache = postgresAgentCache();
    cache.listening(true);
    const { reads, read } = reading(agent('a'));
    expect(await cache.get('a', read)).toEqual(agent('a'));
    expect(await cache.get('a', read)).toEqual(agent('a'));
    expect(reads.count).toBe(1);
    expect(cache.kept('a')).toEqual(agent('a'));

    cache.forget('a');
    expect(cache.kept('a')).toBeUndefined();
    await cache.get('a', read);
    expect(reads.count).toBe(2);
    cache.listening(false);
    expect(cache.kept('a')).toBeUndefined();

    cache.listening(true);
    const none = reading(undefined);
    expect(await cache.get('b', none.read)).toBeUndefined();
    expect(await cache.get('b', none.read)).toBeUndefined();
    expect(none.reads.count).toBe(2);
  });

  it('does not keep what a read begun before a delete or a listening change returns', async () => {
    const cache = postgresAgentCache();
    cache.listening(true);
    await cache.get('a', async () => (cache.forget('a'), agent('a')));
    expect(cache.kept('a')).toBeUndefined();
    await cache.get('a', async () => (cache.listening(false), cache.listening(true), agent('a')));
    expect(cache.kept('a')).toBeUndefined();
    await cache.get('a', async () => agent('a'));
    expect(cache.kept('a')).toEqual(agent('a'));
  });
});

describe('the store on PostgreSQL', () => {
  it('does not keep an agent read while its delete was running: a getAgent after the delete answered finds none', { timeout: 30_000 }, async () => {
    const database = await createTestDatabase();
    const store = await openPostgresStore({ url: database.url });
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    try {
      // Agents are kept only while notifications are heard: wait until they are.
      let heard = false;
      const unsubscribe = store.onEventsWritten(() => (heard = true));
      await until('the store hears notifications', async () => (await admin.query('SELECT pg_notify($1, $2)', [EVENTS_CHANNEL, '']), heard));
      unsubscribe();
      const stored = agent('3c90c3cc-0d44-4b50-8888-8dd25736052a', T0);
      await store.insertAgent(stored);
      // The delete waits for this lock on the agent's row; a read meanwhile finds the agent still stored.
      await admin.query('BEGIN');
      await admin.query('SELECT 1 FROM agents WHERE id = $1 FOR KEY SHARE', [stored.id]);
      const deleting = store.deleteAgent(stored.id, { force: true, now: T0, purgeCutoff: 0 });
      await until('the delete waits for the lock', async () => (await admin.query("SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted")).rows[0].n > 0);
      expect(await store.getAgent(stored.id)).toEqual(stored);
      await admin.query('COMMIT');
      expect((await deleting).kind).toBe('deleted');
      expect(await store.getAgent(stored.id)).toBeUndefined();
    } finally {
      await admin.end();
      await store.close();
      await database.drop();
    }
  });
});
