// Hostile requests: the server may refuse them, but never with a 5xx, never by hanging.
import type { RequestValues } from './requests.js';
import type { Operation } from './spec-model.js';

export interface HostileCase {
  title: string;
  values: RequestValues;
  /** A server may refuse it by closing the connection before reading it all (EPIPE, reset). */
  mayCloseConnection?: boolean;
}

function nested(depth: number): unknown {
  let value: unknown = 'bottom';
  for (let i = 0; i < depth; i += 1) value = { a: value };
  return value;
}

/** The first string field of a JSON object, depth first, as a path; undefined if none. */
function firstStringPath(value: unknown, path: string[] = []): string[] | undefined {
  if (typeof value === 'string') return path;
  if (value && typeof value === 'object') {
    for (const [key, child] of Object.entries(value)) {
      const found = firstStringPath(child, [...path, key]);
      if (found) return found;
    }
  }
  return undefined;
}

function setAt(value: unknown, path: string[], replacement: unknown): unknown {
  if (path.length === 0) return replacement;
  const [head, ...rest] = path;
  const copy: any = Array.isArray(value) ? [...value] : { ...(value as object) };
  copy[head!] = setAt(copy[head!], rest, replacement);
  return copy;
}

export function hostileCases(operation: Operation, valid: RequestValues): HostileCase[] {
  const cases: HostileCase[] = [];
  const withValues = (title: string, values: Partial<RequestValues>, mayCloseConnection = false) =>
    cases.push({ title, values: { ...valid, ...values }, ...(mayCloseConnection ? { mayCloseConnection } : {}) });
  const long = 'x'.repeat(100_000);

  if (operation.body) {
    const body = valid.body && typeof valid.body === 'object' ? (valid.body as Record<string, unknown>) : {};
    const json = JSON.stringify(body);
    const firstKey = Object.keys(body)[0] ?? 'field';
    withValues('__proto__ and constructor keys', {
      rawBody: `{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},${json.slice(1)}`.replace(/,}$/, '}'),
    });
    withValues('a 100,000-character string', { body: setAt(body, firstStringPath(body) ?? ['hostile'], long) });
    withValues('an object nested 1,000 deep', { body: { ...body, [firstKey]: nested(1000) } });
    withValues('invalid UTF-8', {
      rawBody: Buffer.concat([Buffer.from('{"hostile":"'), Buffer.from([0xff, 0xfe, 0xc3, 0x28]), Buffer.from(`",${json.slice(1)}`.replace(/,}$/, '}'))]),
    });
    withValues('an empty body', { rawBody: '' });
    withValues('malformed JSON', { rawBody: '{"unterminated": ' });
    withValues('JSON null', { rawBody: 'null' });
    withValues('the wrong content type', { rawBody: json, contentType: 'text/plain' });
    withValues('a body over 1 MB', { rawBody: JSON.stringify({ ...body, padding: 'x'.repeat(1_100_000) }) }, true);
  }
  withValues('__proto__ in the query', { query: { ...valid.query, '__proto__[polluted]': 'true', constructor: 'x' } });
  for (const parameter of operation.parameters) {
    if (parameter.in === 'query') withValues(`a 5,000-character ${parameter.name}`, { query: { ...valid.query, [parameter.name]: 'x'.repeat(5000) } });
    if (parameter.in === 'path') {
      withValues(`a 5,000-character ${parameter.name}`, { path: { ...valid.path, [parameter.name]: 'x'.repeat(5000) } });
      withValues(`a ${parameter.name} of dots and a NUL`, { path: { ...valid.path, [parameter.name]: '../..\u0000' } });
    }
  }
  return cases;
}
