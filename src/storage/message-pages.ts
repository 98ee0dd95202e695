// A page of a session's message views, as both stores cut it: at most `limit`, and ended by
// the message whose view reaches `maxChars` (X19: 30 pages at once of 100 messages at their
// documented maxima, 7.4 MB each, ran a 128 MB heap out).
import type { MessageView } from './store.js';

/** The views of `rows` (in the direction of travel) a page takes; `hasMore` when a row is left. */
export function pageOfViews(rows: Iterable<readonly [number, string]>, limit: number, maxChars = Infinity): { messages: MessageView[]; hasMore: boolean } {
  const messages: MessageView[] = [];
  let chars = 0;
  for (const [position, json] of rows) {
    if (messages.length === limit || chars >= maxChars) return { messages, hasMore: true };
    messages.push({ position, json });
    chars += json.length;
  }
  return { messages, hasMore: false };
}
