// Agents read by every session create, kept while this instance hears the notification
// that deleting an agent sends (migration 4's trigger). Agents never change, they are only
// deleted (and an id may be created again): a notified delete forgets the agent, losing
// the listening connection forgets them all, and a session insert checks in its own
// transaction that the agent it was computed from is still the stored one (its creation
// time), so a delete not yet heard makes the create answer 404 as a delete before it would.
import type { AgentRecord } from '../store.js';

/** Enough for every agent of a deployment; past it the cache starts over. */
const MAX_AGENTS = 10_000;

export interface PostgresAgentCache {
  /** The agent (shared: read it, do not change it), read with `read` when not kept. */
  get(id: string, read: (id: string) => Promise<AgentRecord | undefined>): Promise<AgentRecord | undefined>;
  /** The kept agent, if any. */
  kept(id: string): AgentRecord | undefined;
  /** The agent was deleted (here, or notified from anywhere). */
  forget(id: string): void;
  /** Notifications are heard (true) or may be missed (false). */
  listening(on: boolean): void;
}

export function postgresAgentCache(): PostgresAgentCache {
  const agents = new Map<string, AgentRecord>();
  let listening = false;
  /** Changes on every forget and listening change: a read begun before is not kept. */
  let epoch = 0;
  return {
    async get(id, read) {
      const kept = agents.get(id);
      if (kept) return kept;
      const readIn = epoch;
      const agent = await read(id);
      if (agent && listening && epoch === readIn) {
        if (agents.size >= MAX_AGENTS) agents.clear();
        agents.set(id, agent);
      }
      return agent;
    },
    kept: (id) => agents.get(id),
    forget(id) {
      agents.delete(id);
      epoch += 1;
    },
    listening(on) {
      listening = on;
      epoch += 1;
      agents.clear();
    },
  };
}
