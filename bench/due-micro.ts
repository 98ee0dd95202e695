// In-process microbenchmark of a burst of due warnings on SQLite (no HTTP): N sessions whose
// warnings fall due in the same second, announced by the pump's tick as the server runs it
// (its batch sizing, its 5 ms budget), each event's SSE frame built as one stream would.
// Prints µs of CPU per warning (the process with its checkpointer thread), the batches
// (count, median and longest, the first one's), and the longest event-loop delay.
// The database is built once per N under bench/tmp/db and copied for each run.
// Usage: node --import tsx bench/due-micro.ts [sessions=100000]
// SRC=<a tree's src> measures another tree's code on the same database (A/B), e.g.
//   SRC=/work/wt/base/src taskset -c 1 node --import tsx bench/due-micro.ts
import { randomUUID } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type * as Pump from '../src/events/due-events.js';
import type * as Stream from '../src/events/event-stream.js';
import type * as Policy from '../src/domain/timeout-policy.js';
import type * as Sqlite from '../src/storage/sqlite/sqlite-store.js';
import type { EventRecord, SessionRecord, Store } from '../src/storage/store.js';

const here = dirname(fileURLToPath(import.meta.url));
const src = process.env.SRC ?? join(here, '../src');
const load = <T>(path: string): Promise<T> => import(pathToFileURL(resolve(src, path)).href) as Promise<T>;
const { openSqliteStore } = await load<typeof Sqlite>('storage/sqlite/sqlite-store.ts');
const { startTiming } = await load<typeof Policy>('domain/timeout-policy.ts');
const { createEventPump } = await load<typeof Pump>('events/due-events.ts');
const { frame } = await load<typeof Stream>('events/event-stream.ts');

const count = Number(process.argv[2] ?? 100_000);
const now = 1_800_000_000_000;
const directory = join(here, 'tmp/db');
const master = join(directory, `due-${count}.db`);
if (!existsSync(master)) {
  mkdirSync(directory, { recursive: true });
  const store = openSqliteStore(master);
  const agentId = randomUUID();
  await store.insertAgent({ id: agentId, name: 'Bench', settings: {}, createdAt: now });
  // As bench/events.ts: warnings at now + 5 min, all within one second.
  const timing = { timeoutMinutes: 10, autoRenew: false, maxDurationMinutes: 600, warningThresholdMinutes: 5 };
  for (let start = 0; start < count; start += 2000) {
    const batch: Array<Promise<boolean>> = [];
    for (let i = start; i < Math.min(count, start + 2000); i += 1) {
      const session: SessionRecord = { id: randomUUID(), agentId, userId: randomUUID(), metadata: {}, announced: 'nothing', status: 'active', ...startTiming(now + (i % 1000), timing) };
      batch.push(store.insertSession(session));
    }
    await Promise.all(batch);
  }
  await store.close();
}
const run = mkdtempSync(join(directory, 'run-'));
copyFileSync(master, join(run, 'sessions.db'));
const store = openSqliteStore(join(run, 'sessions.db'));
let delivered = 0;
let bytes = 0;
store.onEventsWritten((events?: EventRecord[]) => {
  for (const event of events ?? []) {
    delivered += 1;
    bytes += frame(event).length;
  }
});
const batches: number[] = [];
const timed: Store = {
  ...store,
  async announceDue(...args) {
    const started = performance.now();
    const fired = await store.announceDue(...args);
    batches.push(performance.now() - started);
    return fired;
  },
};
const pump = createEventPump({ store: timed, clock: { now: () => now + 5 * 60_000 + 1000 } });
const delay = monitorEventLoopDelay({ resolution: 1 });
delay.enable();
await new Promise((done) => setTimeout(done, 50));
delay.reset();
const cpu = process.cpuUsage();
const started = performance.now();
const fired = await pump.tick();
const wallMs = performance.now() - started;
const { user, system } = process.cpuUsage(cpu);
delay.disable();
await store.close();
rmSync(run, { recursive: true, force: true });
const sorted = [...batches].sort((a, b) => a - b);
const ms = (value: number | undefined) => Math.round((value ?? 0) * 10) / 10;
console.log(
  JSON.stringify({
    warnings: fired,
    delivered,
    frameBytes: bytes,
    wallMs: Math.round(wallMs),
    cpuUsPerWarning: Math.round(((user + system) / fired) * 10) / 10,
    batches: batches.length,
    batchMedianMs: ms(sorted[sorted.length >> 1]),
    batchLongestMs: ms(sorted.at(-1)),
    firstBatchMs: ms(batches[0]),
    maxEventLoopDelayMs: ms(delay.max / 1e6),
  }),
);
