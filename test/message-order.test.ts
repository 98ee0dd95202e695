import { describe, expect, it } from 'vitest';
import { cursorOf, nextPosition, positionOfCursor } from '../src/domain/message-order.js';
import { T0 } from './helpers/fake-clock.js';

describe('message positions', () => {
  it('are the creation time in thousandths of a millisecond when the instant is free', () => {
    expect(nextPosition(T0, undefined)).toBe(T0 * 1000);
    expect(nextPosition(T0 + 5, T0 * 1000)).toBe((T0 + 5) * 1000);
  });

  it('take the next free position when messages share a millisecond, and never go back', () => {
    expect(nextPosition(T0, T0 * 1000)).toBe(T0 * 1000 + 1);
    expect(nextPosition(T0, T0 * 1000 + 999)).toBe(T0 * 1000 + 1000);
    expect(nextPosition(T0 - 10, T0 * 1000)).toBe(T0 * 1000 + 1); // a clock that steps back
  });
});

describe('cursors', () => {
  it('are whole epoch milliseconds in ordinary traffic', () => {
    expect(cursorOf(T0 * 1000)).toBe(T0);
    expect(Number.isInteger(cursorOf(T0 * 1000))).toBe(true);
  });

  it('round-trip exactly through JSON and back, fraction included', () => {
    for (const position of [T0 * 1000, T0 * 1000 + 1, T0 * 1000 + 7, T0 * 1000 + 999, 9_999_999_999_999 * 1000 + 999]) {
      expect(positionOfCursor(JSON.stringify(cursorOf(position)))).toBe(position);
    }
  });

  it('accept epoch milliseconds and ISO date-times', () => {
    expect(positionOfCursor(String(T0))).toBe(T0 * 1000);
    expect(positionOfCursor('1.5')).toBe(1500);
    expect(positionOfCursor(new Date(T0).toISOString())).toBe(T0 * 1000);
    expect(positionOfCursor('2026-11-24T11:00:00+01:00')).toBe(T0 * 1000);
    expect(() => positionOfCursor('yesterday')).toThrow(RangeError);
  });
});
