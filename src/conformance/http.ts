// One HTTP exchange with the server under test, bounded in time.

export interface Exchange {
  method: string;
  /** Path and query, as sent. */
  url: string;
  headers: Record<string, string>;
  /** The body exactly as sent (a string, or bytes for invalid UTF-8). */
  body?: string | Uint8Array;
}

export interface Answer {
  status: number;
  contentType: string;
  text: string;
  json?: unknown;
  /** Set when no answer came (timeout, reset). */
  error?: string;
}

export interface Connection {
  baseUrl: string;
  /** Sent with every request (`--header`, `--api-key`). */
  headers: Record<string, string>;
  timeoutMs: number;
}

/** Headers whose values are secrets: shown in curl lines as an environment variable. */
const SECRET_HEADERS = new Set(['x-api-key', 'authorization', 'cookie', 'proxy-authorization']);

/** The base URL's own path is kept: `http://host/v1` + `/pets` is `http://host/v1/pets`. */
const urlOf = (connection: Connection, exchange: Exchange) => `${connection.baseUrl.replace(/\/+$/, '')}${exchange.url}`;

/** The connection without its credentials (API key, Authorization, cookies). */
export function withoutCredentials(connection: Connection): Connection {
  return { ...connection, headers: Object.fromEntries(Object.entries(connection.headers).filter(([name]) => !SECRET_HEADERS.has(name.toLowerCase()))) };
}

export const hasCredentials = (connection: Connection) => Object.keys(connection.headers).some((name) => SECRET_HEADERS.has(name.toLowerCase()));

export async function send(connection: Connection, exchange: Exchange): Promise<Answer> {
  try {
    const response = await fetch(urlOf(connection, exchange), {
      method: exchange.method,
      headers: { ...exchange.headers, ...connection.headers },
      body: exchange.body as BodyInit | undefined,
      signal: AbortSignal.timeout(connection.timeoutMs),
    });
    const text = await response.text();
    let json: unknown;
    try {
      json = text === '' ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: response.status, contentType: response.headers.get('content-type') ?? '', text, json };
  } catch (error) {
    const name = (error as Error).name;
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? String(error);
    return { status: 0, contentType: '', text: '', error: name === 'TimeoutError' ? `no answer within ${connection.timeoutMs} ms` : `no answer: ${why}` };
  }
}

const quote = (text: string) => `'${text.replace(/'/g, "'\\''")}'`;

/** The exchange as a command to run again by hand (secret header values as `$CONFORMANCE_<NAME>`). */
export function asCurl(connection: Connection, exchange: Exchange): string {
  const url = urlOf(connection, exchange);
  const headers = Object.entries({ ...exchange.headers, ...connection.headers })
    .map(([name, value]) =>
      SECRET_HEADERS.has(name.toLowerCase()) ? ` -H "${name}: $CONFORMANCE_${name.toUpperCase().replace(/-/g, '_')}"` : ` -H ${quote(`${name}: ${value}`)}`,
    )
    .join('');
  let body = '';
  if (typeof exchange.body === 'string') {
    const shown = exchange.body.length > 300 ? `${exchange.body.slice(0, 300)}…(${exchange.body.length} chars)` : exchange.body;
    body = ` --data-raw ${quote(shown)}`;
  } else if (exchange.body) {
    body = ` --data-binary <${exchange.body.length} bytes>`;
  }
  return `curl -X ${exchange.method} ${quote(url)}${headers}${body}`;
}
