// A number in a JSON body that a double cannot hold as written: more significant digits
// than a double keeps (1234567890123456789 would be stored as 1234567890123456800, a
// chat platform's snowflake id quietly changed), or too small (1e-400 would be 0). What is
// stored must be what was sent, so such a body is refused, naming where the number is.

/** Text that may hold such a number: 16 digits (a point among them) in a row, or an exponent of three digits. */
const MAYBE_INEXACT = /\d[\d.]{15}|[eE][-+]?\d{3}/;
const NUMBER = /-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?/y;
const DECIMAL = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([-+]?\d+))?$/;

/** A decimal number's value as `digits e exponent`, without leading or trailing zeros (`-0` is `0`); undefined for Infinity. */
function canonical(text: string): string | undefined {
  const match = DECIMAL.exec(text);
  if (!match) return undefined;
  const [, sign, whole, fraction = '', exponent = '0'] = match;
  const digits = `${whole}${fraction}`.replace(/^0+/, '');
  const significant = digits.replace(/0+$/, '');
  if (significant === '') return '0';
  return `${sign}${significant}e${BigInt(exponent) - BigInt(fraction.length) + BigInt(digits.length - significant.length)}`;
}

export interface InexactNumber {
  /** `body/metadata/id`: where the number is. */
  path: string;
  sent: string;
  stored: string;
}

/** The first number of `text` (valid JSON) a double does not hold as written; undefined when each does. */
export function inexactNumberIn(text: string): InexactNumber | undefined {
  if (!MAYBE_INEXACT.test(text)) return undefined;
  // The path to each value: a key per object, an index per array.
  const path: Array<string | number> = [];
  const arrays: boolean[] = [];
  for (let i = 0; i < text.length; ) {
    const char = text[i]!;
    if (char === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      let next = end + 1;
      while (/\s/.test(text[next] ?? '')) next += 1;
      if (text[next] === ':') {
        path[path.length - 1] = JSON.parse(text.slice(i, end + 1)) as string;
        i = next + 1;
      } else i = end + 1;
    } else if (char === '{' || char === '[') {
      path.push(char === '[' ? 0 : '');
      arrays.push(char === '[');
      i += 1;
    } else if (char === '}' || char === ']') {
      path.pop();
      arrays.pop();
      i += 1;
    } else if (char === ',') {
      if (arrays.at(-1)) path[path.length - 1] = (path.at(-1) as number) + 1;
      i += 1;
    } else if (char === '-' || (char >= '0' && char <= '9')) {
      NUMBER.lastIndex = i;
      const sent = NUMBER.exec(text)![0];
      const stored = String(Number(sent));
      if (canonical(sent) !== canonical(stored)) return { path: ['body', ...path].join('/'), sent, stored };
      i += sent.length;
    } else i += 1;
  }
  return undefined;
}
