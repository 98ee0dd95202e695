// A client that talks the way the elizaOS client (@elizaos/api-client 1.7.2,
// BaseApiClient) does: `Content-Type: application/json` and, with its `apiKey` option,
// `X-API-KEY` on every request (GET and DELETE included); the `{ success, data }`
// envelope unwrapped; a failure thrown with the envelope's code. The package itself
// is not installed: its one dependency, @elizaos/core, brings 118 packages (161 MB).
// Every response is checked against the spec on the way.
import { operationFor, responseViolations, specBackend } from './spec-validator.js';

export class ElizaStyleError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export function elizaStyleClient(config: { baseUrl: string; apiKey?: string }) {
  const defaultHeaders: Record<string, string> = { 'Content-Type': 'application/json' };
  if (config.apiKey) defaultHeaders['X-API-KEY'] = config.apiKey;

  async function request(method: string, path: string, body?: unknown): Promise<any> {
    const response = await fetch(`${config.baseUrl}${path}`, {
      method,
      headers: { ...defaultHeaders },
      body: body ? JSON.stringify(body) : undefined,
    });
    const json = await response.json();
    const api = await specBackend();
    const violations = responseViolations(api, operationFor(api, method, path), response.status, json);
    if (violations.length > 0) throw new Error(`${method} ${path}: ${violations.join('; ')}`);
    if (!response.ok) throw new ElizaStyleError(json.error?.code ?? 'HTTP_ERROR', json.error?.message ?? '', response.status);
    if (json && typeof json === 'object' && 'success' in json) return json.data;
    return json;
  }

  return {
    createAgent: (characterJson: object) => request('POST', '/api/agents', { characterJson }),
    listAgents: () => request('GET', '/api/agents'),
    checkHealth: () => request('GET', '/api/messaging/sessions/health'),
    createSession: (params: object) => request('POST', '/api/messaging/sessions', params),
    getSession: (sessionId: string) => request('GET', `/api/messaging/sessions/${sessionId}`),
    sendMessage: (sessionId: string, params: object) => request('POST', `/api/messaging/sessions/${sessionId}/messages`, params),
    /** As the elizaOS client's: sendMessage with `transport: 'http'`, answering `{ success, userMessage, agentResponse, sessionStatus }` once unwrapped. */
    sendMessageSync: (sessionId: string, params: object) => request('POST', `/api/messaging/sessions/${sessionId}/messages`, { ...params, transport: 'http' }),
    getMessages: (sessionId: string) => request('GET', `/api/messaging/sessions/${sessionId}/messages`),
    listSessions: () => request('GET', '/api/messaging/sessions'),
    deleteSession: (sessionId: string) => request('DELETE', `/api/messaging/sessions/${sessionId}`),
  };
}
