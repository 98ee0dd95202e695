import type { Clock } from '../domain/clock.js';
import type { AgentReplies } from '../events/agent-replies.js';
import type { PrivateAddresses } from '../events/private-addresses.js';
import type { EventStreams } from '../events/event-stream.js';
import type { TimeoutConfigInput } from '../domain/timeout-policy.js';
import type { Store } from '../storage/store.js';
import type { Sweeper } from '../sweeper.js';

/** What every operation handler works with. */
export interface HandlerDeps {
  store: Store;
  clock: Clock;
  /** The server's layer of the timeout configuration (from the environment). */
  sessionDefaults: TimeoutConfigInput;
  /** How long an expired session is kept before it is purged. */
  retentionMs: number;
  sweeper: Pick<Sweeper, 'lastError' | 'stop'>;
  /** The app's open event streams (made by buildApp). */
  streams: EventStreams;
  /** Messages waiting for their agent's reply (transport http or sse; made by buildApp). */
  replies: AgentReplies;
  /** How long such a message waits for the reply (AGENT_REPLY_TIMEOUT_SECONDS). */
  agentReplyTimeoutMs: number;
  /** `deny`: webhooks only to public addresses (WEBHOOK_PRIVATE_ADDRESSES). */
  webhookPrivateAddresses: PrivateAddresses;
  /** Webhooks one API key bound to agents may have (WEBHOOKS_PER_KEY_MAX). */
  webhooksPerKeyMax: number;
}

/** What buildApp is given: the settings the handlers read have their defaults (src/defaults.ts) when absent. */
export type AppDeps = Omit<HandlerDeps, 'streams' | 'replies' | 'agentReplyTimeoutMs' | 'webhookPrivateAddresses' | 'webhooksPerKeyMax'> &
  Partial<Pick<HandlerDeps, 'replies' | 'agentReplyTimeoutMs' | 'webhookPrivateAddresses' | 'webhooksPerKeyMax'>>;
