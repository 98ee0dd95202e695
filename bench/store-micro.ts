// In-process microbenchmark of the SQLite store's write path (no HTTP): µs per created
// session (batches of 50 concurrent creates, as group commit sees them under load), per
// heartbeat-like update, per purged session, and per count at the size reached. CPU
// time of this process, so it is less sensitive to a shared machine than req/s.
// Usage: node --import tsx bench/store-micro.ts [sessions=20000]
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTiming, resolveTimeoutConfig } from '../src/domain/timeout-policy.js';
import { announce } from '../src/events/due-events.js';
import { sessionEvent, withEvents } from '../src/events/event-records.js';
import { openSqliteStore } from '../src/storage/sqlite/sqlite-store.js';
import type { SessionRecord } from '../src/storage/store.js';

const sessions = Number(process.argv[2] ?? 20_000);
const directory = mkdtempSync(join(tmpdir(), 'store-micro-'));
const store = openSqliteStore(join(directory, 's.db'));
const agentId = randomUUID();
const T0 = Date.UTC(2026, 0, 1);
await store.insertAgent({ id: agentId, name: 'B', settings: {}, createdAt: T0 });
const config = resolveTimeoutConfig({ timeoutMinutes: 30, autoRenew: true, maxDurationMinutes: 720, warningThresholdMinutes: 5 });

const cpu = () => process.cpuUsage().user + process.cpuUsage().system;
const made: SessionRecord[] = [];
async function create(n: number, now: number) {
  for (let i = 0; i < n; i += 50) {
    await Promise.all(
      Array.from({ length: 50 }, () => {
        const session: SessionRecord = { id: randomUUID(), agentId, userId: randomUUID(), metadata: { platform: 'bench' }, status: 'active', announced: 'nothing', ...startTiming(now, config) };
        made.push(session);
        return store.insertSession(session, withEvents(undefined, (s) => [sessionEvent('session.created', s, now)]));
      }),
    );
  }
}
await create(2_000, T0); // warm up
let started = cpu();
await create(sessions, T0 + 1000);
const createUs = (cpu() - started) / sessions;

started = cpu();
const counts = 2000;
for (let i = 0; i < counts; i += 1) await store.listSessions({ agentId, status: 'active', now: T0 + 2000, purgeCutoff: T0 - 1, limit: 20, offset: 0 });
const listUs = (cpu() - started) / counts;
started = cpu();
for (let i = 0; i < counts; i += 1) await store.countSessions({ now: T0 + 2000, purgeCutoff: T0 - 1 });
const countUs = (cpu() - started) / counts;

const all = made.length;
// What a sweeper's pass does before it purges (a session with an announcement due is kept).
const cutoff = T0 + 1000 * 60 * 60 * 24;
while ((await store.announceDue(cutoff, 1000, announce)) > 0);
started = cpu();
let purged = 0;
for (;;) {
  const { purged: done, more } = await store.purgeExpired(cutoff, 500);
  purged += done;
  if (!more) break;
}
const purgeUs = (cpu() - started) / Math.max(1, purged);
await store.close();
rmSync(directory, { recursive: true, force: true });
console.log(JSON.stringify({ sessions: all, createUs: +createUs.toFixed(1), listUs: +listUs.toFixed(1), countUs: +countUs.toFixed(1), purged, purgeUs: +purgeUs.toFixed(1) }));
