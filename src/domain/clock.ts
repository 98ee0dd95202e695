/** The source of "now" for every timeout rule: epoch milliseconds. Injected so tests control time. */
export interface Clock {
  now(): number;
  /**
   * Milliseconds on a clock that never steps back, for durations such as the uptime (the
   * wall clock steps when it is set). A test's clock may leave it out: now() serves then.
   */
  monotonic?(): number;
}

export const systemClock: Clock = { now: () => Date.now(), monotonic: () => performance.now() };

/** A reading of the clock's monotonic time (its wall time when it has none): differences of two are durations. */
export const elapsedOn = (clock: Clock): (() => number) => (clock.monotonic ? () => clock.monotonic!() : () => clock.now());
