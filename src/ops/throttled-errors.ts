// Failures of background work (the due-event pump ticks 4 times a second, the webhook
// dispatcher and the event feed as often): reported without a line every tick while the
// storage is down, which made about 10 MB of stack traces an hour.

/**
 * A reporter that passes on the first failure, then at most one every `intervalMs`,
 * with how many it held back since the last one it passed on.
 */
export function throttledErrors(
  report: (error: unknown, heldBack: number) => void,
  { intervalMs = 60_000, now = () => performance.now() }: { intervalMs?: number; now?: () => number } = {},
): (error: unknown) => void {
  let reportedAt = -Infinity;
  let heldBack = 0;
  return (error) => {
    const at = now();
    if (at - reportedAt < intervalMs) {
      heldBack += 1;
      return;
    }
    report(error, heldBack);
    reportedAt = at;
    heldBack = 0;
  };
}
