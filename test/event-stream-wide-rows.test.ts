// Replays past log rows of over 1 M characters that hold none of the stream's events (R50): a
// read that found nothing said it was cut short (EventQuery.maxChars), and the replay then
// read the same rows in a loop, for ever.
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { USER_ID, createSession, registerAgent } from './helpers/fixtures.js';
import { openStream, type SseClient } from './helpers/sse-client.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';

let t: TestApp;
let base: string;
let agentId: string;
const streams: SseClient[] = [];
beforeEach(async () => {
  t = await startTestApp();
  base = await t.listen();
  agentId = await registerAgent(t);
});
afterEach(async () => {
  for (const s of streams.splice(0)) s.close();
  await t.close();
});

const wideEvents = (sessionId: string, count: number, mention = '') =>
  t.store.modifySession(sessionId, (s) => s!, {
    events: (s) => Array.from({ length: count }, () => ({ type: 'message.created' as const, occurredAt: 0, agentId: s.agentId, sessionId: s.id, userId: s.userId, data: { content: 'hi', id: randomUUID(), authorId: USER_ID, isAgent: false, createdAt: new Date(0).toISOString(), attachments: [], metadata: { wide: 'x'.repeat(100_000), about: mention } } })),
  });

describe('a filtered stream past 1 M characters of others\' events that mention its session', () => {
  it('store: an empty filtered page is not cut short', async () => {
    const quiet = await createSession(t, { agentId, timeoutConfig: { timeoutMinutes: 30 } });
    const busy = await createSession(t, { agentId, timeoutConfig: { timeoutMinutes: 30 } });
    for (let i = 0; i < 15; i += 1) await wideEvents(busy.sessionId, 1, quiet.sessionId);
    const page = await t.store.listEvents({ sessionId: quiet.sessionId, after: '0', limit: 500, maxChars: 1024 * 1024 });
    const after = page.at(-1)!.id;
    const rest = await t.store.listEvents({ sessionId: quiet.sessionId, after, limit: 500, maxChars: 1024 * 1024 });
    expect({ events: rest.length, cutShort: rest.cutShort }).toEqual({ events: 0, cutShort: undefined });
  });

  it('stream: the replay ends (reads the log a few times, not in a loop)', async () => {
    const quiet = await createSession(t, { agentId, timeoutConfig: { timeoutMinutes: 30 } });
    const busy = await createSession(t, { agentId, timeoutConfig: { timeoutMinutes: 30 } });
    for (let i = 0; i < 15; i += 1) await wideEvents(busy.sessionId, 1, quiet.sessionId);
    const listEvents = t.store.listEvents;
    let reads = 0;
    t.store.listEvents = async (query) => {
      if (query.sessionId === quiet.sessionId) reads += 1;
      return listEvents.call(t.store, query);
    };
    try {
      const client = await openStream(`${base}/api/messaging/sessions/${quiet.sessionId}/events`);
      streams.push(client);
      await client.waitFor(1);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(reads).toBeLessThan(5);
    } finally {
      t.store.listEvents = listEvents;
    }
  });
});

describe('a stream resuming from the newest event, which ends a row of over 1 M characters', () => {
  it('store: nothing after the newest event, and not cut short', async () => {
    const { sessionId } = await createSession(t, { agentId, timeoutConfig: { timeoutMinutes: 30 } });
    await wideEvents(sessionId, 12); // one transaction: one row of ~1.2 M characters
    const newest = (await t.store.lastEventId())!;
    const rest = await t.store.listEvents({ sessionId, after: newest, limit: 500, maxChars: 1024 * 1024 });
    expect({ events: rest.length, cutShort: rest.cutShort }).toEqual({ events: 0, cutShort: undefined });
  });

  it('stream: Last-Event-ID = the newest event reads the log a few times, not in a loop', async () => {
    const { sessionId } = await createSession(t, { agentId, timeoutConfig: { timeoutMinutes: 30 } });
    await wideEvents(sessionId, 12);
    const newest = (await t.store.lastEventId())!;
    const listEvents = t.store.listEvents;
    let reads = 0;
    t.store.listEvents = async (query) => {
      if (query.sessionId === sessionId) reads += 1;
      return listEvents.call(t.store, query);
    };
    try {
      const client = await openStream(`${base}/api/messaging/sessions/${sessionId}/events`, { 'last-event-id': newest });
      streams.push(client);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(reads).toBeLessThan(5);
    } finally {
      t.store.listEvents = listEvents;
    }
  });
});
