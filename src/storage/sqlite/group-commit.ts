// Group commit: writes that arrive within one turn of the event loop run in a single
// transaction, each inside a savepoint of its own (one that throws is rolled back alone
// and rejects alone). A write's promise settles only after COMMIT, so an acknowledged
// write is in the WAL: it survives the process being killed.
import type { Database } from 'better-sqlite3';

interface Pending {
  work: () => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

export type RunWrite = <T>(work: () => T) => Promise<T>;

export function groupCommit(db: Database): RunWrite {
  let queue: Pending[] = [];
  // A transaction inside a transaction is a savepoint in better-sqlite3.
  const inSavepoint = db.transaction((work: () => unknown) => work());
  const commitAll = db.transaction((batch: Pending[]) =>
    batch.map((pending) => {
      try {
        return { ok: true as const, value: inSavepoint(pending.work) };
      } catch (error) {
        return { ok: false as const, error };
      }
    }),
  );

  function flush(): void {
    const batch = queue;
    queue = [];
    let outcomes;
    try {
      outcomes = commitAll(batch);
    } catch (error) {
      for (const pending of batch) pending.reject(error); // the COMMIT itself failed
      return;
    }
    outcomes.forEach((outcome, i) => (outcome.ok ? batch[i]!.resolve(outcome.value) : batch[i]!.reject(outcome.error)));
  }

  return <T>(work: () => T) =>
    new Promise<T>((resolve, reject) => {
      if (queue.length === 0) setImmediate(flush);
      queue.push({ work, resolve: resolve as (value: unknown) => void, reject });
    });
}
