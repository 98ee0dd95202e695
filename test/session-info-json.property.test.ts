// The session events' data text (sessionInfoJson) against JSON.stringify of the same view:
// byte for byte, for any session, hostile text included (U+0000, lone surrogates, quotes),
// and numbers JSON writes as null (NaN, Infinity) or differently (-0).
import fc from 'fast-check';
import { expect, it } from 'vitest';
import { sessionInfoJson, sessionInfoView } from '../src/http/views.js';
import type { SessionRecord } from '../src/storage/store.js';

const text = fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom('\u0000', '\ud800', '"\\', '\u2028', '😀', '__proto__'));
const instant = fc.integer({ min: -62_167_219_200_000, max: 253_402_300_799_999 });
const number = fc.oneof(fc.integer(), fc.double());

const session = fc.record({
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
    .map(([config, reversed]) => (reversed ? Object.fromEntries(Object.entries(config).reverse()) : config)),
  renewalCount: number,
  metadata: fc.dictionary(text, fc.jsonValue({ maxDepth: 2 })),
  status: fc.constantFrom('active' as const, 'expired' as const),
  announced: fc.constantFrom('nothing' as const, 'warning' as const, 'expiry' as const),
});

it('writes exactly what JSON.stringify writes for the SessionInfo view, for any session and instant', () => {
  fc.assert(
    fc.property(session, instant, (record, now) => {
      const view = sessionInfoView(record as SessionRecord, now);
      expect(sessionInfoJson(view)).toBe(JSON.stringify(view));
    }),
    { numRuns: 1000, seed: 11 },
  );
});
