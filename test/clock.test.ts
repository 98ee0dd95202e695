// steadyWallTime: the wall time irreversible work acts on, which follows a clock that
// jumped ahead only once the jump has held, and a clock set back at once; steadyClock: that
// time as the one clock a server's requests and background work read.
import { describe, expect, it } from 'vitest';
import { CLOCK_JUMP_CONFIRM_MS, elapsedOn, steadyClock, steadyWallTime } from '../src/domain/clock.js';

const DAY = 24 * 60 * 60_000;

function testClock() {
  const clock = { wall: 1_000_000, steady: 0, now: () => clock.wall, monotonic: () => clock.steady };
  const pass = (ms: number) => {
    clock.wall += ms;
    clock.steady += ms;
  };
  return { clock, pass };
}

describe('steadyWallTime', () => {
  it('is the wall clock while it runs with the monotonic one, and where it would be while a forward jump has not held', () => {
    const { clock, pass } = testClock();
    const jumps: number[] = [];
    const now = steadyWallTime(clock, (ahead) => jumps.push(ahead));
    pass(30_000);
    expect(now()).toBe(clock.wall);
    const before = clock.wall;
    clock.wall += 5 * DAY; // set wrong
    pass(1000);
    expect(now()).toBe(before + 1000);
    clock.wall -= 5 * DAY; // set right again within the minute
    pass(1000);
    expect(now()).toBe(clock.wall);
    expect(jumps).toEqual([5 * DAY]);
  });

  it('takes a forward jump that holds for CLOCK_JUMP_CONFIRM_MS, and a step back at once; small jumps at once', () => {
    const { clock, pass } = testClock();
    const now = steadyWallTime(clock);
    clock.wall += DAY; // a VM resumed after a day
    expect(now()).toBe(clock.wall - DAY);
    pass(CLOCK_JUMP_CONFIRM_MS);
    expect(now()).toBe(clock.wall);
    pass(1000);
    expect(now()).toBe(clock.wall);
    clock.wall -= 60 * 60_000; // stepped back an hour
    expect(now()).toBe(clock.wall);
    clock.wall += 30_000; // NTP's small steps
    expect(now()).toBe(clock.wall);
  });

  it('gives whole milliseconds while a jump has not held, though the monotonic clock has fractions (the stores keep integers)', () => {
    const { clock, pass } = testClock();
    clock.steady = 0.375; // performance.now()
    const now = steadyWallTime(clock);
    clock.wall += DAY;
    pass(1000.25);
    expect(now()).toBe(1_000_000 + 1000);
  });

  it('is the wall clock as it is without a monotonic reading (a test clock)', () => {
    let wall = 5;
    const now = steadyWallTime({ now: () => wall });
    wall += 5 * DAY;
    expect(now()).toBe(wall);
  });

  it('takes a step of exactly a minute ahead at once (a jump is further ahead than that), one a millisecond more only once it has held', () => {
    const { clock } = testClock();
    const now = steadyWallTime(clock);
    clock.wall += 60_000;
    expect(now()).toBe(clock.wall);
    const before = clock.wall;
    clock.wall += 60_001;
    expect(now()).toBe(before);
  });
});

describe('steadyClock', () => {
  it('reads steadyWallTime, passes the monotonic clock on, and reports a jump once', () => {
    const { clock, pass } = testClock();
    const jumps: number[] = [];
    const steady = steadyClock(clock, (ahead) => jumps.push(ahead));
    const before = clock.wall;
    clock.wall += DAY;
    pass(1000);
    expect([steady.now(), steady.now(), steady.monotonic?.()]).toEqual([before + 1000, before + 1000, clock.steady]);
    pass(CLOCK_JUMP_CONFIRM_MS);
    expect(steady.now()).toBe(clock.wall);
    expect(jumps).toEqual([DAY]);
  });

  it('is steadied once: work that steadies the time it is given follows the jump when the clock does, not a minute later', () => {
    const { clock, pass } = testClock();
    const steady = steadyClock(clock);
    expect(steadyClock(steady)).toBe(steady);
    const pumpNow = steadyWallTime(steady); // as the due-event pump, the sweeper and the dispatcher do
    clock.wall += DAY;
    expect(pumpNow()).toBe(steady.now());
    pass(CLOCK_JUMP_CONFIRM_MS);
    expect([steady.now(), pumpNow()]).toEqual([clock.wall, clock.wall]);
  });

  it('gives a clock without a monotonic reading (a test clock) back as it is', () => {
    const clock = { now: () => 5 };
    expect(steadyClock(clock)).toBe(clock);
  });
});

describe('elapsedOn', () => {
  it('measures on the monotonic clock when there is one: a wall clock stepped back or ahead changes no duration', () => {
    const { clock, pass } = testClock();
    const elapsed = elapsedOn(clock);
    const start = elapsed();
    pass(5000);
    clock.wall -= DAY;
    expect(elapsed() - start).toBe(5000);
    clock.wall += 2 * DAY;
    expect(elapsed() - start).toBe(5000);
  });

  it('measures on the wall clock without a monotonic reading (a test clock)', () => {
    let wall = 100;
    const elapsed = elapsedOn({ now: () => wall });
    wall += 2500;
    expect(elapsed()).toBe(2600);
  });
});
