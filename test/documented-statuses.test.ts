// The statuses the shared hooks can answer on an operation, before or around its handler,
// are documented on it: a client generated from the spec knows every answer it may get.
// Derived from the hooks' own rules (which operations are open, admin-only, parse a body),
// so a new operation, or an operation whose rule changes, is held to them at once.
import { describe, expect, it } from 'vitest';
import { adminOnlyOperations, openOperations } from '../src/http/auth.js';
import { type SpecOperation, specDocument, specOperations } from '../src/spec.js';

/** What may answer, and when. */
function statusesFromHooks(operation: SpecOperation): string[] {
  const statuses = [
    '400', // an HTTP/1.1 request without Host (server-options.ts), before any route's own checks
    '500', // anything unforeseen, in the envelope
    '503', // the server shutting down (health: its storage check)
  ];
  // Fastify parses a body on every method but GET and HEAD: one too large, or not JSON.
  if (operation.method !== 'GET') statuses.push('413', '415');
  // Not open: an API key when keys are on, and the rate limit (the open operations are exempt).
  if (!openOperations().has(operation.operationId)) statuses.push('401', '429');
  if (adminOnlyOperations().has(operation.operationId)) statuses.push('403');
  // A path parameter over 500 characters: the router's 404 (error-handling.ts answerFrameworkError).
  if (operation.path.includes('{')) statuses.push('404');
  return statuses;
}

describe('the statuses of the shared hooks', () => {
  it('are documented on every operation they apply to', () => {
    const all = specOperations();
    expect(all.length).toBeGreaterThan(20);
    const missing = all.flatMap((operation) =>
      statusesFromHooks(operation)
        .filter((status) => !operation.statuses.includes(status))
        .map((status) => `${operation.operationId} ${status}`),
    );
    expect(missing).toEqual([]);
  });
});

describe('the 401 answers', () => {
  it('declare the WWW-Authenticate header every 401 carries, on every operation', () => {
    type Response = { $ref?: string; headers?: Record<string, unknown> };
    const document = specDocument() as { paths: Record<string, Record<string, { operationId?: string; responses?: Record<string, Response> }>>; components: { responses: Record<string, Response> } };
    const resolved = (response: Response) => (response.$ref ? document.components.responses[response.$ref.split('/').at(-1)!]! : response);
    const undeclared = Object.values(document.paths).flatMap((item) =>
      Object.values(item)
        .filter((operation) => operation.responses?.['401'] !== undefined)
        .filter((operation) => !('WWW-Authenticate' in (resolved(operation.responses!['401']!).headers ?? {})))
        .map((operation) => operation.operationId),
    );
    expect(undeclared).toEqual([]);
  });
});
