// Failures of background work (the due-event pump ticks 4 times a second, the webhook
// dispatcher and the event feed as often): reported without a line every tick while the
// storage is down, which made about 10 MB of stack traces an hour.

/** Takes a task's failures and its successes; passes on at most one failure a minute, and the recovery after one it passed on. */
export type ThrottledErrors = ((error: unknown) => void) & { succeeded(): void };

/**
 * A reporter that passes on the first failure, then at most one every `intervalMs`, with
 * how many it held back since the last one it passed on; and the first success after a
 * failure it passed on, with how many failed since the last success. A task
 * that fails and recovers on every tick makes at most two lines a minute.
 */
export function throttledErrors(
  report: (error: unknown, heldBack: number) => void,
  { intervalMs = 60_000, now = () => performance.now(), recovered = (_failures: number) => {} }: { intervalMs?: number; now?: () => number; recovered?: (failures: number) => void } = {},
): ThrottledErrors {
  let reportedAt = -Infinity;
  let heldBack = 0;
  let failures = 0;
  let failingReported = false;
  const failed = (error: unknown) => {
    failures += 1;
    const at = now();
    if (at - reportedAt < intervalMs) {
      heldBack += 1;
      return;
    }
    report(error, heldBack);
    reportedAt = at;
    heldBack = 0;
    failingReported = true;
  };
  const succeeded = () => {
    if (failingReported) {
      recovered(failures);
      failingReported = false;
      heldBack = 0;
    }
    // An outage held back whole still counts in the next failure line's heldBack, not here.
    failures = 0;
  };
  return Object.assign(failed, { succeeded });
}
