import { it } from 'vitest';
import { createEventPump } from '../src/events/due-events.js';
import { openPostgresStore } from '../src/storage/postgres/postgres-store.js';
import { openSqliteStore } from '../src/storage/sqlite/sqlite-store.js';
import { createTestDatabase } from './helpers/postgres-database.js';
import { MINUTE, T0 } from './helpers/fake-clock.js';
import { agentRecord, sessionRecord } from './store/records.js';

const N = Number(process.env.N ?? 3000);
for (const budget of [3, 30, 100]) {
  it(`pg backlog ${N}, budget ${budget}`, { timeout: 600_000 }, async () => {
    const database = await createTestDatabase();
    const store = await openPostgresStore({ url: database.url });
    try {
      const agent = agentRecord();
      await store.insertAgent(agent);
      for (let i = 0; i < N; i += 100) await Promise.all(Array.from({ length: 100 }, () => store.insertSession(sessionRecord(agent.id))));
      const now = T0 + 31 * MINUTE; // warning and expiry both due
      const pump = createEventPump({ store, clock: { now: () => now }, batchBudgetMs: budget });
      const started = performance.now();
      let lagMax = 0;
      let last = performance.now();
      const probe = setInterval(() => { const t = performance.now(); lagMax = Math.max(lagMax, t - last - 5); last = t; }, 5);
      const total = await pump.tick();
      clearInterval(probe);
      console.log(`budget ${budget}: ${total} announcements in ${(performance.now() - started).toFixed(0)} ms, max loop lag ${lagMax.toFixed(1)} ms`);
    } finally {
      await store.close();
      await database.drop();
    }
  });
}
