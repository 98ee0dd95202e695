// Turning an operation plus values into an HTTP exchange.
import { samples } from './generate.js';
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
    if (value === undefined) continue;
    const exploded = Array.isArray(value) && (operation.parameters.find((p) => p.in === 'query' && p.name === name)?.explode ?? true);
    if (exploded) for (const item of value) query.append(name, String(item));
    else query.set(name, String(value));
  }
  const search = query.toString();
  const body = values.rawBody ?? (values.body === undefined ? undefined : JSON.stringify(values.body));
  const headers: Record<string, string> = { ...requiredHeaders(operation), ...values.headers };
  if (body !== undefined) headers['content-type'] = values.contentType ?? 'application/json';
  return { method: operation.method, url: search ? `${path}?${search}` : path, headers, body };
}

/** A generated value as a header can carry it (visible ASCII), else a stand-in. */
export const asHeaderValue = (value: string) => (/^[\x21-\x7e][\x20-\x7e]*$/.test(value) ? value : 'conformance');

const requiredHeadersOf = new WeakMap<Operation, Record<string, string>>();

/**
 * A value for each header parameter the operation requires, from its schema: sent with
 * every request the suite builds that does not carry its own (fixtures, flows, cleanup).
 * Else a server that requires one refused them, and what the suite made stayed behind.
 */
function requiredHeaders(operation: Operation): Record<string, string> {
  let headers = requiredHeadersOf.get(operation);
  if (!headers) {
    headers = {};
    for (const parameter of operation.parameters.filter((p) => p.in === 'header' && p.required)) {
      headers[parameter.name] = asHeaderValue(String(samples(parameter.schema, 1, 0)[0] ?? ''));
    }
    requiredHeadersOf.set(operation, headers);
  }
  return headers;
}
