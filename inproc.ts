import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from './src/app.js';
import { systemClock } from './src/domain/clock.js';
import { openSqliteStore } from './src/storage/sqlite/sqlite-store.js';
import { generateApiKey, hashApiKey } from './src/api-keys.js';
async function run(variant: { apiKey: boolean; idem: boolean }, n: number) {
  const store = openSqliteStore(join(mkdtempSync(join(tmpdir(), 'inproc-')), 's.db'));
  const key = generateApiKey();
  if (variant.apiKey) await store.insertApiKey({ id: randomUUID(), name: 'b', keyHash: hashApiKey(key), admin: true, agentIds: [], createdAt: 0 });
  const agentId = randomUUID();
  await store.insertAgent({ id: agentId, name: 'B', settings: {}, createdAt: 0 });
  const app = buildApp({ store, clock: systemClock, sessionDefaults: {}, retentionMs: 60000, sweeper: { lastError: () => undefined, stop: async () => {} } });
  await app.ready();
  const payload = JSON.stringify({ agentId, userId: '5f1c1c8e-4a3b-4c7d-9e2f-0a1b2c3d4e5f', metadata: { platform: 'bench' } });
  const one = () => app.inject({ method: 'POST', url: '/api/messaging/sessions', payload, headers: { 'content-type': 'application/json', ...(variant.apiKey ? { 'x-api-key': key } : {}), ...(variant.idem ? { 'idempotency-key': randomUUID() } : {}) } });
  for (let i = 0; i < 500; i++) await one();
  const t = performance.now();
  // 50 concurrent, like the bench
  for (let i = 0; i < n / 50; i++) await Promise.all(Array.from({ length: 50 }, one));
  const us = ((performance.now() - t) * 1000) / n;
  await app.close();
  return us;
}
for (let round = 0; round < 3; round++) {
  const out: string[] = [];
  for (const [name, v] of Object.entries({ plain: { apiKey: false, idem: false }, key: { apiKey: true, idem: false }, idem: { apiKey: false, idem: true }, both: { apiKey: true, idem: true } })) {
    out.push(`${name} ${(await run(v, 5000)).toFixed(0)} µs`);
  }
  console.log(out.join(' | '));
}
