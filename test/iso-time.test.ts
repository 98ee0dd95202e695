import fc from 'fast-check';
import { expect, it } from 'vitest';
import { isoTime } from '../src/iso-time.js';

it('writes exactly what Date#toISOString writes, for any instant', () => {
  fc.assert(
    fc.property(fc.oneof(fc.integer({ min: -62_167_219_200_000, max: 253_402_300_799_999 }), fc.integer({ min: -8_640_000_000_000_000, max: 8_640_000_000_000_000 })), (epochMs) => {
      expect(isoTime(epochMs)).toBe(new Date(epochMs).toISOString());
    }),
    { numRuns: 20_000, seed: 42 },
  );
  for (const epochMs of [0, -1, 1, 86_399_999, 86_400_000, Date.parse('2026-11-24T23:59:59.999Z'), Date.parse('1969-12-31T23:59:59.999Z')]) {
    expect(isoTime(epochMs)).toBe(new Date(epochMs).toISOString());
  }
});

it('leaves the years outside 0000-9999 to Date, from their first millisecond', () => {
  for (const epochMs of [253_402_300_799_999, 253_402_300_800_000, 253_402_300_800_001, -62_167_219_200_000, -62_167_219_200_001]) {
    expect(isoTime(epochMs)).toBe(new Date(epochMs).toISOString());
  }
});

it('writes the right date when instants alternate between days', () => {
  const days = [Date.parse('2026-11-24T23:59:59.999Z'), Date.parse('2026-11-25T00:00:00.000Z'), Date.parse('2026-11-26T12:00:00.000Z')];
  for (const epochMs of [...days, days[0]!, days[2]!, days[1]!, days[1]!, days[0]!, days[2]!]) {
    expect(isoTime(epochMs)).toBe(new Date(epochMs).toISOString());
  }
});
