// API keys are looked up on every request and change rarely, so the answers are kept
// until the database changes under them: `PRAGMA data_version` moves when another
// connection (another process: `npm run keys`, a second server) commits, and this
// connection's own key writes call `clear`. A key revoked anywhere is refused at once,
// as without the cache. The pragma runs only when the WAL's header moved since the last
// look (commit-signal.ts): read before the pragma, it cannot hide a commit the pragma missed.
import type Database from 'better-sqlite3';
import type { CommitSignal } from './commit-signal.js';
import type { ApiKeyRecord } from '../store.js';

/** Presented keys are the caller's choice: only keys that exist are kept, this many at most. */
const MAX_KEPT = 10_000;

export interface ApiKeyCache {
  hasApiKeys(read: () => boolean): boolean;
  findApiKey(keyHash: string, read: () => ApiKeyRecord | undefined): ApiKeyRecord | undefined;
  clear(): void;
}

export function apiKeyCache(db: Database.Database, commits: CommitSignal): ApiKeyCache {
  const dataVersion = db.prepare<[], number>('PRAGMA data_version').pluck();
  let seenVersion: number | undefined;
  let hasKeys: boolean | undefined;
  const found = new Map<string, ApiKeyRecord>();

  function clear(): void {
    hasKeys = undefined;
    found.clear();
  }
  function dropIfChangedElsewhere(): void {
    if (!commits.moved()) return;
    const version = dataVersion.get();
    if (version !== seenVersion) {
      seenVersion = version;
      clear();
    }
  }

  return {
    clear,
    hasApiKeys(read) {
      dropIfChangedElsewhere();
      return (hasKeys ??= read());
    },
    findApiKey(keyHash, read) {
      dropIfChangedElsewhere();
      const kept = found.get(keyHash);
      if (kept) return kept;
      const key = read();
      if (key && found.size < MAX_KEPT) found.set(keyHash, key);
      return key;
    },
  };
}
