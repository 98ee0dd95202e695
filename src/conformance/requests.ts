// Turning an operation plus values into an HTTP exchange.
import { samples } from './generate.js';
import type { Exchange } from './http.js';
import type { Operation, Parameter } from './spec-model.js';

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
    const parameter = operation.parameters.find((p) => p.in === 'query' && p.name === name);
    for (const [key, text] of queryPairs(name, value, parameter?.style ?? 'form', parameter?.explode ?? true)) query.append(key, text);
  }
  const search = query.toString();
  const body = values.rawBody ?? (values.body === undefined ? undefined : JSON.stringify(values.body));
  const cookie = requiredCookie(operation);
  const headers: Record<string, string> = { ...requiredHeaders(operation), ...(cookie && { cookie }), ...values.headers };
  if (body !== undefined) headers['content-type'] = values.contentType ?? 'application/json';
  return { method: operation.method, url: search ? `${path}?${search}` : path, headers, body };
}

/**
 * A query value as OpenAPI's `style` and `explode` write it: an array `a=1&a=2` (form,
 * exploded), `a=1,2` (form), `a=1 2` (spaceDelimited), `a=1|2` (pipeDelimited); an object
 * `k=v&k2=v2` (form, exploded), `a=k,v,k2,v2` (form; spaceDelimited and pipeDelimited with
 * their delimiter), `a[k]=v` (deepObject).
 */
function queryPairs(name: string, value: unknown, style: NonNullable<Parameter['style']>, explode: boolean): Array<[string, string]> {
  const text = (item: unknown) => (item !== null && typeof item === 'object' ? JSON.stringify(item) : String(item));
  const delimiter = style === 'spaceDelimited' ? ' ' : style === 'pipeDelimited' ? '|' : ',';
  if (Array.isArray(value)) {
    if (style === 'form' && explode) return value.map((item) => [name, text(item)]);
    return [[name, value.map(text).join(delimiter)]];
  }
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).filter(([, item]) => item !== undefined);
    if (style === 'deepObject') return entries.map(([key, item]) => [`${name}[${key}]`, text(item)]);
    if (explode) return entries.map(([key, item]) => [key, text(item)]);
    return [[name, entries.flatMap(([key, item]) => [key, text(item)]).join(delimiter)]];
  }
  return [[name, String(value)]];
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

const requiredCookies = new WeakMap<Operation, string>();

/** The operation's required cookie parameters, from their schemas, as a Cookie header: sent as its required headers are. */
function requiredCookie(operation: Operation): string {
  let cookie = requiredCookies.get(operation);
  if (cookie === undefined) {
    cookie = operation.parameters
      .filter((p) => p.in === 'cookie' && p.required)
      .map((p) => `${p.name}=${encodeURIComponent(String(samples(p.schema, 1, 0)[0] ?? ''))}`)
      .join('; ');
    requiredCookies.set(operation, cookie);
  }
  return cookie;
}
