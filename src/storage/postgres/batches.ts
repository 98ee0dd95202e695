// Requests of one turn of the event loop sent to PostgreSQL together: one statement, one
// round trip and one commit for many. Per key, one batch is in flight at a time; what
// arrives meanwhile makes the next. With PostgreSQL on the server's CPU (the bench), one
// in flight served 12.2-12.9k creates/s, two 10.8-11.8k (smaller batches, more statements).

/** A result of `send` that fails its item alone, with `error`. */
export class Failed {
  constructor(readonly error: unknown) {}
}

/**
 * `send` answers a batch (items of one key), one result per item in order (a Failed one
 * rejects its item); when it throws, every item of the batch fails with its error.
 * Batches of different keys go at once.
 */
export function batchedBy<T, R>(keyOf: (item: T) => string, send: (items: T[]) => Promise<Array<R | Failed>>, maxBatch: number): (item: T) => Promise<R> {
  interface Queue {
    waiting: Array<{ item: T; resolve: (result: R) => void; reject: (error: unknown) => void }>;
    sending: boolean;
    scheduled: boolean;
  }
  const queues = new Map<string, Queue>();

  async function sendNext(key: string, queue: Queue): Promise<void> {
    queue.scheduled = false;
    if (queue.sending) return;
    if (queue.waiting.length === 0) {
      queues.delete(key);
      return;
    }
    const batch = queue.waiting.slice(0, maxBatch);
    queue.waiting = queue.waiting.slice(maxBatch);
    queue.sending = true;
    try {
      const results = await send(batch.map((entry) => entry.item));
      batch.forEach((entry, i) => {
        const result = results[i]!;
        if (result instanceof Failed) entry.reject(result.error);
        else entry.resolve(result);
      });
    } catch (error) {
      for (const entry of batch) entry.reject(error);
    } finally {
      queue.sending = false;
      void sendNext(key, queue);
    }
  }

  return (item) =>
    new Promise<R>((resolve, reject) => {
      const key = keyOf(item);
      let queue = queues.get(key);
      if (!queue) queues.set(key, (queue = { waiting: [], sending: false, scheduled: false }));
      queue.waiting.push({ item, resolve, reject });
      if (!queue.scheduled && !queue.sending) {
        queue.scheduled = true;
        const scheduled = queue;
        setImmediate(() => void sendNext(key, scheduled));
      }
    });
}

/** batchedBy with one key: everything in one line. */
export const batched = <T, R>(send: (items: T[]) => Promise<R[]>, maxBatch: number) => batchedBy<T, R>(() => '', send, maxBatch);
