// PostgreSQL migration 6 keys webhook deliveries by (webhook_id, id): deliveries stored
// before it are still listed, newest first, and deleted with their webhook.
import pg from 'pg';
import { expect, it } from 'vitest';
import { openPostgresStore } from '../src/storage/postgres/postgres-store.js';
import { createTestDatabase, migrateTo } from './helpers/postgres-database.js';

it('PostgreSQL: migration 6 keeps the deliveries stored before it, in order', { timeout: 30_000 }, async () => {
  const database = await createTestDatabase();
  try {
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      await migrateTo(client, 5);
      for (const id of ['w1', 'w2']) {
        await client.query(
          `INSERT INTO webhooks (id, url, secret, types, agent_id, agent_ids, created_at, cursor, attempts, next_attempt_at)
           VALUES ($1, 'https://hooks.example.com/a', 'whsec_x', NULL, NULL, NULL, 0, 0, 0, 0)`,
          [id],
        );
      }
      for (const [webhookId, eventId] of [['w1', 1], ['w2', 1], ['w1', 2], ['w1', 3]] as const) {
        await client.query('INSERT INTO webhook_deliveries (webhook_id, event_id, attempt, attempted_at, status_code) VALUES ($1, $2, 1, $2, 204)', [webhookId, eventId]);
      }
    } finally {
      await client.end();
    }
    const store = await openPostgresStore({ url: database.url, poolSize: 2 });
    try {
      expect((await store.listDeliveries('w1', 10)).map((delivery) => delivery.eventId)).toEqual(['3', '2', '1']);
      expect(await store.deleteWebhook('w1')).toBe(true);
      expect(await store.listDeliveries('w1', 10)).toEqual([]);
      expect((await store.listDeliveries('w2', 10)).map((delivery) => delivery.eventId)).toEqual(['1']);
    } finally {
      await store.close();
    }
  } finally {
    await database.drop();
  }
});
