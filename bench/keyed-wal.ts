// In-process: what an idempotency record adds to a create in the SQLite store, counted in
// WAL frames (pages written per create; each frame costs the commit two writes and the
// checkpoint a read and a write), which the load on a shared machine does not change. A
// fresh database; creates in group-commit batches of 10 and of 50; the checkpointer held
// off so the WAL keeps every frame. Store CPU µs per create beside it (noisy when loaded).
// Usage: node --import tsx bench/keyed-wal.ts [creates=2000]
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sessionId } from '../src/domain/session-id.js';
import { resolveTimeoutConfig, startTiming } from '../src/domain/timeout-policy.js';
import { sessionEvent, withEvents } from '../src/events/event-records.js';
import { IDEMPOTENCY_TTL_MS } from '../src/http/idempotency.js';
import { createdSessionView } from '../src/views.js';
import { openSqliteStore } from '../src/storage/sqlite/sqlite-store.js';
import type { Carried, SessionRecord } from '../src/storage/store.js';

const creates = Number(process.argv[2] ?? 2_000);
const T0 = Date.UTC(2026, 0, 1);
const config = resolveTimeoutConfig({ timeoutMinutes: 30, autoRenew: true, maxDurationMinutes: 720, warningThresholdMinutes: 5 });
const cpu = () => {
  const { user, system } = process.cpuUsage();
  return user + system;
};

async function measure(batch: number, keyed: boolean) {
  const directory = mkdtempSync(join(tmpdir(), 'keyed-wal-'));
  const file = join(directory, 's.db');
  // The checkpointer starts at a sixteenth of the cap: never, here.
  const store = openSqliteStore(file, { walCapBytes: 2 ** 50 });
  const agentId = randomUUID();
  await store.insertAgent({ id: agentId, name: 'B', settings: {}, createdAt: T0 });
  const create = (now: number) => {
    const session: SessionRecord = { id: sessionId(), agentId, userId: '5f1c1c8e-4a3b-4c7d-9e2f-0a1b2c3d4e5f', metadata: { platform: 'bench' }, status: 'active', announced: 'nothing', ...startTiming(now, config) };
    const record: Carried<SessionRecord> | undefined = keyed
      ? { idempotency: (written) => ({ scope: 'bench', key: randomUUID(), fingerprint: 'f'.repeat(43), status: 201, body: JSON.stringify(createdSessionView(written)), createdAt: now, expiresAt: now + IDEMPOTENCY_TTL_MS }) }
      : undefined;
    return store.insertSession(session, withEvents(record, (written) => [sessionEvent('session.created', written, now)]));
  };
  // One create a millisecond, as the clock advances under load (session ids are time-ordered).
  let now = T0;
  const run = async (count: number) => {
    for (let i = 0; i < count; i += batch) await Promise.all(Array.from({ length: batch }, () => create((now += 1))));
  };
  await run(creates); // warm up: the B-trees past their first pages
  const walBefore = statSync(`${file}-wal`).size;
  const started = cpu();
  await run(creates);
  const cpuUs = (cpu() - started) / creates;
  const walBytes = statSync(`${file}-wal`).size - walBefore;
  await store.close();
  rmSync(directory, { recursive: true, force: true });
  // A frame: a 24-byte header and the page (4096 bytes by default).
  return { framesPerCreate: +(walBytes / (4096 + 24) / creates).toFixed(2), walBytesPerCreate: Math.round(walBytes / creates), cpuUs: +cpuUs.toFixed(1) };
}

const results = [];
for (const batch of [10, 50]) {
  const plain = await measure(batch, false);
  const keyed = await measure(batch, true);
  results.push({ batch, plain, keyed });
}
console.log(JSON.stringify(results));
