// A number in a JSON body that a double cannot hold as written: more significant digits
// than a double keeps (1234567890123456789 would be stored as 1234567890123456800, a
// chat platform's snowflake id quietly changed), or too small (1e-400 would be 0). What is
// stored must be what was sent, so such a body is refused, naming where the number is.
import { bodyField, walkJson } from './json-tokens.js';

/** Text that may hold such a number: 16 digits (a point among them) in a row, or an exponent of three digits. */
const MAYBE_INEXACT = /\d[\d.]{15}|[eE][-+]?\d{3}/;
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
  let found: InexactNumber | undefined;
  walkJson(text, {
    number(path, sent) {
      const stored = String(Number(sent));
      if (canonical(sent) === canonical(stored)) return false;
      found = { path: bodyField(path), sent, stored };
      return true;
    },
  });
  return found;
}
