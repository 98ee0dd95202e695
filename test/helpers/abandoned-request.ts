// A POST its client gives up on: aborted, and its connection closed with it, as a client
// that goes away does. (With the fetch's own pool the connection stayed open 4 s after the
// abort, and closing the app waited for it.)
import { Agent, fetch } from 'undici';

export function abandonedRequest(url: string, headers: Record<string, string>, body: unknown) {
  const connections = new Agent();
  const controller = new AbortController();
  const answer = fetch(url, { method: 'POST', headers, body: JSON.stringify(body), signal: controller.signal, dispatcher: connections })
    .then((response) => response.text())
    .catch((error: Error) => error.name);
  return {
    /** The answer's text, or the error's name ('AbortError' once aborted). */
    answer,
    async abort() {
      controller.abort();
      await connections.destroy();
    },
  };
}
