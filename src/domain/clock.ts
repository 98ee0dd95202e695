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

/** A wall clock further ahead than this of where it was plus the time that passed (monotonic) has jumped forward. */
const CLOCK_JUMP_TOLERANCE_MS = 60_000;
/** A forward jump that has held this long (monotonic) is taken as the right time (a clock corrected forward, a VM resumed). */
export const CLOCK_JUMP_CONFIRM_MS = 60_000;

/** Clocks made by steadyClock: steadied once, not again (a second hold would start when the first ends). */
const steadied = new WeakSet<Clock>();

/**
 * The wall time to act on where acting cannot be undone (announcing an expiry, disabling
 * a webhook, purging): the clock's own, except just after it jumped forward. Then it is
 * where the clock was plus the time that passed, until the jump has held for
 * CLOCK_JUMP_CONFIRM_MS: a clock set days ahead for a moment ends nothing and deletes
 * nothing. Read from its making on (a jump before that cannot be seen); a clock without a
 * monotonic reading (a test's) is taken as it is.
 */
export function steadyWallTime(clock: Clock, onJump?: (aheadMs: number) => void): () => number {
  if (!clock.monotonic || steadied.has(clock)) return () => clock.now();
  let base = { wall: clock.now(), steady: clock.monotonic() };
  let aheadSince: number | undefined;
  return () => {
    const wall = clock.now();
    const steady = clock.monotonic!();
    const expected = base.wall + (steady - base.steady);
    if (wall - expected > CLOCK_JUMP_TOLERANCE_MS) {
      if (aheadSince === undefined) onJump?.(Math.round(wall - expected));
      aheadSince ??= steady;
      // Whole milliseconds, as the wall clock gives and the stores keep (the monotonic clock has fractions).
      if (steady - aheadSince < CLOCK_JUMP_CONFIRM_MS) return Math.floor(expected);
    }
    aheadSince = undefined;
    base = { wall, steady };
    return wall;
  };
}

/**
 * The clock a server acts on, its requests and its background work alike: the wall time
 * of steadyWallTime, one reading for all of them. A request during a forward jump that has
 * not held would otherwise store the jump for good where the pump would not act on it
 * (W19: a DELETE of an agent found its sessions over and deleted them; a PATCH of the
 * timeout announced an expiry; a heartbeat or a create dated the session days ahead).
 * Steadying a steady clock (or one without a monotonic reading: a test's) gives it back.
 */
export function steadyClock(clock: Clock, onJump?: (aheadMs: number) => void): Clock {
  if (!clock.monotonic || steadied.has(clock)) return clock;
  const monotonic = clock.monotonic.bind(clock);
  const steady: Clock = { now: steadyWallTime(clock, onJump), monotonic };
  steadied.add(steady);
  return steady;
}
