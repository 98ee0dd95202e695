// Fewer round trips to PostgreSQL: a transaction's BEGIN goes with its first statement,
// and statements whose values can be written as literals go together in one message.
import pg from 'pg';

/**
 * Runs a statement; a transaction's first sends its BEGIN in the same message when its
 * values can be written as literals. A text parameter cannot hold U+0000 in PostgreSQL: in
 * an id or key (a lookup: nothing stored has one, as ids are validated and free text is
 * stored as JSON), it becomes U+FFFD, so the lookup finds nothing instead of failing.
 */
export async function run<R extends pg.QueryResultRow = pg.QueryResultRow>(executor: pg.Pool | pg.ClientBase, text: string, values: unknown[] = []): Promise<pg.QueryResult<R>> {
  const client = executor as pg.ClientBase;
  if (beginPending.has(client)) {
    if (values.every(hasLiteral)) return (await runTogether(client, [[text, values]]))[0] as pg.QueryResult<R>;
    beginPending.delete(client);
    await client.query('BEGIN');
  }
  return executor.query<R>(text, values.map(withoutNul));
}

/**
 * Statements in one message, values as literals, after BEGIN when it is still pending:
 * a transaction's first reads cost one round trip, not one for BEGIN and one each. Their
 * results, BEGIN's left out. (A message of several statements takes no parameters.)
 */
export async function runTogether(client: pg.ClientBase, statements: Array<[text: string, values: unknown[]]>): Promise<pg.QueryResult[]> {
  const begin = beginPending.delete(client) ? ['BEGIN'] : [];
  const texts = statements.map(([text, values]) => withLiterals(client, text, values));
  // pg answers a message of several statements with an array of results.
  const answer = (await client.query([...begin, ...texts].join(';\n'))) as pg.QueryResult | pg.QueryResult[];
  const results = Array.isArray(answer) ? answer : [answer];
  return results.slice(begin.length);
}

const withoutNul = (value: unknown) => (typeof value === 'string' && value.includes('\u0000') ? value.replaceAll('\u0000', '\uFFFD') : value);

/** Transactions whose BEGIN is not sent yet: it goes before their first statement, or in their COMMIT's message. */
export const beginPending = new WeakSet<pg.ClientBase>();

/** Whether withLiterals writes the value: no objects, fractions or arrays but of strings. */
const hasLiteral = (value: unknown) =>
  value === null ||
  value === undefined ||
  typeof value === 'boolean' ||
  typeof value === 'string' ||
  (typeof value === 'number' && Number.isSafeInteger(value)) ||
  (Array.isArray(value) && value.every((element) => typeof element === 'string'));

/** A statement's $n parameters written as literals, for a message of several statements (which takes no parameters). */
export function withLiterals(client: pg.ClientBase, text: string, values: unknown[]): string {
  return text.replace(/\$(\d+)/g, (_, n: string) => {
    const value = withoutNul(values[Number(n) - 1]);
    if (!hasLiteral(value)) throw new Error(`no literal for ${typeof value} ${String(value)}`);
    if (value === null || value === undefined) return 'NULL';
    if (typeof value === 'boolean') return value ? 'TRUE' : 'FALSE';
    if (typeof value === 'string') return client.escapeLiteral(value);
    if (Array.isArray(value)) return `ARRAY[${value.map((element: string) => client.escapeLiteral(withoutNul(element) as string)).join(', ')}]::text[]`;
    return String(value);
  });
}
