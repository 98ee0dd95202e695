// The spec as the client generators teams use read it (G15 ran six against it): ways of
// writing it that are valid OpenAPI but give some of them a broken client.
import { describe, expect, it } from 'vitest';
import { specDocument } from '../src/spec.js';

type Node = Record<string, unknown>;
const isNode = (value: unknown): value is Node => typeof value === 'object' && value !== null;

/** Every object in `value` with its JSON pointer. */
function* walk(value: unknown, pointer = ''): Generator<[string, Node]> {
  if (!isNode(value)) return;
  yield [pointer, value];
  for (const [key, child] of Object.entries(value)) yield* walk(child, `${pointer}/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`);
}

describe('the spec, for client generators', () => {
  it("writes each operation's success answers out, not as a $ref to a response (swagger-typescript-api then reads no body, data and error null)", () => {
    const paths = specDocument().paths as Record<string, Record<string, { responses?: Record<string, Node> }>>;
    const referred = Object.entries(paths).flatMap(([path, item]) =>
      Object.entries(item).flatMap(([method, operation]) =>
        Object.entries(operation.responses ?? {})
          .filter(([status, response]) => /^2/.test(status) && '$ref' in response)
          .map(([status]) => `${method.toUpperCase()} ${path} ${status}`),
      ),
    );
    expect(Object.keys(paths).length).toBeGreaterThan(10);
    expect(referred).toEqual([]);
  });

  it('gives every const its type (without one, four generators typed `success: true` as any)', () => {
    const consts = [...walk(specDocument())].filter(([, node]) => 'const' in node && !isNode(node.const));
    expect(consts.length).toBeGreaterThan(5);
    expect(consts.filter(([, node]) => node.type === undefined).map(([pointer]) => pointer)).toEqual([]);
  });
});
