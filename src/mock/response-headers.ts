// The headers a mocked answer carries: each one its response documents with an example,
// and each one it requires (a 201's `Location`) from its schema when it has no example a
// header can carry. An optional header without an example is left out:
// `Idempotent-Replayed` on every create would say something false. A name HTTP does not
// allow, and the headers that frame the message (Content-Length, Transfer-Encoding,
// Connection, …), are never sent: they would break every answer.
import { samples } from '../conformance/generate.js';
import { loadSpec, type Operation, type ResponseHeader, responseFor } from '../conformance/spec-model.js';

const SEED = 1;
const TRIES = 20;
/** What a header line carries as it is: visible ASCII and inner spaces (or nothing). */
const SENDABLE = /^(?:[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?)?$/;
/** A header name HTTP allows (RFC 9110's token); an OpenAPI key may be anything. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Headers that frame the message or the connection: the server's to set, whatever the document says. */
const FRAMING = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'te', 'trailer', 'proxy-connection']);

/** A value in OpenAPI's `simple` style: an array `a,b`, an object `k,v,k2,v2`. */
function asHeaderText(value: unknown): string {
  if (Array.isArray(value)) return value.map(asHeaderText).join(',');
  if (value && typeof value === 'object') return Object.entries(value).flat().map(asHeaderText).join(',');
  return String(value);
}

function valueOf(header: ResponseHeader): string | undefined {
  const example = header.example === undefined ? undefined : asHeaderText(header.example);
  if (example !== undefined && SENDABLE.test(example)) return example;
  if (!header.required) return undefined;
  // Required, with no example a header can carry: from the schema.
  const { schema } = header;
  if (schema.default !== undefined) return asHeaderText(schema.default);
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return asHeaderText(schema.enum[0]);
  return samples(schema, TRIES, SEED).map(asHeaderText).find((text) => SENDABLE.test(text));
}

export interface MockHeaders {
  /**
   * The headers to send with `operationId`'s `status` answer. One the operation also takes
   * as a request header (`X-Request-Id`) carries what the request `sent`, as a server
   * echoing it does, rather than its example.
   */
  for(operationId: string, status: number, sent?: Record<string, string | string[] | undefined>): Record<string, string>;
}

export function mockHeaders(specPath: string): MockHeaders {
  let operations: Operation[] = [];
  try {
    // Event streams too: the suite's reader keeps them apart (its stream flows check them).
    const { operations: exchanges, streams } = loadSpec(specPath);
    operations = [...exchanges, ...streams];
  } catch {
    // A document the suite's reader refuses (a remote $ref, say) is still served: without headers.
  }
  const byId = new Map(operations.map((operation) => [operation.operationId, operation]));
  const made = new Map<string, Record<string, string>>();
  return {
    for(operationId, status, sent = {}) {
      const key = `${operationId} ${status}`;
      if (!made.has(key)) {
        const operation = byId.get(operationId);
        const documented = (operation ? Object.values(responseFor(operation, status)?.headers ?? {}) : []).filter(
          (header) => TOKEN.test(header.name) && !FRAMING.has(header.name.toLowerCase()),
        );
        const values = documented.flatMap((header) => {
          const value = valueOf(header);
          return value !== undefined && SENDABLE.test(value) ? [[header.name, value] as const] : [];
        });
        made.set(key, Object.fromEntries(values));
      }
      const headers = made.get(key)!;
      const operation = byId.get(operationId);
      const documented = (operation && responseFor(operation, status)?.headers) ?? {};
      const echoed = (operation?.parameters ?? []).flatMap(({ name, in: where }) => {
        const value = sent[name.toLowerCase()];
        const header = documented[name.toLowerCase()];
        return where === 'header' && header && typeof value === 'string' && SENDABLE.test(value) ? [[header.name, value] as const] : [];
      });
      return echoed.length === 0 ? headers : { ...headers, ...Object.fromEntries(echoed) };
    },
  };
}
