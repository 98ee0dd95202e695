// The order of listed sessions, and the keyset cursor that pages through it.
//
// Sessions list newest first: by createdAt descending, then by id descending, so the order
// is total. A cursor names the last session of a page, as `<createdAt epoch ms>_<id>`; the
// next page is every match strictly after it in that order. Unlike an offset, a cursor
// neither skips nor repeats a session when others are created or purged between pages.

export interface SessionPosition {
  createdAt: number;
  id: string;
}

export function sessionCursorOf(session: SessionPosition): string {
  return `${session.createdAt}_${session.id}`;
}

/**
 * The spec's pattern has checked the form; this splits it. Session ids are made in lower
 * case and compared byte by byte: an upper-cased cursor (a proxy's, a client's) read as
 * written would place itself before its session's equals in the order and skip them.
 */
export function sessionPositionOf(cursor: string): SessionPosition {
  const separator = cursor.indexOf('_');
  return { createdAt: Number(cursor.slice(0, separator)), id: cursor.slice(separator + 1).toLowerCase() };
}
