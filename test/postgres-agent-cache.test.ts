// The agents a PostgreSQL instance keeps for session creates: kept only while deletes
// are heard, forgotten on a delete (and a read begun before it is not kept).
import { describe, expect, it } from 'vitest';
import { postgresAgentCache } from '../src/storage/postgres/agent-cache.js';
import type { AgentRecord } from '../src/storage/store.js';

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
