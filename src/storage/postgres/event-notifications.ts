// LISTEN on the events channel, on a connection of its own: every instance's event
// readers (SSE streams, webhook deliveries) wake up when any instance commits events.
// The log stays the truth; a notification only says "read it". A lost connection is
// reopened (with a second's pause) and wakes the readers once, as events may have been
// missed meanwhile.
import pg from 'pg';

export interface EventNotifications {
  close(): Promise<void>;
}

export function listenForEvents(options: {
  url: string;
  channel: string;
  types: pg.CustomTypesConfig;
  onNotify: () => void;
}): EventNotifications {
  let client: pg.Client | undefined;
  let closed = false;
  let retry: NodeJS.Timeout | undefined;

  async function connect(): Promise<void> {
    if (closed) return;
    const next = new pg.Client({ connectionString: options.url, types: options.types, application_name: 'sessions-api-listen' });
    next.on('notification', () => options.onNotify());
    next.on('error', () => reconnect(next));
    next.on('end', () => reconnect(next));
    try {
      await next.connect();
      await next.query(`LISTEN ${options.channel}`);
      if (closed) {
        await next.end().catch(() => undefined);
        return;
      }
      client = next;
      options.onNotify();
    } catch {
      reconnect(next);
    }
  }

  function reconnect(failed: pg.Client): void {
    if (closed || retry || (client !== undefined && client !== failed)) return;
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
