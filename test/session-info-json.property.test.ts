// The session events' data text (sessionInfoJson) against JSON.stringify of the same view:
// byte for byte, for any session, hostile text included (U+0000, lone surrogates, quotes).
import fc from 'fast-check';
import { expect, it } from 'vitest';
import { sessionInfoJson, sessionInfoView } from '../src/http/views.js';
import type { SessionRecord } from '../src/storage/store.js';

const text = fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom('\u0000', '\ud800', '"\\', '\u2028', '😀', '__proto__'));
const instant = fc.integer({ min: -62_167_219_200_000, max: 253_402_300_799_999 });

const session = fc.record({
  id: text,
  agentId: text,
  userId: text,
  createdAt: instant,
  lastActivity: instant,
  anchorAt: instant,
  expiresAt: instant,
  warnsAt: instant,
  config: fc.record({ timeoutMinutes: fc.integer(), autoRenew: fc.boolean(), maxDurationMinutes: fc.integer(), warningThresholdMinutes: fc.integer() }),
  renewalCount: fc.nat(),
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
