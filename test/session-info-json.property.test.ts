// The session events' data text (sessionInfoJson) against JSON.stringify of the same view:
// byte for byte, for any session, hostile text included (U+0000, lone surrogates, quotes),
// and numbers JSON writes as null (NaN, Infinity) or differently (-0).
import fc from 'fast-check';
import { expect, it } from 'vitest';
import { sessionInfoJson, sessionInfoView } from '../src/views.js';
import { arbitrarySession, instant } from './helpers/arbitrary-session.js';

it('writes exactly what JSON.stringify writes for the SessionInfo view, for any session and instant', () => {
  fc.assert(
    fc.property(arbitrarySession, instant, (record, now) => {
      const view = sessionInfoView(record, now);
      expect(sessionInfoJson(view)).toBe(JSON.stringify(view));
    }),
    { numRuns: 1000, seed: 11 },
  );
});

it('escapes every control character (U+0000 to U+001F) in the ids as JSON.stringify does', () => {
  const [record] = fc.sample(arbitrarySession, { numRuns: 1, seed: 3 });
  for (let code = 0; code <= 0x1f; code += 1) {
    const character = String.fromCharCode(code);
    const view = sessionInfoView({ ...record!, userId: `user${character}`, agentId: character, id: `${character}id` }, 0);
    expect(sessionInfoJson(view), `U+${code.toString(16).padStart(4, '0')}`).toBe(JSON.stringify(view));
  }
});
