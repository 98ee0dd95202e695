import { describe, expect, it } from 'vitest';
import { sessionCursorOf, sessionPositionOf } from '../src/domain/session-order.js';
import { T0 } from './helpers/fake-clock.js';

describe('session cursors', () => {
  it('name a position as the session they were made of, read back in lower case however a proxy or client cased them', () => {
    const session = { createdAt: T0, id: '9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d' };
    expect(sessionPositionOf(sessionCursorOf(session))).toEqual(session);
    expect(sessionPositionOf(sessionCursorOf(session).toUpperCase())).toEqual(session);
  });
});
