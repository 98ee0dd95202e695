// Child process of the scale benchmark: runs the server's own sweeper on a database in
// which every session has expired, and reports how long it took and the longest the
// event loop was blocked meanwhile (what a request arriving then would have waited).
// Usage: sweep-probe.ts <database> <now, epoch ms>
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { loadConfig } from '../src/config.js';
import { openSqliteStore } from '../src/storage/sqlite/sqlite-store.js';
import { createSweeper } from '../src/sweeper.js';

const [databasePath, nowArgument] = process.argv.slice(2);
const now = Number(nowArgument);
const { sweepBatchSize } = loadConfig({});
const store = openSqliteStore(databasePath!);
const sessions = (await store.countSessions({ now: 0, purgeCutoff: -1 })).total;

async function timedSweep(retentionMs: number) {
  const sweeper = createSweeper({ store, clock: { now: () => now }, retentionMs, intervalMs: 60_000, batchSize: sweepBatchSize });
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const started = performance.now();
  const report = await sweeper.sweep();
  const seconds = (performance.now() - started) / 1000;
  delay.disable();
  if (sweeper.lastError()) throw sweeper.lastError();
  return { report, seconds: Math.round(seconds * 100) / 100, maxDelayMs: Math.round((delay.max / 1e6) * 10) / 10 };
}

// First only expiring (announcing what is due; retention longer than anything stored), then only purging.
const mark = await timedSweep(now);
const purge = await timedSweep(0);
await store.close();
console.log(
  JSON.stringify({
    sessions,
    marked: mark.report.announced,
    markSeconds: mark.seconds,
    markMaxEventLoopDelayMs: mark.maxDelayMs,
    purged: purge.report.purged,
    purgeSeconds: purge.seconds,
    purgeMaxEventLoopDelayMs: purge.maxDelayMs,
  }),
);
