// The count totals (migration 16) and the counts made from them must always agree with counting the rows.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { expect, it } from 'vitest';
import { isExpired, isNearExpiration, lifecycle, purgeCutoff, recordActivity, resolveTimeoutConfig, startTiming, updateConfig } from '../src/domain/timeout-policy.js';
import { announce } from '../src/events/due-events.js';
import { openSqliteStore } from '../src/storage/sqlite/sqlite-store.js';
import { expectCountTotalsExact } from './helpers/count-totals.js';
import { MINUTE, T0 } from './helpers/fake-clock.js';

const AGENTS = ['0b7b4c3e-1f2a-4d5e-8f90-a1b2c3d4e5f6', '1b7b4c3e-1f2a-4d5e-8f90-a1b2c3d4e5f6'];
const USERS = ['2b7b4c3e-1f2a-4d5e-8f90-a1b2c3d4e5f6', '3b7b4c3e-1f2a-4d5e-8f90-a1b2c3d4e5f6', '4b7b4c3e-1f2a-4d5e-8f90-a1b2c3d4e5f6'];

it('counts active, near-expiration and listed (filtered) sessions at any instant exactly as a scan would, through inserts, renewals, changes (of the warning alone too), deletes, count marks moved and purges', async () => {
  const directory = mkdtempSync(join(tmpdir(), 'sessions-counts-'));
  const path = join(directory, 'sessions.db');
  let purgedInAllRuns = 0;
  try {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ offset: fc.integer({ min: 0, max: 90 * MINUTE }), timeout: fc.integer({ min: 5, max: 60 }), action: fc.constantFrom('keep', 'beat', 'patch', 'warn', 'end', 'end later') }), { maxLength: 40 }),
        fc.array(fc.integer({ min: -5 * MINUTE, max: 200 * MINUTE }), { minLength: 1, maxLength: 10 }),
        // The sweeper moves the count marks (`calls` times by `limit` sessions, or all the way) at
        // some point of the writes; a batch of one leaves a mark on a session's very deadline.
        fc.record({ at: fc.integer({ min: 0, max: 40 }), now: fc.integer({ min: 0, max: 120 * MINUTE }), back: fc.integer({ min: 0, max: 60 * MINUTE }), limit: fc.integer({ min: 1, max: 4 }), calls: fc.integer({ min: 1, max: 8 }) }),
        async (sessions, probes, marks) => {
          rmSync(directory, { recursive: true, force: true });
          const store = openSqliteStore(path);
          for (const id of AGENTS) await store.insertAgent({ id, name: 'A', settings: {}, createdAt: T0 });
          const moveMarks = async () => {
            for (let call = 0; call < marks.calls; call += 1) await store.moveCountMarks!(T0 + marks.now, T0 + marks.now - marks.back, marks.limit);
          };
          for (const [i, plan] of sessions.entries()) {
            if (i === marks.at) await moveMarks();
            const id = `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
            const createdAt = T0 + plan.offset;
            await store.insertSession({ id, agentId: AGENTS[i % 2]!, userId: USERS[i % 3]!, metadata: {}, status: 'active', announced: 'nothing', ...startTiming(createdAt, resolveTimeoutConfig({ timeoutMinutes: plan.timeout })) });
            if (plan.action === 'beat') await store.modifySession(id, (s) => ({ ...s!, ...recordActivity(s!, createdAt + 3 * MINUTE + 17).timing }));
            if (plan.action === 'patch') await store.modifySession(id, (s) => ({ ...s!, ...updateConfig(s!, { timeoutMinutes: 5 + ((plan.timeout * 7) % 50) }) }));
            // A new warning threshold alone: warns_at moves, expires_at stays.
            if (plan.action === 'warn') await store.modifySession(id, (s) => ({ ...s!, ...updateConfig(s!, { warningThresholdMinutes: 1 + (plan.timeout % 4) }) }));
            if (plan.action === 'end') await store.deleteSession(id, (s) => s!);
          }
          if (marks.at >= sessions.length) await moveMarks();
          for (const [i, plan] of sessions.entries()) if (plan.action === 'end later') await store.deleteSession(`00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, (s) => s!);
          // What a sweeper's pass does first (the purge keeps a session with an announcement due).
          while ((await store.announceDue(T0 + 20 * MINUTE, 1000, announce)) > 0);
          purgedInAllRuns += (await store.purgeExpired(T0 + 20 * MINUTE, 1000)).purged;
          expectCountTotalsExact(path);
          const db = new Database(path, { readonly: true });
          // The oracle is the timeout policy itself, applied to every stored row.
          type Row = { agent_id: string; user_id: string; expires_at: number; warns_at: number };
          const rows = db.prepare('SELECT agent_id, user_id, expires_at, warns_at FROM sessions').all() as Row[];
          const RETENTION_MS = 10 * MINUTE;
          for (const probe of probes) {
            const t = T0 + probe;
            const counted = await store.countSessions({ now: t, purgeCutoff: t });
            expect(counted.active, `active at ${t}`).toBe(rows.filter((r) => !isExpired(r.expires_at, t)).length);
            const near = rows.filter((r) => isNearExpiration({ expiresAt: r.expires_at, warnsAt: r.warns_at }, t));
            expect(counted.expiringSoon, `near expiration at ${t}`).toBe(near.length);
            for (const filter of [{}, { agentId: AGENTS[1] }, { userId: USERS[2] }, { agentId: AGENTS[0], userId: USERS[1] }]) {
              for (const status of ['active', 'expired', 'all'] as const) {
                const listed = await store.listSessions({ now: t, purgeCutoff: purgeCutoff(t, RETENTION_MS), ...filter, status, limit: 1, offset: 0 });
                const expected = rows.filter((r) => {
                  const state = lifecycle(r.expires_at, t, RETENTION_MS);
                  const ofStatus = status === 'all' ? state !== 'purged' : state === status;
                  return ofStatus && (!filter.agentId || r.agent_id === filter.agentId) && (!filter.userId || r.user_id === filter.userId);
                });
                expect(listed.total, `${status} ${JSON.stringify(filter)} at ${t}`).toBe(expected.length);
              }
            }
          }
          db.close();
          await store.close();
        },
      ),
      { numRuns: 40, seed: 1124 },
    );
    // The runs' purges deleted sessions (a purge that deletes nothing checks no totals).
    expect(purgedInAllRuns).toBeGreaterThan(0);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});
