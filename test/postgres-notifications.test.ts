// The connection that LISTENs for the store's notifications: idle between them, it is asked
// a `SELECT 1` every so often, so that one gone without a word (a firewall or NAT forgot it,
// a partition without a reset) is found and opened again, not waited on for ever.
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { listenForNotifications } from '../src/storage/postgres/notifications.js';
import { freezingProxy } from './helpers/freezing-proxy.js';
import { createTestDatabase } from './helpers/postgres-database.js';
import { until } from './helpers/until.js';

describe('the LISTEN connection', { timeout: 30_000 }, () => {
  it('finds a connection that stopped answering, says it no longer listens, and listens again once it can', async () => {
    const database = await createTestDatabase();
    const proxy = await freezingProxy(database.url);
    const admin = new pg.Client({ connectionString: database.url });
    const listening: boolean[] = [];
    const heard: string[] = [];
    const notifications = listenForNotifications({
      url: proxy.url,
      types: {} as pg.CustomTypesConfig,
      channels: { test_channel: (payload) => heard.push(payload) },
      onListening: (on) => listening.push(on),
      heartbeat: { everyMs: 100, answerWithinMs: 300 },
    });
    try {
      await admin.connect();
      await until('it listens', () => listening.length === 1);
      proxy.freeze();
      await until('it finds the connection gone', () => listening.length === 2, { ms: 5000 });
      proxy.thaw();
      await until('it listens again', () => listening.length === 3, { ms: 5000 });
      expect(listening).toEqual([true, false, true]);
      await admin.query("NOTIFY test_channel, 'after'");
      await until('the notification is heard on the new connection', () => heard.length === 1);
      expect(heard).toEqual(['after']);
    } finally {
      await notifications.close();
      await admin.end();
      await proxy.close();
      await database.drop();
    }
  });

  it('tries again when a reopening is not answered either, as for a connection that was open', async () => {
    const database = await createTestDatabase();
    const proxy = await freezingProxy(database.url);
    const listening: boolean[] = [];
    const notifications = listenForNotifications({
      url: proxy.url,
      types: {} as pg.CustomTypesConfig,
      channels: { test_channel: () => undefined },
      onListening: (on) => listening.push(on),
      heartbeat: { everyMs: 100, answerWithinMs: 300 },
    });
    try {
      await until('it listens', () => listening.length === 1);
      proxy.freeze();
      await until('it finds the connection gone', () => listening.length === 2, { ms: 5000 });
      // Reopened while the path is still frozen (a connection accepted, its startup never
      // answered): each attempt given up after the answer time (0.3 s), then tried again.
      const socketsAtLoss = proxy.sockets.length;
      await until('a second attempt', () => (proxy.sockets.length - socketsAtLoss) / 2 >= 2, { ms: 5000 });
    } finally {
      await notifications.close();
      proxy.thaw();
      await proxy.close();
      await database.drop();
    }
  });
});
