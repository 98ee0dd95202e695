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

export async function send(baseUrl: string, exchange: Exchange, apiKey: string | undefined, timeoutMs: number): Promise<Answer> {
  const headers = { ...exchange.headers, ...(apiKey ? { 'x-api-key': apiKey } : {}) };
  try {
    const response = await fetch(new URL(exchange.url, baseUrl), {
      method: exchange.method,
      headers,
      body: exchange.body as BodyInit | undefined,
      signal: AbortSignal.timeout(timeoutMs),
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
    return { status: 0, contentType: '', text: '', error: name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : String(error) };
  }
}

/** The exchange as a command to run again by hand. */
export function asCurl(baseUrl: string, exchange: Exchange): string {
  const url = new URL(exchange.url, baseUrl).toString();
  const headers = Object.entries(exchange.headers).map(([k, v]) => ` -H '${k}: ${v}'`).join('');
  let body = '';
  if (typeof exchange.body === 'string') {
    const shown = exchange.body.length > 300 ? `${exchange.body.slice(0, 300)}…(${exchange.body.length} chars)` : exchange.body;
    body = ` --data-raw '${shown.replace(/'/g, "'\\''")}'`;
  } else if (exchange.body) {
    body = ` --data-binary <${exchange.body.length} bytes>`;
  }
  return `curl -X ${exchange.method} '${url}'${headers}${body}`;
}
