// API keys are looked up on every request and change rarely, so the answers are kept
// until the database changes under them: any commit by another connection (another
// process: `npm run keys`, a second server; external-commits.ts) empties the cache, and
// this connection's own key writes call `clear`. A key revoked anywhere is refused at
// once, as without the cache.
import type { ExternalCommits } from './external-commits.js';
import type { ApiKeyRecord } from '../store.js';

/** Presented keys are the caller's choice: only keys that exist are kept, this many at most. */
const MAX_KEPT = 10_000;

export interface ApiKeyCache {
  hasApiKeys(read: () => boolean): boolean;
  findApiKey(keyHash: string, read: () => ApiKeyRecord | undefined): ApiKeyRecord | undefined;
  clear(): void;
}

export function apiKeyCache(commits: ExternalCommits): ApiKeyCache {
  let filledAt = commits.generation();
  let hasKeys: boolean | undefined;
  const found = new Map<string, ApiKeyRecord>();

  function clear(): void {
    hasKeys = undefined;
    found.clear();
  }
  function dropIfChangedElsewhere(): void {
    const generation = commits.generation();
    if (generation !== filledAt) {
      filledAt = generation;
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
