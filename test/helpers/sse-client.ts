// A Server-Sent Events client for tests: parses frames, checks each event against the
// spec's Event schema (and the frame's id and event lines against it), and collects them.
import { Agent, fetch } from 'undici';
import { expect } from 'vitest';
import { specSchemaValidator } from '../../src/spec.js';

export interface StreamedEvent {
  id: string;
  type: string;
  occurredAt: string;
  agentId: string;
  sessionId?: string;
  userId?: string;
  data: any;
}

export interface SseClient {
  events: StreamedEvent[];
  comments: string[];
  status: number;
  contentType: string;
  headers: Headers;
  /** Resolves once `count` events have arrived (rejects after `timeoutMs`). */
  waitFor(count: number, timeoutMs?: number): Promise<StreamedEvent[]>;
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
  close(): void;
}

const isEvent = specSchemaValidator('Event');

/** A GET, unless `body` is given: then a POST of it as JSON (sendSessionMessage with transport sse). */
export async function openStream(url: string, headers: Record<string, string> = {}, body?: unknown): Promise<SseClient> {
  const controller = new AbortController();
  // Its own connection, closed with the stream: in a shared pool a stream's socket could
  // stay open after the abort, and closing the server waited for it (4 s).
  const connection = new Agent({ connections: 1 });
  const post = body === undefined ? {} : { method: 'POST', body: JSON.stringify(body) };
  const json: Record<string, string> = body === undefined ? {} : { 'content-type': 'application/json' };
  const response = await fetch(url, { ...post, headers: { accept: 'text/event-stream', ...json, ...headers }, signal: controller.signal, dispatcher: connection });
  const client: SseClient = {
    events: [],
    comments: [],
    status: response.status,
    contentType: response.headers.get('content-type') ?? '',
    headers: response.headers,
    waitFor: async () => [],
    ended: Promise.resolve(),
    close: () => {
      controller.abort();
      void connection.destroy();
    },
  };
  const waiters: Array<() => void> = [];
  const wake = () => waiters.splice(0).forEach((waiter) => waiter());

  function parse(block: string): void {
    const fields: Record<string, string> = {};
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) client.comments.push(line.slice(1).trim());
      else if (line !== '') {
        const colon = line.indexOf(':');
        fields[line.slice(0, colon)] = line.slice(colon + 1).replace(/^ /, '');
      }
    }
    if (fields.data === undefined) return;
    const event = JSON.parse(fields.data) as StreamedEvent;
    expect(isEvent(event), JSON.stringify(isEvent.errors)).toBe(true);
    expect(fields.id).toBe(event.id);
    expect(fields.event).toBe(event.type);
    client.events.push(event);
  }

  client.ended = (async () => {
    if (!response.body) return;
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          parse(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
        wake();
      }
    } catch (error) {
      if ((error as Error).name !== 'AbortError') throw error;
    } finally {
      wake();
    }
  })();
  let done = false;
  void client.ended.finally(() => (done = true));

  client.waitFor = async (count, timeoutMs = 10_000) => {
    const deadline = Date.now() + timeoutMs;
    while (client.events.length < count) {
      if (done) throw new Error(`stream ended after ${client.events.length} of ${count} events`);
      if (Date.now() > deadline) throw new Error(`only ${client.events.length} of ${count} events within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 200);
      });
    }
    return client.events.slice(0, count);
  };
  return client;
}
