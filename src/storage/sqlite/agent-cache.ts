// Agents read by every session create, cached with their parsed settings. Agents never
// change, they are only deleted: this process forgets an agent it deletes, and any commit
// by another connection on the file (external-commits.ts) empties the cache.
import type { AgentRecord } from '../store.js';
import type { ExternalCommits } from './external-commits.js';

/** Enough for every agent of a deployment; past it the cache starts over. */
const MAX_AGENTS = 10_000;

export interface AgentCache {
  /** The agent (shared: read it, do not change it), or undefined. */
  get(id: string): AgentRecord | undefined;
  forget(id: string): void;
}

export function cachedAgents(commits: ExternalCommits, read: (id: string) => AgentRecord | undefined): AgentCache {
  const agents = new Map<string, AgentRecord>();
  let filledAt = commits.generation();
  return {
    get(id) {
      const generation = commits.generation();
      if (generation !== filledAt) {
        agents.clear();
        filledAt = generation;
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
