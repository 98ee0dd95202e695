// A fresh database path in a temporary directory for each test of a file, removed after
// it, and the size of its WAL file (0 while there is none).
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach } from 'vitest';

export function tempDatabaseEachTest(prefix: string): { readonly path: string; walBytes(): number } {
  let directory = '';
  const database = {
    path: '',
    walBytes() {
      try {
        return statSync(`${database.path}-wal`).size;
      } catch {
        return 0;
      }
    },
  };
  beforeEach(() => {
    directory = mkdtempSync(join(tmpdir(), prefix));
    database.path = join(directory, 'sessions.db');
  });
  afterEach(() => rmSync(directory, { recursive: true, force: true }));
  return database;
}
