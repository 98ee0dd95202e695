// In-process microbenchmark of the SQLite counts (migration 16, expiry-counts.ts): µs per
// count statement at N sessions whose deadlines are spread over 16 days, after the
// sweeper has moved the count marks to a minute before the instant counted (the window
// a count corrects by). Wall µs per statement, so run it on a quiet machine.
// Usage: node --import tsx bench/counts-micro.ts [sessions=1000000]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { countAfterSql, type CounterKind } from '../src/storage/sqlite/expiry-counts.js';
import { listSessionsSql } from '../src/storage/sqlite/queries.js';
import { openSqliteStore } from '../src/storage/sqlite/sqlite-store.js';

const sessions = Number(process.argv[2] ?? 1_000_000);
const directory = mkdtempSync(join(tmpdir(), 'counts-micro-'));
const path = join(directory, 's.db');
const T0 = Date.UTC(2026, 0, 1);
const MINUTE = 60_000;
const AGENTS = Array.from({ length: 10 }, (_, i) => `00000000-0000-4000-8000-a000000000${String(i).padStart(2, '0')}`);
const userOf = (i: number) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;

try {
  const store = openSqliteStore(path);
  for (const id of AGENTS) await store.insertAgent({ id, name: 'A', settings: {}, createdAt: T0 - 2 * 1440 * MINUTE });
  await store.close();

  // Rows written directly (fast), then the totals recounted as migration 16 does.
  const db = new Database(path);
  db.function('agent_of', (i) => AGENTS[Number(i) % AGENTS.length]!);
  db.function('user_of', (i) => userOf(Number(i) % Math.max(1, Math.floor(sessions / 2))));
  db.transaction(() => {
    db.exec(`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ${sessions})
      INSERT INTO sessions (id, agent_id, user_id, created_at, last_activity, anchor_at, expires_at, warns_at, timeout_minutes, auto_renew,
        max_duration_minutes, warning_threshold_minutes, renewal_count, status, metadata, announced, due_at)
      SELECT printf('10000000-0000-4000-8000-%012d', i), agent_of(i), user_of(i), e - 30 * ${MINUTE}, e - 30 * ${MINUTE}, e - 30 * ${MINUTE},
        e, e - 5 * ${MINUTE}, 30, 1, 21600, 5, 0, 'active', '{}', 'nothing', e - 5 * ${MINUTE}
      FROM (SELECT i, ${T0} - 1440 * ${MINUTE} + abs(random()) % (16 * 1440 * ${MINUTE}) AS e FROM n);
      DELETE FROM session_counts;
      INSERT INTO session_counts SELECT 'expiry', '', count(*), count(*) FROM sessions;
      INSERT INTO session_counts SELECT 'warning', '', count(*), count(*) FROM sessions;
      INSERT INTO session_counts SELECT 'agent', agent_id, count(*), count(*) FROM sessions GROUP BY 1;
      INSERT INTO session_counts SELECT 'user', user_id, count(*), count(*) FROM sessions GROUP BY 1;`);
  })();
  db.close();

  const now = T0;
  const cutoff = T0 - 1440 * MINUTE;
  const moving = openSqliteStore(path);
  while ((await moving.moveCountMarks!(now - MINUTE, cutoff - MINUTE, 100_000)).more);
  await moving.close();

  const reader = new Database(path, { readonly: true });
  const time = (statement: Database.Statement, parameters: object) => {
    for (let i = 0; i < 500; i += 1) statement.get(parameters);
    const runs = 5000;
    const started = process.hrtime.bigint();
    for (let i = 0; i < runs; i += 1) statement.get(parameters);
    return +(Number(process.hrtime.bigint() - started) / 1000 / runs).toFixed(1);
  };
  const keys: Record<CounterKind, string> = { expiry: '', warning: '', agent: AGENTS[3]!, user: userOf(7) };
  const both = reader.prepare(listSessionsSql({ agentId: AGENTS[7], userId: userOf(7), status: 'active' }).count);
  const result: Record<string, number> = { sessions };
  for (const [label, after] of [['Now', now], ['Cutoff', cutoff]] as const) {
    for (const kind of ['expiry', 'warning', 'agent', 'user'] as const) {
      if (kind !== 'warning' || label === 'Now') result[`${kind}After${label}Us`] = time(reader.prepare(countAfterSql(kind)), { after, key: keys[kind] });
    }
  }
  result.agentAndUserActiveUs = time(both, { agentId: AGENTS[7], userId: userOf(7), now, purgeCutoff: cutoff });
  reader.close();
  console.log(JSON.stringify(result));
} finally {
  rmSync(directory, { recursive: true, force: true });
}
