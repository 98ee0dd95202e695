// LISTEN on the store's channels, on a connection of its own: every instance's event
// readers (SSE streams, webhook deliveries) wake up when any instance commits events, and
// every instance learns when the first API key is stored. The tables stay the truth; a
// notification only says "read it". A lost connection is reopened (with a second's
// pause); `onListening` says when notifications can be missed (false) and when they are
// heard again (true): what was sent meanwhile is lost, so the store reads again then.
// The connection is idle between notifications: a firewall or NAT that forgets an idle
// connection drops it without a word, and it would wait for notifications for ever (with
// API keys turned on elsewhere unheard). So TCP keep-alive keeps it known on the way, and a
// `SELECT 1` every HEARTBEAT_MS, answered within ANSWER_WITHIN_MS, finds one that is gone.
import pg from 'pg';

const HEARTBEAT_MS = 30_000;
const ANSWER_WITHIN_MS = 10_000;
const KEEP_ALIVE_DELAY_MS = 10_000;

export interface Notifications {
  close(): Promise<void>;
}

export function listenForNotifications(options: {
  url: string;
  types: pg.CustomTypesConfig;
  /** Channel → what to do on its notification (given its payload). */
  channels: Record<string, (payload: string) => void>;
  onListening?: (listening: boolean) => void;
  /** How often the connection is asked a `SELECT 1`, and how soon it must answer. */
  heartbeat?: { everyMs: number; answerWithinMs: number };
}): Notifications {
  const { everyMs, answerWithinMs } = options.heartbeat ?? { everyMs: HEARTBEAT_MS, answerWithinMs: ANSWER_WITHIN_MS };
  let client: pg.Client | undefined;
  let closed = false;
  let retry: NodeJS.Timeout | undefined;
  let heartbeat: NodeJS.Timeout | undefined;

  function beat(listening: pg.Client): void {
    let asking = false;
    heartbeat = setInterval(() => {
      if (asking) return;
      asking = true;
      listening.query('SELECT 1').then(
        () => (asking = false),
        () => reconnect(listening),
      );
    }, everyMs);
    heartbeat.unref();
  }

  async function connect(): Promise<void> {
    if (closed) return;
    const next = new pg.Client({
      connectionString: options.url,
      types: options.types,
      application_name: 'sessions-api-listen',
      keepAlive: true,
      keepAliveInitialDelayMillis: KEEP_ALIVE_DELAY_MS,
      // Reopened while the path is still frozen, a connection never answered is tried again, not waited on.
      connectionTimeoutMillis: answerWithinMs,
      query_timeout: answerWithinMs,
    });
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
      beat(next);
      options.onListening?.(true);
    } catch {
      reconnect(next);
    }
  }

  function reconnect(failed: pg.Client): void {
    if (closed || retry || (client !== undefined && client !== failed)) return;
    if (client === failed) options.onListening?.(false);
    clearInterval(heartbeat);
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
      clearInterval(heartbeat);
      await client?.end().catch(() => undefined);
    },
  };
}
