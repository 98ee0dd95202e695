// The typed client of the Sessions API: openapi-fetch over the `paths` generated from
// the spec, so a request or response the spec does not allow is a type error.
//   import { createSessionsClient } from 'sessions-api/client';
//   const api = createSessionsClient({ baseUrl: 'http://127.0.0.1:3000' });
//   const { data, error } = await api.GET('/api/messaging/sessions/{sessionId}', { params: { path: { sessionId } } });
import createClient, { type Client, type ClientOptions } from 'openapi-fetch';
import type { paths } from '../../generated/api.js';

export type { components, operations, paths } from '../../generated/api.js';

export interface SessionsClientOptions extends ClientOptions {
  /** The server, e.g. `http://127.0.0.1:3000`. */
  baseUrl: string;
  /** Sent as `X-API-KEY` on every request, for servers that require API keys. */
  apiKey?: string;
}

export type SessionsClient = Client<paths>;

export function createSessionsClient({ apiKey, ...options }: SessionsClientOptions): SessionsClient {
  const client = createClient<paths>(options);
  if (apiKey !== undefined) {
    client.use({
      onRequest({ request }) {
        request.headers.set('X-API-KEY', apiKey);
        return request;
      },
    });
  }
  return client;
}
