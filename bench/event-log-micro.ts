// In-process microbenchmark of what the event log adds to a write on SQLite (no HTTP):
// µs of CPU per created session with its `session.created` event and without it
// (batches of 50 concurrent creates, as group commit sees them under load), and the
// share of that difference spent building the event's JSON. CPU time of this process,
// so it is less sensitive to a shared machine than req/s; rounds alternate off and on.
// Usage: node --import tsx bench/event-log-micro.ts [sessions=10000] [rounds=3] [on|off]
// With `on` or `off`, only that path runs (once, after its warm-up): for instruction
// counts, which do not depend on the machine's load, e.g.
//   valgrind --tool=callgrind --callgrind-out-file=/dev/null node --import tsx bench/event-log-micro.ts 3000 1 on
// and the same with `off`: (on − off) / sessions is what one event costs.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveTimeoutConfig, startTiming } from '../src/domain/timeout-policy.js';
import { sessionEvent, withEvents } from '../src/events/event-records.js';
import { openSqliteStore } from '../src/storage/sqlite/sqlite-store.js';
import type { SessionRecord } from '../src/storage/store.js';

const sessions = Number(process.argv[2] ?? 10_000);
const rounds = Number(process.argv[3] ?? 3);
const directory = mkdtempSync(join(tmpdir(), 'event-log-micro-'));
const store = openSqliteStore(join(directory, 's.db'));
const agentId = randomUUID();
const T0 = Date.UTC(2026, 0, 1);
await store.insertAgent({ id: agentId, name: 'B', settings: {}, createdAt: T0 });
const config = resolveTimeoutConfig({ timeoutMinutes: 30, autoRenew: true, maxDurationMinutes: 720, warningThresholdMinutes: 5 });
const cpu = () => {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
};
const session = (now: number): SessionRecord => ({
  id: randomUUID(),
  agentId,
  userId: randomUUID(),
  metadata: { platform: 'bench', username: 'ada' },
  status: 'active',
  announced: 'nothing',
  ...startTiming(now, config),
});

/** µs of CPU per create of `n` sessions, 50 at a time, with or without the event. */
async function create(n: number, withLog: boolean): Promise<number> {
  const started = cpu();
  for (let i = 0; i < n; i += 50) {
    await Promise.all(
      Array.from({ length: 50 }, () => {
        const now = T0 + i;
        return store.insertSession(session(now), withLog ? withEvents(undefined, (s) => [sessionEvent('session.created', s, now)]) : undefined);
      }),
    );
  }
  return (cpu() - started) / n;
}

/** µs of CPU to build one event's row JSON (what appendEvents stores). */
function buildJson(n: number): number {
  const made = Array.from({ length: n }, () => session(T0));
  const started = cpu();
  let length = 0;
  for (const s of made) length += JSON.stringify(sessionEvent('session.created', s, T0).data).length;
  if (length === 0) throw new Error('unreachable');
  return (cpu() - started) / n;
}

const only = process.argv[4];
if (only === 'on' || only === 'off') {
  await create(2000, only === 'on');
  const us = await create(sessions, only === 'on');
  await store.close();
  rmSync(directory, { recursive: true, force: true });
  console.log(JSON.stringify({ sessions, path: only, us: +us.toFixed(1) }));
  process.exit(0);
}
await create(2000, true); // warm up both paths
await create(2000, false);
const off: number[] = [];
const on: number[] = [];
for (let round = 0; round < rounds; round += 1) {
  off.push(await create(sessions, false));
  on.push(await create(sessions, true));
}
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const json = buildJson(sessions);
await store.close();
rmSync(directory, { recursive: true, force: true });
const offUs = median(off);
const onUs = median(on);
console.log(JSON.stringify({ sessions, rounds, offUs: +offUs.toFixed(1), onUs: +onUs.toFixed(1), eventUs: +(onUs - offUs).toFixed(1), onOverOff: +(offUs / onUs).toFixed(3), jsonUs: +json.toFixed(1) }));
