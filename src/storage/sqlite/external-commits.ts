// "Did another connection commit since these answers were read?", asked by the caches of
// agents and API keys on every request. `PRAGMA data_version` answers it but opens a read
// transaction (about 5 µs); the WAL header (commit-signal.ts) is a cheaper filter in front
// of it, but moves on this connection's own commits too, so under a steady write load the
// filter passed every time and each cache paid the pragma on each request. Now the store
// calls `tookOwnCommit` after each of its commits: one pragma per commit, not per request.
import type Database from 'better-sqlite3';
import { commitSignal } from './commit-signal.js';

export interface ExternalCommits {
  /** Moves each time a commit by another connection is seen: a cache filled at another generation is stale. */
  generation(): number;
  /** Right after this connection committed: take its own change in, so that it is not a reason to look again. */
  tookOwnCommit(): void;
  close(): void;
}

export function externalCommits(db: Database.Database, path: string): ExternalCommits {
  const header = commitSignal(path);
  const dataVersion = db.prepare<[], number>('PRAGMA data_version').pluck();
  let seenVersion: number | undefined;
  let generation = 0;
  // The header is read before the pragma: a commit after the read moves it again later,
  // and a commit before it is in the version the pragma reads.
  function look(): void {
    if (!header.moved()) return;
    const version = dataVersion.get();
    if (version !== seenVersion) {
      if (seenVersion !== undefined) generation += 1;
      seenVersion = version;
    }
  }
  return {
    generation() {
      look();
      return generation;
    },
    tookOwnCommit: look,
    close: () => header.close(),
  };
}
