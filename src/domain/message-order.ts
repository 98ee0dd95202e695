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

export function cursorOf(position: number): number {
  return position / SCALE;
}

/** A cursor as sent by a client: epoch ms (up to 3 decimals, parsed exactly) or an ISO date-time. */
export function positionOfCursor(cursor: string): number {
  const decimal = /^([0-9]{1,15})(?:\.([0-9]{1,3}))?$/.exec(cursor);
  if (decimal) return Number(decimal[1]) * SCALE + Number((decimal[2] ?? '').padEnd(3, '0'));
  const epochMs = Date.parse(cursor);
  if (Number.isNaN(epochMs)) throw new RangeError(`not a cursor: ${cursor}`);
  return epochMs * SCALE;
}
