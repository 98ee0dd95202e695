// What the server needs from persistence. Asynchronous so that a networked backend
// (PostgreSQL, for several server instances sharing one store) can implement it too.
import type { components } from '../../generated/api.js';
import type { SessionTiming } from '../domain/timeout-policy.js';

type Schemas = components['schemas'];

/** Times are epoch milliseconds. */
export interface AgentRecord {
  id: string;
  name: string;
  bio?: string;
  settings: Schemas['AgentSettings'];
  createdAt: number;
}

export interface SessionRecord extends SessionTiming {
  id: string;
  agentId: string;
  userId: string;
  metadata: Schemas['SessionMetadata'];
  status: 'active' | 'expired';
}

export type DeleteAgentOutcome =
  | { kind: 'deleted'; deletedSessions: number }
  | { kind: 'not_found' }
  | { kind: 'has_active_sessions'; activeSessions: number };

export interface Store {
  /** False when an agent with that id exists already. */
  insertAgent(agent: AgentRecord): Promise<boolean>;
  getAgent(id: string): Promise<AgentRecord | undefined>;
  listAgents(): Promise<AgentRecord[]>;
  /** Refuses while the agent has sessions unexpired at `now`, unless `force`. */
  deleteAgent(id: string, options: { force: boolean; now: number }): Promise<DeleteAgentOutcome>;

  /** False when the session's agent does not exist (any more). */
  insertSession(session: SessionRecord): Promise<boolean>;
  getSession(id: string): Promise<SessionRecord | undefined>;

  /** Throws when the store cannot be read. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
