// A page of a session's stored messages as the API shows them: the store keeps each
// message's view as JSON (what getSessionMessages sends as is), read back here parsed.
import type { components } from '../../generated/api.js';
import type { MessageQuery, Store } from '../../src/storage/store.js';

export interface StoredMessages {
  messages: Array<components['schemas']['Message']>;
  positions: number[];
  hasMore: boolean;
}

export async function storedMessages(store: Store, query: MessageQuery): Promise<StoredMessages> {
  const page = await store.listMessageViews(query);
  return {
    messages: page.messages.map((view) => JSON.parse(view.json)),
    positions: page.messages.map((view) => view.position),
    hasMore: page.hasMore,
  };
}
