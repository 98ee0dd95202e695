// The typed client of the Sessions API: openapi-fetch over the `paths` generated from
// the spec, so a request or response the spec does not allow is a type error.
//   import { createSessionsClient } from 'sessions-api/client';
//   const api = createSessionsClient({ baseUrl: 'http://127.0.0.1:3000' });
//   const { data, error } = await api.GET('/api/messaging/sessions/{sessionId}', { params: { path: { sessionId } } });
import createClient, { type Client, type ClientOptions, type Middleware } from 'openapi-fetch';
import type { paths } from '../../generated/api.js';

export type { components, operations, paths } from '../../generated/api.js';

export interface SessionsClientOptions extends ClientOptions {
  /** The server, e.g. `http://127.0.0.1:3000`. */
  baseUrl: string;
  /** Sent as `X-API-KEY` on every request that does not carry its own, for servers that require API keys. An empty string sends none (as the elizaOS client does), so an unset `process.env.KEY ?? ''` is no key rather than an empty one. */
  apiKey?: string;
}

export type SessionsClient = Client<paths>;

/**
 * openapi-fetch reads every answer as JSON unless told otherwise (`parseAs`). A text answer
 * (`/openapi.yaml`, `/metrics`) is handed over as the string the spec types it as; an
 * event stream never ends, so reading it whole would wait for ever: the call throws at
 * once, saying to ask for the stream.
 */
const nonJsonAnswers: Middleware = {
  async onResponse({ response, options, schemaPath }) {
    const type = response.headers.get('content-type') ?? '';
    if (options.parseAs !== 'json' || !response.ok || /json/i.test(type) || response.body === null) return undefined;
    if (/^text\/event-stream/i.test(type)) {
      await response.body.cancel();
      throw new TypeError(`${schemaPath} answers a stream of Server-Sent Events, which does not end: call it with { parseAs: 'stream' } and read data as the events arrive`);
    }
    const headers = new Headers(response.headers);
    headers.set('content-type', 'application/json');
    headers.delete('content-length');
    return new Response(JSON.stringify(await response.text()), { status: response.status, statusText: response.statusText, headers });
  },
};

export function createSessionsClient({ apiKey, ...options }: SessionsClientOptions): SessionsClient {
  const client = createClient<paths>(options);
  client.use(nonJsonAnswers);
  if (apiKey !== undefined && apiKey !== '') {
    client.use({
      onRequest({ request }) {
        // A request given its own (an agent-bound key for one call, say) keeps it.
        if (!request.headers.has('X-API-KEY')) request.headers.set('X-API-KEY', apiKey);
        return request;
      },
    });
  }
  return client;
}
