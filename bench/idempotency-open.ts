// How long a SQLite store takes, opening, to read N idempotency records (default 10^6) into
// its map of keys, and the heap the map takes: node --expose-gc --import tsx bench/idempotency-open.ts [N]
import Database from 'better-sqlite3';
import { idempotencyRecords } from '../src/storage/sqlite/idempotency-records.js';
import { migrate } from '../src/storage/sqlite/migrations.js';
import { temporaryDatabase } from './lib.js';
const n = Number(process.argv[2] ?? 1_000_000);
const db = new Database(temporaryDatabase('idem-open-'));
db.pragma('journal_mode = WAL');
migrate(db);
db.prepare(`WITH RECURSIVE i(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM i WHERE x < ?)
  INSERT INTO idempotency_records (digest, fingerprint, status, body, created_at, expires_at)
  SELECT lower(hex(randomblob(16))), 'ffffffffffffffffffffffffffffffffffffffffffa', 201, printf('%.500c', 'x'), x, x + 86400000 FROM i`).run(n);
const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
gc();
const heap = process.memoryUsage().heapUsed;
const t = performance.now();
const records = idempotencyRecords(db);
const ms = performance.now() - t;
gc();
const bytesPerKey = (process.memoryUsage().heapUsed - heap) / n;
console.log(`${records.keysInMemory()} records read in ${Math.round(ms)} ms; the map of keys: ${bytesPerKey.toFixed(1)} bytes a key (heap, with --expose-gc)`);
db.close();
