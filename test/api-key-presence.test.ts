// Whether API keys exist, on PostgreSQL without a query per request: absence is kept only
// while notifications are heard, and only when found while they were; presence for good.
import { describe, expect, it } from 'vitest';
import { apiKeyPresence } from '../src/storage/postgres/api-key-presence.js';

function asking(answer: boolean) {
  const asked = { count: 0, answer };
  return { asked, ask: async () => (asked.count++, asked.answer) };
}

describe('API key presence (PostgreSQL)', () => {
  it('asks on every call while not listening', async () => {
    const presence = apiKeyPresence();
    const { asked, ask } = asking(false);
    for (let i = 0; i < 3; i++) expect(await presence.has(ask)).toBe(false);
    expect(asked.count).toBe(3);
  });

  it('remembers absence found while listening until a key is stored or listening stops', async () => {
    const presence = apiKeyPresence();
    const { asked, ask } = asking(false);
    presence.listening(true);
    expect(await presence.has(ask)).toBe(false);
    expect(await presence.has(ask)).toBe(false);
    expect(asked.count).toBe(1);

    presence.listening(false);
    expect(await presence.has(ask)).toBe(false);
    expect(asked.count).toBe(2);
    presence.listening(true);
    expect(await presence.has(ask)).toBe(false);
    expect(await presence.has(ask)).toBe(false);
    expect(asked.count).toBe(3);

    presence.stored();
    expect(await presence.has(ask)).toBe(true);
    expect(asked.count).toBe(3);
  });

  it('keeps no absence asked across a change of listening, and a key stored during the question counts', async () => {
    const presence = apiKeyPresence();
    presence.listening(true);
    let count = 0;
    expect(await presence.has(async () => (count++, presence.listening(false), presence.listening(true), false))).toBe(false);
    expect(await presence.has(async () => (count++, false))).toBe(false);
    expect(await presence.has(async () => (count++, false))).toBe(false);
    expect(count).toBe(2);

    const other = apiKeyPresence();
    other.listening(true);
    expect(await other.has(async () => (other.stored(), false))).toBe(true);
    expect(await other.has(async () => false)).toBe(true);
  });

  it('on a notification asks again, and believes the answer: the keys it names may be another schema\'s', async () => {
    const presence = apiKeyPresence();
    const { asked, ask } = asking(false);
    presence.listening(true);
    expect(await presence.has(ask)).toBe(false);
    presence.notified();
    expect(await presence.has(ask)).toBe(false); // asked: still none here
    expect(await presence.has(ask)).toBe(false); // and remembered again
    expect(asked.count).toBe(2);
    presence.notified();
    asked.answer = true;
    expect(await presence.has(ask)).toBe(true);
    // A notification while a question is out: its "none" is not remembered.
    const other = apiKeyPresence();
    other.listening(true);
    let count = 0;
    expect(await other.has(async () => (count++, other.notified(), false))).toBe(false);
    expect(await other.has(async () => (count++, false))).toBe(false);
    expect(count).toBe(2);
  });

  it('once keys exist, never asks again', async () => {
    const presence = apiKeyPresence();
    const { asked, ask } = asking(true);
    expect(await presence.has(ask)).toBe(true);
    asked.answer = false;
    expect(await presence.has(ask)).toBe(true);
    expect(asked.count).toBe(1);
  });
});
