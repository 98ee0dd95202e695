// fast-check arbitraries of session records as a store could hold them, hostile text
// included (U+0000, lone surrogates, quotes), and numbers JSON writes as null (NaN,
// Infinity) or differently (-0): for the property tests of the SessionInfo's JSON.
import fc from 'fast-check';
import type { SessionRecord } from '../../src/storage/store.js';

const text = fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom('\u0000', '\ud800', '"\\', '\u2028', '😀', '__proto__', '[1]'));
const number = fc.oneof(fc.integer(), fc.double());

/** Any instant Date can write as ISO text. */
export const instant = fc.integer({ min: -62_167_219_200_000, max: 253_402_300_799_999 });

export const arbitrarySession: fc.Arbitrary<SessionRecord> = fc.record({
  id: text,
  agentId: text,
  userId: text,
  createdAt: instant,
  lastActivity: instant,
  anchorAt: instant,
  expiresAt: instant,
  warnsAt: instant,
  // Keys in either order (a config spread from another keeps that one's order); numbers of any kind.
  config: fc
    .tuple(fc.record({ timeoutMinutes: number, autoRenew: fc.boolean(), maxDurationMinutes: number, warningThresholdMinutes: number }), fc.boolean())
    .map(([config, reversed]) => (reversed ? (Object.fromEntries(Object.entries(config).reverse()) as typeof config) : config)),
  renewalCount: number,
  metadata: fc.dictionary(text, fc.jsonValue({ maxDepth: 2 })) as fc.Arbitrary<SessionRecord['metadata']>,
  status: fc.constantFrom('active' as const, 'expired' as const),
  announced: fc.constantFrom('nothing' as const, 'warning' as const, 'expiry' as const),
});
