// A walk over the tokens of JSON text that JSON.parse accepted, for what the parsed value
// no longer shows: a number as it was written, and a key written twice in one object.

/** Where a token is: a key per object, an index per array, from the top. */
export type JsonPath = Array<string | number>;

export interface JsonVisitor {
  /** A key of an object; `repeated` when the object had it already. Return true to stop. */
  key?(path: JsonPath, key: string, repeated: boolean): boolean | void;
  /** A number as written. Return true to stop. */
  number?(path: JsonPath, text: string): boolean | void;
}

const NUMBER = /-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?/y;

/** A key or index as a segment of a field's name in an error: `/` and `~` escaped as in a JSON Pointer (`a/b` is `a~1b`). */
export const pathSegment = (segment: string | number): string => String(segment).replace(/~/g, '~0').replace(/\//g, '~1');

/** A field of the request body by its path: `body/metadata/tags/0`. */
export const bodyField = (path: JsonPath): string => ['body', ...path.map(pathSegment)].join('/');

export function walkJson(text: string, visitor: JsonVisitor): void {
  const path: JsonPath = [];
  /** Per open container: its keys so far (objects), or undefined (arrays). */
  const keys: Array<Set<string> | undefined> = [];
  for (let i = 0; i < text.length; ) {
    const char = text[i]!;
    if (char === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      let next = end + 1;
      while (/\s/.test(text[next] ?? '')) next += 1;
      if (text[next] === ':') {
        const key = JSON.parse(text.slice(i, end + 1)) as string;
        const seen = keys.at(-1)!;
        const repeated = seen.has(key);
        seen.add(key);
        path[path.length - 1] = key;
        if (visitor.key?.(path, key, repeated)) return;
        i = next + 1;
      } else i = end + 1;
    } else if (char === '{' || char === '[') {
      path.push(char === '[' ? 0 : '');
      keys.push(char === '{' ? new Set() : undefined);
      i += 1;
    } else if (char === '}' || char === ']') {
      path.pop();
      keys.pop();
      i += 1;
    } else if (char === ',') {
      if (keys.length > 0 && keys.at(-1) === undefined) path[path.length - 1] = (path.at(-1) as number) + 1;
      i += 1;
    } else if (char === '-' || (char >= '0' && char <= '9')) {
      NUMBER.lastIndex = i;
      const written = NUMBER.exec(text)![0];
      if (visitor.number?.(path, written)) return;
      i += written.length;
    } else i += 1;
  }
}
