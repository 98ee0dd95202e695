import { describe, expect, it } from 'vitest';
import { createdAtOf, cursorOf, nextPosition, positionOfCursor } from '../src/domain/message-order.js';
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

  it('date a message by its position: one that waited for the lock behind a later one is not dated before it', () => {
    expect(createdAtOf(nextPosition(T0, undefined))).toBe(T0);
    expect(createdAtOf(nextPosition(T0 - 600, (T0 + 5) * 1000))).toBe(T0 + 5);
    expect(createdAtOf(nextPosition(T0 + 9, (T0 + 5) * 1000 + 3))).toBe(T0 + 9);
  });

  it('dates a message by the whole millisecond of its position, even late in a burst within one millisecond', () => {
    // The 501st to the 1000th message written in one millisecond: still dated that millisecond, never the next.
    expect(createdAtOf(nextPosition(T0, T0 * 1000 + 499))).toBe(T0);
    expect(createdAtOf(nextPosition(T0, T0 * 1000 + 998))).toBe(T0);
    expect(createdAtOf(nextPosition(T0, T0 * 1000 + 999))).toBe(T0 + 1);
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

describe('date-time cursors: every RFC 3339 form the spec accepts', () => {
  const ms = (iso: string) => Date.parse(iso) * 1000;
  it.each([
    ['2020-01-01T00:00:00+01', ms('2019-12-31T23:00:00Z')],
    ['2020-01-01T00:00:00+0130', ms('2019-12-31T22:30:00Z')],
    ['2020-01-01T00:00:00-01:00', ms('2020-01-01T01:00:00Z')],
    ['2016-12-31T23:59:60Z', ms('2017-01-01T00:00:00Z')],
    ['2016-12-31T23:59:60.5Z', ms('2017-01-01T00:00:00.500Z')],
    ['2020-01-01t00:00:00z', ms('2020-01-01T00:00:00Z')],
    ['2020-01-01T00:00:00.123456789Z', ms('2020-01-01T00:00:00.123Z') + 456],
    ['0001-01-01T00:00:00Z', -62_135_596_800_000 * 1000],
    // Between date and time any white space, as ajv-formats' date-time has it (its separator is /t|\s/i).
    ['2020-01-01 00:00:00Z', ms('2020-01-01T00:00:00Z')],
    ['2020-01-01\t00:00:00Z', ms('2020-01-01T00:00:00Z')],
  ])('%s', (cursor, position) => {
    expect(positionOfCursor(cursor)).toBe(position);
  });

  it('refuses what is not a cursor', () => {
    expect(() => positionOfCursor('2020-01-01T00:00:00')).toThrow(RangeError);
    expect(() => positionOfCursor('yesterday')).toThrow(RangeError);
  });
});
