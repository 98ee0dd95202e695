// "Has any connection committed since the last look?", for the price of one read. In WAL
// mode every commit, from any process, rewrites the wal-index header: the first 96 bytes
// of the `-shm` file, two copies of a 48-byte header whose change counter moves on each
// write (https://www.sqlite.org/walformat.html#the_wal_index_file_format). The file is
// memory that SQLite maps shared, so a read of it sees the latest commit. `PRAGMA
// data_version` answers the same question but opens a read transaction (two fcntl locks
// and a statement) on every call; this is a filter in front of it, not a replacement.
import { closeSync, openSync, readSync } from 'node:fs';

const HEADER_BYTES = 96;

export interface CommitSignal {
  /** True when the header moved since the previous call (and on the first): a commit may have happened. */
  moved(): boolean;
  close(): void;
}

/** Without a `-shm` file to read (':memory:', not WAL, unreadable), it always answers "moved". */
export function commitSignal(path: string): CommitSignal {
  let fd: number | undefined;
  try {
    if (path !== ':memory:') fd = openSync(`${path}-shm`, 'r');
  } catch {
    fd = undefined;
  }
  const seen = Buffer.alloc(HEADER_BYTES);
  const now = Buffer.alloc(HEADER_BYTES);
  let first = true;
  return {
    moved() {
      if (fd === undefined) return true;
      try {
        if (readSync(fd, now, 0, HEADER_BYTES, 0) !== HEADER_BYTES) return true;
      } catch {
        return true;
      }
      if (!first && now.equals(seen)) return false;
      first = false;
      now.copy(seen);
      return true;
    },
    close() {
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
    },
  };
}
