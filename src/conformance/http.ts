// One HTTP exchange with the server under test, bounded in time.
import { Agent as HttpAgent, type ClientRequest, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

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
  /** Its headers by lower-case name; absent for a body judged alone (the headers are then not checked). */
  headers?: Record<string, string>;
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

/**
 * The request's headers, then the connection's (`--header`, `--api-key`) in place of any of
 * the same name in another case: both sent, a server reads them as one value of the two.
 * Cookies are the exception: a `--header Cookie` (a session) joins the request's own (the
 * operation's required cookie parameters) in one header, as a browser sends them.
 */
export function headersOf(connection: Connection, exchange: Exchange, defaults: Record<string, string> = {}): Record<string, string> {
  const headers: Record<string, string> = { ...defaults, ...exchange.headers };
  const replaced = new Set(Object.keys(connection.headers).map((name) => name.toLowerCase()));
  const cookies: string[] = [];
  for (const [name, value] of Object.entries(headers)) {
    if (!replaced.has(name.toLowerCase())) continue;
    if (name.toLowerCase() === 'cookie') cookies.push(value);
    delete headers[name];
  }
  const sent = { ...headers, ...connection.headers };
  const cookieName = Object.keys(connection.headers).find((name) => name.toLowerCase() === 'cookie');
  if (cookieName !== undefined && cookies.length > 0) sent[cookieName] = [connection.headers[cookieName], ...cookies].join('; ');
  return sent;
}

/** Connections kept open between requests, as fetch keeps them. */
const agents = { 'http:': new HttpAgent({ keepAlive: true }), 'https:': new HttpsAgent({ keepAlive: true }) };

/**
 * The request's headers as fetch would send them (the suite's verdicts were made with
 * fetch): `accept: *\/*` unless given, a string body without a type as
 * `text/plain;charset=UTF-8`, and its length. No `accept-encoding`: answers come
 * uncompressed, read as sent.
 */
function requestHeaders(connection: Connection, exchange: Exchange): Record<string, string> {
  const headers = headersOf(connection, exchange);
  const has = (name: string) => Object.keys(headers).some((key) => key.toLowerCase() === name);
  if (!has('accept')) headers.accept = '*/*';
  if (exchange.body !== undefined) {
    if (typeof exchange.body === 'string' && !has('content-type')) headers['content-type'] = 'text/plain;charset=UTF-8';
    headers['content-length'] = String(typeof exchange.body === 'string' ? Buffer.byteLength(exchange.body) : exchange.body.byteLength);
  }
  return headers;
}

/** One exchange over node:http (fetch cost twice its CPU: a run is mostly its requests). */
export function send(connection: Connection, exchange: Exchange): Promise<Answer> {
  return new Promise<Answer>((resolve) => {
    const failed = (why: string) => resolve({ status: 0, contentType: '', text: '', error: why });
    let url: URL;
    try {
      url = new URL(urlOf(connection, exchange));
    } catch (error) {
      return failed(`no answer: ${(error as Error).message}`);
    }
    const client = url.protocol === 'https:' ? httpsRequest : url.protocol === 'http:' ? httpRequest : undefined;
    if (!client) return failed(`no answer: ${url.protocol} is no HTTP scheme`);
    let timedOut = false;
    let request: ClientRequest;
    try {
      request = client(url, { method: exchange.method, headers: requestHeaders(connection, exchange), agent: agents[url.protocol as 'http:' | 'https:'] }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        // The body broke off (the connection closed before its end): no answer, as fetch says.
        response.on('error', () => undefined);
        response.on('close', () => {
          clearTimeout(timer);
          if (!response.complete) failed(timedOut ? `no answer within ${connection.timeoutMs} ms` : 'no answer: ECONNRESET');
        });
        response.on('end', () => {
          clearTimeout(timer);
          // As fetch's text(): UTF-8, a leading BOM dropped.
          const text = new TextDecoder().decode(Buffer.concat(chunks));
          let json: unknown;
          try {
            json = text === '' ? undefined : JSON.parse(text);
          } catch {
            json = undefined;
          }
          const headers = Object.fromEntries(Object.entries(response.headers).map(([name, value]) => [name, Array.isArray(value) ? value.join(', ') : (value ?? '')]));
          resolve({ status: response.statusCode ?? 0, contentType: headers['content-type'] ?? '', text, json, headers });
        });
      });
    } catch (error) {
      // A header value Node refuses to send (a control character): no request left.
      return failed(`no answer: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
    const timer = setTimeout(() => {
      timedOut = true;
      failed(`no answer within ${connection.timeoutMs} ms`);
      request.destroy();
    }, connection.timeoutMs);
    request.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      failed(timedOut ? `no answer within ${connection.timeoutMs} ms` : `no answer: ${error.code ?? error.message}`);
    });
    request.end(exchange.body === undefined ? undefined : typeof exchange.body === 'string' ? exchange.body : Buffer.from(exchange.body));
  });
}

const quote = (text: string) => `'${text.replace(/'/g, "'\\''")}'`;
/** The longest URL or body a curl line shows whole (a 1 MB body or a 5,000-character path is cut, saying its length). */
const SHOWN = 300;

/** The exchange as a command to run again by hand (secret header values as `$CONFORMANCE_<NAME>`). */
export function asCurl(connection: Connection, exchange: Exchange): string {
  const whole = urlOf(connection, exchange);
  const url = whole.length > SHOWN ? `${whole.slice(0, SHOWN)}…(${whole.length} chars)` : whole;
  const headers = Object.entries(headersOf(connection, exchange))
    .map(([name, value]) =>
      SECRET_HEADERS.has(name.toLowerCase()) ? ` -H "${name}: $CONFORMANCE_${name.toUpperCase().replace(/-/g, '_')}"` : ` -H ${quote(`${name}: ${value}`)}`,
    )
    .join('');
  let body = '';
  if (typeof exchange.body === 'string') {
    const shown = exchange.body.length > SHOWN ? `${exchange.body.slice(0, SHOWN)}…(${exchange.body.length} chars)` : exchange.body;
    body = ` --data-raw ${quote(shown)}`;
  } else if (exchange.body) {
    body = ` --data-binary <${exchange.body.length} bytes>`;
  }
  return `curl -X ${exchange.method} ${quote(url)}${headers}${body}`;
}

/** One frame of a Server-Sent Events stream: its fields (`id`, `event`, `data`; data lines joined). */
export type Frame = Record<string, string>;

export interface StreamAnswer {
  status: number;
  contentType: string;
  frames: Frame[];
  /** Lines that are neither a field, a comment nor blank. */
  malformed: string[];
  /** Set when no answer came, or the body broke off. */
  error?: string;
  /** The body when the answer was not a stream (an error envelope). */
  text?: string;
}

/** Parses one frame (the lines before a blank line), as the EventSource algorithm does. */
function parseFrame(block: string, malformed: string[]): Frame | undefined {
  const frame: Frame = {};
  for (const line of block.split(/\r\n|\r|\n/)) {
    if (line === '' || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    if (colon <= 0) {
      malformed.push(line);
      continue;
    }
    const field = line.slice(0, colon);
    const value = line.slice(colon + 1).replace(/^ /, '');
    frame[field] = field === 'data' && frame.data !== undefined ? `${frame.data}\n${value}` : value;
  }
  return Object.keys(frame).length > 0 ? frame : undefined;
}

/**
 * Opens a stream and reads its frames until `frames` of them carry data (then `lingerMs`
 * more, to catch any surplus), the server ends it, or `deadlineMs` passes; then closes it.
 */
export async function readStream(connection: Connection, exchange: Exchange, { frames: wanted, deadlineMs, lingerMs = 200 }: { frames: number; deadlineMs: number; lingerMs?: number }): Promise<StreamAnswer> {
  const controller = new AbortController();
  let timer = setTimeout(() => controller.abort(), deadlineMs);
  const answer: StreamAnswer = { status: 0, contentType: '', frames: [], malformed: [] };
  try {
    const response = await fetch(urlOf(connection, exchange), {
      method: exchange.method,
      headers: headersOf(connection, exchange, { accept: 'text/event-stream' }),
      body: exchange.body as BodyInit | undefined,
      signal: controller.signal,
    });
    answer.status = response.status;
    answer.contentType = response.headers.get('content-type') ?? '';
    if (!/^text\/event-stream/i.test(answer.contentType) || !response.body) {
      answer.text = await response.text();
      return answer;
    }
    const decoder = new TextDecoder();
    let buffer = '';
    let lingering = false;
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let end;
      while ((end = buffer.search(/\r\n\r\n|\n\n|\r\r/)) >= 0) {
        const frame = parseFrame(buffer.slice(0, end), answer.malformed);
        buffer = buffer.slice(end).replace(/^(\r\n\r\n|\n\n|\r\r)/, '');
        if (frame?.data !== undefined) answer.frames.push(frame);
      }
      if (!lingering && answer.frames.length >= wanted) {
        lingering = true;
        clearTimeout(timer);
        timer = setTimeout(() => controller.abort(), lingerMs);
      }
    }
  } catch (error) {
    if ((error as Error).name !== 'AbortError') answer.error = `the stream broke: ${String((error as { cause?: unknown }).cause ?? error)}`;
    else if (answer.status === 0) answer.error = `no answer within ${deadlineMs} ms`;
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
  return answer;
}
