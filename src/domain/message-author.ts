// Who wrote a message: the session's user or its agent, named by `authorId` or, without
// one, the user.

export interface MessageAuthor {
  authorId: string;
  /** The agent's message (an agent reply a waiting client receives), not the user's. */
  isAgent: boolean;
}

/** The message's author, or undefined when `requested` is neither the session's user nor its agent. */
export function messageAuthor(session: { userId: string; agentId: string }, requested: string | undefined): MessageAuthor | undefined {
  const authorId = requested ?? session.userId;
  if (authorId !== session.userId && authorId !== session.agentId) return undefined;
  // A session whose user has the agent's id (the seed's own example): a message that names no author is the user's.
  return { authorId, isAgent: authorId === session.agentId && (requested !== undefined || session.userId !== session.agentId) };
}
