// Whether any API key is stored, without a query on every request. Keys are never deleted
// (a revoked key stays), so once seen they exist for good. Their absence is remembered
// only while this instance listens for the notification that storing a key sends
// (migration 3's trigger), and only when found by a query made while listening: an
// instance that lost its listening connection asks again on every request until it is back.
// The notification only says "ask again": it is database-wide, and a deployment in another
// schema of the same database (search_path) sends it for keys of its own.

export interface ApiKeyPresence {
  /** Whether keys exist: at once when known, else a promise of `ask`, which queries the database. */
  has(ask: () => Promise<boolean>): boolean | Promise<boolean>;
  /** A key was stored by this instance. */
  stored(): void;
  /** A key may have been stored elsewhere (the notification): the next call asks. */
  notified(): void;
  /** Notifications are heard (true) or may be missed (false). */
  listening(on: boolean): void;
}

export function apiKeyPresence(): ApiKeyPresence {
  let exist = false;
  let knownAbsent = false;
  let listening = false;
  /** Changes whenever listening starts or stops: an answer asked across a change is not kept. */
  let epoch = 0;
  return {
    has(ask) {
      if (exist) return true;
      if (knownAbsent) return false;
      const askedIn = epoch;
      const trusted = listening;
      return ask().then((found) => {
        if (found) exist = true;
        else if (trusted && epoch === askedIn && !exist) knownAbsent = true;
        return exist;
      });
    },
    stored() {
      exist = true;
    },
    notified() {
      epoch += 1;
      knownAbsent = false;
    },
    listening(on) {
      listening = on;
      epoch += 1;
      knownAbsent = false;
    },
  };
}
