// The expiry and warning histograms (migrations 3, 5 and 6) must always agree with counting the rows.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { expect, it } from 'vitest';
import { recordActivity, resolveTimeoutConfig, startTiming, updateConfig } from '../src/domain/timeout-policy.js';
import { openSqliteStore } from '../src/storage/sqlite/sqlite-store.js';
import { MINUTE, T0 } from './helpers/fake-clock.js';

const AGENTS = ['0b7b4c3e-1f2a-4d5e-8f90-a1b2c3d4e5f6', '1b7b4c3e-1f2a-4d5e-8f90-a1b2c3d4e5f6'];
const USERS = ['2b7b4c3e-1f2a-4d5e-8f90-a1b2c3d4e5f6', '3b7b4c3e-1f2a-4d5e-8f90-a1b2c3d4e5f6', '4b7b4c3e-1f2a-4d5e-8f90-a1b2c3d4e5f6'];
const STATUS_SQL = { active: 'expires_at > @now', expired: 'expires_at <= @now AND expires_at > @cutoff', all: 'expires_at > @cutoff' } as const;

it('counts active, near-expiration and listed (filtered) sessions at any instant exactly as a scan would, through inserts, renewals, changes, deletes and purges', async () => {
  const directory = mkdtempSync(join(tmpdir(), 'sessions-counts-'));
  const path = join(directory, 'sessions.db');
  try {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ offset: fc.integer({ min: 0, max: 90 * MINUTE }), timeout: fc.integer({ min: 5, max: 60 }), action: fc.constantFrom('keep', 'beat', 'patch', 'end') }), { maxLength: 40 }),
        fc.array(fc.integer({ min: -5 * MINUTE, max: 200 * MINUTE }), { minLength: 1, maxLength: 10 }),
        async (sessions, probes) => {
          rmSync(directory, { recursive: true, force: true });
          const store = openSqliteStore(path);
          for (const id of AGENTS) await store.insertAgent({ id, name: 'A', settings: {}, createdAt: T0 });
          for (const [i, plan] of sessions.entries()) {
            const id = `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
            const createdAt = T0 + plan.offset;
            await store.insertSession({ id, agentId: AGENTS[i % 2]!, userId: USERS[i % 3]!, metadata: {}, status: 'active', ...startTiming(createdAt, resolveTimeoutConfig({ timeoutMinutes: plan.timeout })) });
            if (plan.action === 'beat') await store.modifySession(id, (s) => ({ ...s!, ...recordActivity(s!, createdAt + 3 * MINUTE + 17).timing }));
            if (plan.action === 'patch') await store.modifySession(id, (s) => ({ ...s!, ...updateConfig(s!, { timeoutMinutes: 5 + ((plan.timeout * 7) % 50) }) }));
            if (plan.action === 'end') await store.deleteSession(id, () => undefined);
          }
          await store.purgeExpired(T0 + 20 * MINUTE, 1000);
          const db = new Database(path, { readonly: true });
          for (const probe of probes) {
            const t = T0 + probe;
            const scanned = (db.prepare('SELECT count(*) AS n FROM sessions WHERE expires_at > ?').get(t) as { n: number }).n;
            const counted = await store.countSessions({ now: t, purgeCutoff: t });
            expect(counted.active, `expiring after ${t}`).toBe(scanned);
            const near = db.prepare('SELECT count(*) AS n FROM sessions WHERE warns_at <= ? AND expires_at > ?').get(t, t) as { n: number };
            expect(counted.expiringSoon, `near expiration at ${t}`).toBe(near.n);
            for (const filter of [{}, { agentId: AGENTS[1] }, { userId: USERS[2] }, { agentId: AGENTS[0], userId: USERS[1] }]) {
              for (const status of ['active', 'expired', 'all'] as const) {
                const bounds = { now: t, purgeCutoff: t - 10 * MINUTE };
                const listed = await store.listSessions({ ...bounds, ...filter, status, limit: 1, offset: 0 });
                const where = [STATUS_SQL[status], ...Object.keys(filter).map((key) => (key === 'agentId' ? 'agent_id = @agentId' : 'user_id = @userId'))];
                const scan = db.prepare(`SELECT count(*) AS n FROM sessions WHERE ${where.join(' AND ')}`).get({ now: t, cutoff: bounds.purgeCutoff, ...filter }) as { n: number };
                expect(listed.total, `${status} ${JSON.stringify(filter)} at ${t}`).toBe(scan.n);
              }
            }
          }
          for (const histogram of ['session_expiry_minutes', 'session_warning_minutes', 'session_expiry_minutes_by_agent', 'session_expiry_minutes_by_user']) {
            expect((db.prepare(`SELECT count(*) AS n FROM ${histogram} WHERE sessions <= 0`).get() as { n: number }).n).toBe(0);
          }
          db.close();
          await store.close();
        },
      ),
      { numRuns: 40, seed: 1124 },
    );
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});
