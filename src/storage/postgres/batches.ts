// Requests of one turn of the event loop sent to PostgreSQL together: one statement, one
// round trip and one commit for many. One batch is in flight at a time; what arrives
// meanwhile makes the next. With PostgreSQL on the server's CPU (the bench), one in
// flight served 12.2-12.9k creates/s, two 10.8-11.8k (smaller batches, more statements).

/**
 * `send` answers a batch, one result per item in order; when it throws, every item of the
 * batch fails with its error.
 */
export function batched<T, R>(send: (items: T[]) => Promise<R[]>, maxBatch: number): (item: T) => Promise<R> {
  let waiting: Array<{ item: T; resolve: (result: R) => void; reject: (error: unknown) => void }> = [];
  let sending = false;
  let scheduled = false;

  async function sendNext(): Promise<void> {
    scheduled = false;
    if (sending || waiting.length === 0) return;
    const batch = waiting.slice(0, maxBatch);
    waiting = waiting.slice(maxBatch);
    sending = true;
    try {
      const results = await send(batch.map((entry) => entry.item));
      batch.forEach((entry, i) => entry.resolve(results[i]!));
    } catch (error) {
      for (const entry of batch) entry.reject(error);
    } finally {
      sending = false;
      void sendNext();
    }
  }

  return (item) =>
    new Promise<R>((resolve, reject) => {
      waiting.push({ item, resolve, reject });
      if (!scheduled) {
        scheduled = true;
        setImmediate(sendNext);
      }
    });
}
