// The event-loop stall while a second process holds the database's write lock: the
// server's app (in this process) serves reads, writes and health checks meanwhile, and
// perf_hooks.monitorEventLoopDelay records the longest stall.
// Usage: lock-probe.ts [hold seconds, default 10]; prints one JSON line.
import { spawn } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { buildApp } from '../src/app.js';
import { systemClock } from '../src/domain/clock.js';
import { openSqliteStore } from '../src/storage/sqlite/sqlite-store.js';
import { createSweeper } from '../src/sweeper.js';
// Its database goes when this exits; interrupted, the holder is stopped first.
import { temporaryDatabase, tracked } from './lib.js';

const holdSeconds = Number(process.argv[2] ?? 10);
const databasePath = temporaryDatabase('sessions-api-lock-probe-');
const store = openSqliteStore(databasePath);
const sweeper = createSweeper({ store, clock: systemClock, retentionMs: 60_000, intervalMs: 60_000, batchSize: 100 });
const app = buildApp({ store, clock: systemClock, sessionDefaults: {}, retentionMs: 60_000, sweeper });
await app.ready();

const call = async (method: 'GET' | 'POST', url: string, payload?: object) => {
  const started = performance.now();
  const response = await app.inject({ method, url, payload });
  return { status: response.statusCode, ms: performance.now() - started, body: response.json() };
};
const agentId = (await call('POST', '/api/agents', { characterJson: { name: 'Eliza' } })).body.data.character.id;
const sessionId = (await call('POST', '/api/messaging/sessions', { agentId, userId: '5f1c1c8e-4a3b-4c7d-9e2f-0a1b2c3d4e5f' })).body.sessionId;

/**
 * Reads every 50 ms, a heartbeat every 250 ms and a health check every second, until
 * `done` resolves; with the longest event-loop stall meanwhile.
 */
async function workload(done: Promise<void>) {
  let finished = false;
  void done.then(() => (finished = true));
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const reads: number[] = [];
  const writes: { status: number; ms: number }[] = [];
  const health: number[] = [];
  const pending: Promise<unknown>[] = [];
  for (let tick = 0; !finished; tick += 1) {
    reads.push((await call('GET', `/api/messaging/sessions/${sessionId}`)).ms);
    if (tick % 5 === 0) pending.push(call('POST', `/api/messaging/sessions/${sessionId}/heartbeat`).then((r) => writes.push(r)));
    if (tick % 20 === 0) pending.push(call('GET', '/api/messaging/sessions/health').then((r) => health.push(r.status)));
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await Promise.all(pending);
  delay.disable();
  const sorted = [...reads].sort((a, b) => a - b);
  const count = (status: number) => writes.filter((write) => write.status === status).length;
  return {
    maxEventLoopDelayMs: round(delay.max / 1e6),
    reads: sorted.length,
    readP50Ms: round(sorted[Math.floor(sorted.length / 2)] ?? 0),
    readMaxMs: round(sorted.at(-1) ?? 0),
    writes: writes.length,
    writesCommitted: count(200),
    writes503: count(503),
    writeMaxMs: round(Math.max(...writes.map((write) => write.ms))),
    health: [...new Set(health)],
  };
}
const round = (ms: number) => Math.round(ms * 10) / 10;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// The same workload without the lock first: on a shared CPU the stall is read against it.
const baseline = await workload(sleep(holdSeconds * 1000));

// The second process: takes the write lock, holds it, then commits.
const holderScript = `
  const Database = require('better-sqlite3');
  const db = new Database(process.argv[1]);
  db.exec('BEGIN IMMEDIATE');
  console.log('locked');
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ${holdSeconds * 1000});
  db.exec('COMMIT');
  db.close();`;
const holder = tracked(spawn(process.execPath, ['-e', holderScript, databasePath], { stdio: ['ignore', 'pipe', 'inherit'] }));
await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));
const locked = await workload(new Promise<void>((resolve) => holder.once('exit', () => resolve())));

const healthAfter = (await call('GET', '/api/messaging/sessions/health')).status;
await app.close();
console.log(JSON.stringify({ holdSeconds, baseline, locked, healthAfter }));
