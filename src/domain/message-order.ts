// The order of messages in a session, and the cursors that page through it.
//
// Each message gets a position in thousandths of a millisecond: its creation time, or,
// when another message of the session already holds that instant, the next free
// position after it. Positions are unique and increasing within a session, so paging
// by position skips nothing and repeats nothing, even for messages written in the same
// millisecond. A cursor is a position in epoch milliseconds: a whole number in ordinary
// traffic, with a fraction only where messages share a millisecond.

const SCALE = 1000;

export function nextPosition(createdAt: number, lastPosition: number | undefined): number {
  return Math.max(createdAt * SCALE, lastPosition === undefined ? -Infinity : lastPosition + 1);
}

/**
 * A message's createdAt: the whole millisecond of its position. A write that waited for the
 * session's lock (another instance appending) is then never dated before the message
 * ahead of it, so createdAt follows the list's order.
 */
export function createdAtOf(position: number): number {
  return Math.floor(position / SCALE);
}

export function cursorOf(position: number): number {
  return position / SCALE;
}

// RFC 3339 date-time, all of what the spec's `date-time` format accepts: a leap second,
// an offset without its colon or minutes, any number of fraction digits, and between date
// and time any white space (ajv-formats' separator is /t|\s/i), not only `T` or a space.
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})[Tt\s](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)$/;

/**
 * An RFC 3339 date-time as a position (epoch milliseconds × 1000). A leap second
 * (`23:59:60`) counts as the first instant of the next minute, and fraction digits
 * beyond the sixth are cut. Date.parse refuses both forms, hence this parser.
 */
function positionOfDateTime(text: string): number | undefined {
  const match = DATE_TIME.exec(text);
  if (!match) return undefined;
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const micros = Number((match[7] ?? '').slice(0, 6).padEnd(6, '0'));
  const sign = match[9] === '-' ? -1 : 1;
  const offsetMinutes = match[8] ? 0 : sign * (Number(match[10]) * 60 + Number(match[11] ?? 0));
  const midnight = new Date(0);
  midnight.setUTCFullYear(year, month - 1, day); // Date.UTC would read years 0-99 as 1900+
  // Second 60 simply adds up to the next minute.
  const epochMs = midnight.getTime() + ((hour * 60 + minute - offsetMinutes) * 60 + second) * 1000;
  return Number.isFinite(epochMs) ? epochMs * SCALE + micros : undefined;
}

/** A cursor as sent by a client: epoch ms (up to 3 decimals, parsed exactly) or an RFC 3339 date-time. */
export function positionOfCursor(cursor: string): number {
  const decimal = /^([0-9]{1,15})(?:\.([0-9]{1,3}))?$/.exec(cursor);
  if (decimal) return Number(decimal[1]) * SCALE + Number((decimal[2] ?? '').padEnd(3, '0'));
  const position = positionOfDateTime(cursor);
  if (position === undefined) throw new RangeError(`not a cursor: ${cursor}`);
  return position;
}
