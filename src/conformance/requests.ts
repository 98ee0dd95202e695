// Turning an operation plus values into an HTTP exchange.
import type { Exchange } from './http.js';
import type { Operation } from './spec-model.js';

export interface RequestValues {
  path?: Record<string, string>;
  query?: Record<string, unknown>;
  /** A JSON value to send; `undefined` sends no body. */
  body?: unknown;
  /** Sent exactly as given instead of `body` (malformed JSON, invalid UTF-8, …). */
  rawBody?: string | Uint8Array;
  contentType?: string;
  /** Request headers of the operation (`Last-Event-ID`). */
  headers?: Record<string, string>;
}

export function buildExchange(operation: Operation, values: RequestValues): Exchange {
  const path = operation.path.replace(/\{([^}]+)\}/g, (_match, name: string) => encodeURIComponent(values.path?.[name] ?? ''));
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(values.query ?? {})) {
    if (value !== undefined) query.set(name, String(value));
  }
  const search = query.toString();
  const body = values.rawBody ?? (values.body === undefined ? undefined : JSON.stringify(values.body));
  const headers: Record<string, string> = { ...values.headers };
  if (body !== undefined) headers['content-type'] = values.contentType ?? 'application/json';
  return { method: operation.method, url: search ? `${path}?${search}` : path, headers, body };
}
