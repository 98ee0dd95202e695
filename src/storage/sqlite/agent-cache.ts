// Agents read by every session create, cached with their parsed settings. Agents never
// change, they are only deleted: this process forgets an agent it deletes, and any commit
// by another connection on the file (PRAGMA data_version moves) empties the cache.
import type Database from 'better-sqlite3';
import type { AgentRecord } from '../store.js';

/** Enough for every agent of a deployment; past it the cache starts over. */
const MAX_AGENTS = 10_000;

export interface AgentCache {
  /** The agent (shared: read it, do not change it), or undefined. */
  get(id: string): AgentRecord | undefined;
  forget(id: string): void;
}

export function cachedAgents(db: Database.Database, read: (id: string) => AgentRecord | undefined): AgentCache {
  const dataVersion = db.prepare<[], number>('PRAGMA data_version').pluck();
  const agents = new Map<string, AgentRecord>();
  let seenVersion = dataVersion.get();
  return {
    get(id) {
      const version = dataVersion.get();
      if (version !== seenVersion) {
        agents.clear();
        seenVersion = version;
      }
      const cached = agents.get(id);
      if (cached) return cached;
      const agent = read(id);
      if (agent) {
        if (agents.size >= MAX_AGENTS) agents.clear();
        agents.set(id, agent);
      }
      return agent;
    },
    forget(id) {
      agents.delete(id);
    },
  };
}
