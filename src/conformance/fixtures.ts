// What the suite needs to exist on the server, made through the API itself: an agent,
// a session with a message, a user id. Everything made is deleted at the end.
import { randomUUID } from 'node:crypto';
import type { Answer } from './http.js';
import type { RequestValues } from './requests.js';

export type Call = (operationId: string, values: RequestValues) => Promise<Answer | undefined>;

export interface Fixture {
  agentId: string;
  userId: string;
  sessionId: string;
  webhookId: string;
}

export class Fixtures {
  private readonly agents = new Set<string>();
  private readonly webhooks = new Set<string>();

  constructor(private readonly call: Call) {}

  /** A new agent with a new session holding one message; ids are random if the server refuses. */
  async fresh(): Promise<Fixture> {
    const userId = randomUUID();
    const agent = await this.call('createAgent', { body: { characterJson: { name: 'Conformance agent' } } });
    const agentId = ((agent?.json as any)?.data?.character?.id as string | undefined) ?? randomUUID();
    this.agents.add(agentId);
    const session = await this.call('createSession', { body: { agentId, userId, metadata: { platform: 'conformance' } } });
    const sessionId = ((session?.json as any)?.sessionId as string | undefined) ?? randomUUID();
    await this.call('sendSessionMessage', { path: { sessionId }, body: { content: 'Hello from the conformance suite' } });
    // Bound to the agent, so that the server delivers nothing else to this unreachable URL.
    const webhook = await this.call('createWebhook', { body: { url: 'https://conformance.invalid/hook', agentId } });
    const webhookId = ((webhook?.json as any)?.id as string | undefined) ?? randomUUID();
    this.webhooks.add(webhookId);
    return { agentId, userId, sessionId, webhookId };
  }

  async cleanup(): Promise<void> {
    for (const agentId of this.agents) await this.call('deleteAgent', { path: { agentId }, query: { force: true } });
    this.agents.clear();
    for (const webhookId of this.webhooks) await this.call('deleteWebhook', { path: { webhookId } });
    this.webhooks.clear();
  }
}

/** Fields and parameters that must name things that exist, by name. */
export function bind(fixture: Fixture, name: string): string | undefined {
  switch (name) {
    case 'agentId':
      return fixture.agentId;
    case 'userId':
    case 'authorId':
      return fixture.userId;
    case 'sessionId':
      return fixture.sessionId;
    case 'webhookId':
      return fixture.webhookId;
    default:
      return undefined;
  }
}

/** A body or query with every field named in `bind` set to the fixture's id. */
export function bound<T>(value: T, fixture: Fixture): T {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return value;
  const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) };
  for (const key of Object.keys(copy)) copy[key] = bind(fixture, key) ?? copy[key];
  return copy as T;
}
