// Which query parameters handlers read as present (those the spec gives a default, found
// wherever the spec can put them), and which operations src/ops serves. `npm run generate`
// writes them as types (generated/operation-facts.d.ts); `check:generated` fails when that file drifts.
import { describe, expect, expectTypeOf, it } from 'vitest';
import { defaultedQueryParameters, operationFactsDeclaration, operationalOperationIds, webhookOperationIds } from '../scripts/operation-facts.js';
import type { OperationId, QueryParams } from '../src/http/operation-types.js';

describe('defaultedQueryParameters', () => {
  const document = {
    components: {
      schemas: { Limit: { type: 'integer', default: 50 }, Plain: { type: 'integer' } },
      parameters: {
        Limit: { name: 'limit', in: 'query', schema: { $ref: '#/components/schemas/Limit' } },
        Verbose: { name: 'verbose', in: 'query', schema: { type: 'boolean', default: false } },
      },
    },
    paths: {
      '/things': {
        parameters: [{ $ref: '#/components/parameters/Verbose' }, { name: 'page', in: 'query', schema: { type: 'integer', default: 1 } }],
        get: { operationId: 'listThings', parameters: [{ $ref: '#/components/parameters/Limit' }, { name: 'plain', in: 'query', schema: { $ref: '#/components/schemas/Plain' } }] },
        // Overrides the path-level `page` with one that has no default.
        delete: { operationId: 'deleteThings', parameters: [{ name: 'page', in: 'query', schema: { type: 'integer' } }] },
      },
      '/things/{id}': {
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string', default: 'x' } }],
        get: { operationId: 'getThing', parameters: [{ name: 'format', in: 'header', schema: { type: 'string', default: 'json' } }] },
        summary: 'not an operation',
      },
    },
  };

  it('reads path-level and operation-level parameters, through $refs to parameters and schemas', () => {
    expect(defaultedQueryParameters(document)).toEqual({ listThings: ['verbose', 'page', 'limit'], deleteThings: ['verbose'] });
  });

  it('writes them as a type, one line per operation', () => {
    expect(operationFactsDeclaration(document)).toContain('export interface QueryDefaults {\n    listThings: "verbose" | "page" | "limit";\n    deleteThings: "verbose";\n}\n');
  });

  it('writes the x-operational operations as a type: never when there are none', () => {
    expect(operationFactsDeclaration(document)).toContain('export type OperationalOperationId = never;\n');
    const marked = structuredClone(document) as unknown as { paths: Record<string, Record<string, object>> };
    marked.paths['/things']!.get = { ...marked.paths['/things']!.get, 'x-operational': true };
    marked.paths['/things/{id}']!.get = { ...marked.paths['/things/{id}']!.get, 'x-operational': true };
    expect(operationalOperationIds(marked)).toEqual(['listThings', 'getThing']);
    expect(operationFactsDeclaration(marked)).toContain('export type OperationalOperationId = "listThings" | "getThing";\n');
  });

  it('writes the operations of the top-level webhooks as a type: never when there are none', () => {
    expect(operationFactsDeclaration(document)).toContain('export type WebhookOperationId = never;\n');
    const withHooks = {
      ...document,
      webhooks: {
        thingMade: { post: { operationId: 'deliverThing' } },
        thingGone: { post: { operationId: 'deliverGone' }, summary: 'not an operation', put: { operationId: 'redeliverGone' } },
      },
    };
    expect(webhookOperationIds(withHooks)).toEqual(['deliverThing', 'deliverGone', 'redeliverGone']);
    expect(operationFactsDeclaration(withHooks)).toContain('export type WebhookOperationId = "deliverThing" | "deliverGone" | "redeliverGone";\n');
  });
});

// Checked by `npm run typecheck` (tsc reads test/): a type that made every query parameter of
// an operation with a default present, or none, would fail here, not at run time.
describe('QueryParams', () => {
  type ListSessionsQuery = QueryParams<'listSessions'>;
  type IsOptional<T, K extends keyof T> = Record<string, never> extends Pick<T, K> ? true : false;

  it('types the parameters with a default as present', () => {
    expectTypeOf<IsOptional<ListSessionsQuery, 'limit'>>().toEqualTypeOf<false>();
    expectTypeOf<IsOptional<ListSessionsQuery, 'status'>>().toEqualTypeOf<false>();
    expectTypeOf<ListSessionsQuery['limit']>().toEqualTypeOf<number>();
    expectTypeOf<IsOptional<QueryParams<'deleteAgent'>, 'force'>>().toEqualTypeOf<false>();
  });

  it('leaves the others optional', () => {
    expectTypeOf<IsOptional<ListSessionsQuery, 'agentId'>>().toEqualTypeOf<true>();
    expectTypeOf<IsOptional<ListSessionsQuery, 'cursor'>>().toEqualTypeOf<true>();
  });
});

// Checked by `npm run typecheck`: a webhook operation (sent, not served) or an operational
// one (src/ops) among the API's would want a handler.
describe('OperationId', () => {
  it('holds the served API operations only', () => {
    expectTypeOf<'deliverEvent' extends OperationId ? true : false>().toEqualTypeOf<false>();
    expectTypeOf<'getMetrics' extends OperationId ? true : false>().toEqualTypeOf<false>();
    expectTypeOf<'createSession' extends OperationId ? true : false>().toEqualTypeOf<true>();
  });
});
