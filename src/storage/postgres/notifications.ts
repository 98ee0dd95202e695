// LISTEN on the store's channels, on a connection of its own: every instance's event
// readers (SSE streams, webhook deliveries) wake up when any instance commits events, and
// every instance learns when the first API key is stored. The tables stay the truth; a
// notification only says "read it". A lost connection is reopened (with a second's
// pause); `onListening` says when notifications can be missed (false) and when they are
// heard again (true): what was sent meanwhile is lost, so the store reads again then.
import pg from 'pg';

export interface Notifications {
  close(): Promise<void>;
}

export function listenForNotifications(options: {
  url: string;
  types: pg.CustomTypesConfig;
  /** Channel → what to do on its notification (given its payload). */
  channels: Record<string, (payload: string) => void>;
  onListening?: (listening: boolean) => void;
}): Notifications {
  let client: pg.Client | undefined;
  let closed = false;
  let retry: NodeJS.Timeout | undefined;

  async function connect(): Promise<void> {
    if (closed) return;
    const next = new pg.Client({ connectionString: options.url, types: options.types, application_name: 'sessions-api-listen' });
    next.on('notification', ({ channel, payload }) => options.channels[channel]?.(payload ?? ''));
    next.on('error', () => reconnect(next));
    next.on('end', () => reconnect(next));
    try {
      await next.connect();
      await next.query(Object.keys(options.channels).map((channel) => `LISTEN ${channel}`).join(';\n'));
      if (closed) {
        await next.end().catch(() => undefined);
        return;
      }
      client = next;
      options.onListening?.(true);
    } catch {
      reconnect(next);
    }
  }

  function reconnect(failed: pg.Client): void {
    if (closed || retry || (client !== undefined && client !== failed)) return;
    if (client === failed) options.onListening?.(false);
    client = undefined;
    failed.end().catch(() => undefined);
    retry = setTimeout(() => {
      retry = undefined;
      void connect();
    }, 1000);
    retry.unref();
  }

  void connect();
  return {
    async close() {
      closed = true;
      if (retry) clearTimeout(retry);
      await client?.end().catch(() => undefined);
    },
  };
}
