import type { Clock } from '../../src/domain/clock.js';

export const T0 = Date.parse('2026-11-24T10:00:00.000Z');
export const MINUTE = 60_000;

export interface FakeClock extends Clock {
  advance(ms: number): void;
  set(epochMs: number): void;
}

export function fakeClock(start = T0): FakeClock {
  let now = start;
  return {
    now: () => now,
    advance: (ms) => {
      now += ms;
    },
    set: (epochMs) => {
      now = epochMs;
    },
  };
}
