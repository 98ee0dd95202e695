// The store's worker threads (the purge, the checkpoints) do background work: on a CPU
// they share with the event loop (the bench pins the server to one; a busy machine does the
// same), the work waits for the event loop's turns, not the reverse.

/** The workers' nice value. */
export const NICENESS = 10;

/**
 * CommonJS for a worker's source: lowers the thread's priority to NICENESS (Linux: a
 * thread has its own nice value; elsewhere the call fails and the thread keeps its priority).
 */
export const YIELD_TO_EVENT_LOOP = `
try {
  const tid = Number(require('node:fs').readlinkSync('/proc/thread-self').split('/').pop());
  require('node:os').setPriority(tid, ${NICENESS});
} catch {}
`;
