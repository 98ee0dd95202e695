// Who wrote a message (src/domain/message-author.ts).
import { describe, expect, it } from 'vitest';
import { messageAuthor } from '../src/domain/message-author.js';

describe('messageAuthor', () => {
  const session = { userId: 'user', agentId: 'agent' };

  it("is the user without an authorId, the named one when it is the session's user or agent", () => {
    expect(messageAuthor(session, undefined)).toEqual({ authorId: 'user', isAgent: false });
    expect(messageAuthor(session, 'user')).toEqual({ authorId: 'user', isAgent: false });
    expect(messageAuthor(session, 'agent')).toEqual({ authorId: 'agent', isAgent: true });
  });

  it('is nobody for anyone else', () => {
    expect(messageAuthor(session, 'someone')).toBeUndefined();
  });

  it("is the user when the session's user has the agent's id, unless the message names that id", () => {
    const own = { userId: 'agent', agentId: 'agent' };
    expect(messageAuthor(own, undefined)).toEqual({ authorId: 'agent', isAgent: false });
    expect(messageAuthor(own, 'agent')).toEqual({ authorId: 'agent', isAgent: true });
  });
});
