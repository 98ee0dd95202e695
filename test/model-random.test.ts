// Model-based random testing of the timeout policy and the session lifecycle, on SQLite
// (a temp file) and PostgreSQL. The reference model below is written from the product
// contract (shared/design/sessions-api.md) and the spec's operation descriptions only.
// Random sequences of operations interleaved with fake-clock advances (many landing
// exactly on expiry, the warning window's start, the max-duration cap, the purge cutoff)
// are run against the app and the model; every answer is compared. A failing sequence
// is shrunk and printed with its seed.
import { describe, expect, it } from 'vitest';
import { openPostgresStore } from '../src/storage/postgres/postgres-store.js';
import { fakeClock, T0 } from './helpers/fake-clock.js';
import { createTestDatabase } from './helpers/postgres-database.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';

// ---------------------------------------------------------------- model
const MIN = 60_000;
let RETENTION = 1440 * MIN;
// The purge cutoff itself (expiresAt + retention) counts as purged everywhere (the server does so; the contract does not pin it: MODEL_LENIENT_PURGE accepts either there).
const STRICT_PURGE = !process.env.MODEL_LENIENT_PURGE;
interface Cfg { timeoutMinutes: number; autoRenew: boolean; maxDurationMinutes: number; warningThresholdMinutes: number }
const BUILT_IN: Cfg = { timeoutMinutes: 30, autoRenew: true, maxDurationMinutes: 720, warningThresholdMinutes: 5 };
let DEFAULTS: Cfg = BUILT_IN;
// Profiles: the built-in defaults, or a server configured with its own defaults (env) and a short retention.
const PROFILES = {
  builtIn: { retention: 1440 * MIN, serverDefaults: {} as Partial<Cfg> },
  zeroRetention: { retention: 0, serverDefaults: { maxDurationMinutes: 60 } as Partial<Cfg> },
  configured: { retention: 60 * MIN, serverDefaults: { timeoutMinutes: 15, autoRenew: false, warningThresholdMinutes: 2, maxDurationMinutes: 40 } as Partial<Cfg> },
};
type Profile = keyof typeof PROFILES;
function useProfile(p: Profile) {
  RETENTION = PROFILES[p].retention;
  DEFAULTS = { ...BUILT_IN, ...PROFILES[p].serverDefaults };
}
interface MSession { messages: number; sessionId: string; agent: number; user: number; createdAt: number; lastActivity: number; anchor: number; cfg: Cfg; renewalCount: number; deleted: boolean }

const AGENTS = [
  { id: '0a000000-0000-4000-8000-000000000001', settings: {} as Record<string, unknown>, cfg: {} as Partial<Cfg> },
  {
    id: '0a000000-0000-4000-8000-000000000002',
    settings: { SESSION_TIMEOUT_MINUTES: 10, SESSION_AUTO_RENEW: false, SESSION_MAX_DURATION_MINUTES: 60, SESSION_WARNING_THRESHOLD_MINUTES: 3 },
    cfg: { timeoutMinutes: 10, autoRenew: false, maxDurationMinutes: 60, warningThresholdMinutes: 3 } as Partial<Cfg>,
  },
  {
    id: '0a000000-0000-4000-8000-000000000003',
    settings: { SESSION_TIMEOUT_MINUTES: 120, SESSION_MAX_DURATION_MINUTES: 60 },
    cfg: { timeoutMinutes: 120, maxDurationMinutes: 60 } as Partial<Cfg>,
  },
];
const USERS = ['0b000000-0000-4000-8000-000000000001', '0b000000-0000-4000-8000-000000000002', '0b000000-0000-4000-8000-000000000003'];
const UNKNOWN = '0c000000-0000-4000-8000-000000000000';

function effective(req: Partial<Cfg> | undefined, agent: Partial<Cfg>): Cfg {
  const c: Cfg = {
    timeoutMinutes: req?.timeoutMinutes ?? agent.timeoutMinutes ?? DEFAULTS.timeoutMinutes,
    autoRenew: req?.autoRenew ?? agent.autoRenew ?? DEFAULTS.autoRenew,
    maxDurationMinutes: req?.maxDurationMinutes ?? agent.maxDurationMinutes ?? DEFAULTS.maxDurationMinutes,
    warningThresholdMinutes: req?.warningThresholdMinutes ?? agent.warningThresholdMinutes ?? DEFAULTS.warningThresholdMinutes,
  };
  if (c.maxDurationMinutes < c.timeoutMinutes) c.maxDurationMinutes = c.timeoutMinutes;
  return c;
}
const cap = (s: MSession) => s.createdAt + s.cfg.maxDurationMinutes * MIN;
const expiresAt = (s: MSession) => Math.min(s.anchor + s.cfg.timeoutMinutes * MIN, cap(s));
function state(s: MSession | undefined, now: number): 'gone' | 'expired' | 'active' {
  if (!s || s.deleted) return 'gone';
  const e = expiresAt(s);
  if (now < e) return 'active';
  // Purged once the retention period after expiry has passed ("until a retention period
  // purges it"): reads judge by the clock; exactly at expiresAt + retention counts as purged
  // only after a sweep (the boundary is not pinned by the contract), see `purgeBoundary`.
  return (STRICT_PURGE ? now >= e + RETENTION : now > e + RETENTION) ? 'gone' : 'expired';
}
const iso = (ms: number) => new Date(ms).toISOString();
function view(s: MSession, now: number) {
  const e = expiresAt(s);
  const tr = Math.max(0, e - now);
  return {
    sessionId: s.sessionId, agentId: AGENTS[s.agent]!.id, userId: USERS[s.user]!,
    createdAt: iso(s.createdAt), lastActivity: iso(s.lastActivity), expiresAt: iso(e),
    timeoutConfig: { ...s.cfg }, renewalCount: s.renewalCount, timeRemaining: tr,
    isNearExpiration: tr > 0 && tr <= s.cfg.warningThresholdMinutes * MIN, status: now >= e ? 'expired' : 'active',
  };
}

// ---------------------------------------------------------------- operations
type Op =
  | { k: 'create'; agent: number; user: number; cfg?: Partial<Cfg> }
  | { k: 'get' | 'hb' | 'msg' | 'renew' | 'del'; s: number }
  | { k: 'patch'; s: number; cfg: Partial<Cfg> }
  | { k: 'list'; agent?: number; user?: number; status?: 'active' | 'expired' | 'all'; limit?: number; offset?: number }
  | { k: 'health' }
  | { k: 'adv'; ms: number }
  | { k: 'advTo'; s: number; to: 'expiry' | 'warn' | 'cap' | 'purge'; d: number }
  | { k: 'sweep' }
  | { k: 'page'; status: 'active' | 'expired' | 'all'; limit: number }
  | { k: 'msgs'; s: number; limit: number }
  | { k: 'agentDel'; agent: number; force: boolean }
  | { k: 'agentReg'; agent: number }
  | { k: 'bad'; s: number; create: boolean; cfg: Record<string, unknown> }
  | { k: 'burst'; s: number; n: number; kind: 'hb' | 'msg' | 'renew' };

function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T,>(xs: readonly T[]): T => xs[int(xs.length)]!;
  return { next, int, pick };
}

function randomCfg(r: ReturnType<typeof rng>): Partial<Cfg> {
  const c: Partial<Cfg> = {};
  if (r.next() < 0.6) c.timeoutMinutes = r.pick([5, 5, 6, 10, 30, 60, 1439, 1440, 5 + r.int(100)]);
  if (r.next() < 0.4) c.autoRenew = r.next() < 0.5;
  if (r.next() < 0.5) c.maxDurationMinutes = r.pick([5, 6, 10, 20, 30, 45, 60, 720, 20160, 5 + r.int(200)]);
  if (r.next() < 0.5) c.warningThresholdMinutes = r.pick([1, 2, 5, 10, 29, 30, 1440]);
  return c;
}

function generate(seed: number, length: number): Op[] {
  const r = rng(seed);
  const ops: Op[] = [];
  let created = 0;
  const sess = () => (created === 0 || r.next() < 0.05 ? -1 : r.next() < 0.5 ? created - 1 - r.int(Math.min(3, created)) : r.int(created));
  for (let i = 0; i < length; i++) {
    const x = r.next();
    if (x < 0.12 || created === 0) {
      ops.push({ k: 'create', agent: r.int(AGENTS.length), user: r.int(USERS.length), ...(r.next() < 0.7 ? { cfg: randomCfg(r) } : {}) });
      created++;
    } else if (x < 0.2) ops.push({ k: 'get', s: sess() });
    else if (x < 0.3) ops.push({ k: 'hb', s: sess() });
    else if (x < 0.36) ops.push({ k: 'msg', s: sess() });
    else if (x < 0.45) ops.push({ k: 'renew', s: sess() });
    else if (x < 0.52) ops.push({ k: 'patch', s: sess(), cfg: randomCfg(r) });
    else if (x < 0.55) ops.push({ k: 'del', s: sess() });
    else if (x < 0.63) {
      const op: Op = { k: 'list' };
      if (r.next() < 0.3) op.agent = r.int(AGENTS.length);
      if (r.next() < 0.3) op.user = r.int(USERS.length);
      if (r.next() < 0.7) op.status = r.pick(['active', 'expired', 'all'] as const);
      if (r.next() < 0.4) op.limit = r.pick([1, 2, 3, 100]);
      if (r.next() < 0.3) op.offset = r.int(5);
      ops.push(op);
    } else if (x < 0.645) ops.push({ k: 'health' });
    else if (x < 0.655) ops.push({ k: 'page', status: r.pick(['active', 'expired', 'all'] as const), limit: r.pick([1, 2, 3]) });
    else if (x < 0.66) ops.push(r.next() < 0.5 ? { k: 'msgs', s: sess(), limit: r.pick([1, 2, 50]) } : r.next() < 0.6 ? { k: 'agentDel', agent: r.int(AGENTS.length), force: r.next() < 0.5 } : { k: 'agentReg', agent: r.int(AGENTS.length) });
    else if (x < 0.68) ops.push({ k: 'sweep' });
    else if (x < 0.7) ops.push({ k: 'burst', s: sess(), n: r.pick([2, 3, 5, 8]), kind: r.pick(['hb', 'msg', 'renew'] as const) });
    else if (x < 0.71) ops.push({ k: 'bad', s: sess(), create: r.next() < 0.4, cfg: { ...randomCfg(r), ...r.pick([{ timeoutMinutes: 4 }, { timeoutMinutes: 1441 }, { timeoutMinutes: 30.5 }, { timeoutMinutes: '30' }, { timeoutMinutes: null }, { maxDurationMinutes: 4 }, { maxDurationMinutes: 20161 }, { maxDurationMinutes: '720' }, { warningThresholdMinutes: 0 }, { warningThresholdMinutes: 1441 }, { autoRenew: 'true' }, { autoRenew: 1 }, { timeoutMinutes: -30 }, { timeoutMinutes: 1e309 }]) } });
    else if (x < 0.8) ops.push({ k: 'adv', ms: r.next() < 0.005 ? 1440 * MIN : r.pick([1, 999, MIN, MIN, 2 * MIN, 4 * MIN, 5 * MIN, r.int(10 * MIN), r.int(40 * MIN)]) });
    else ops.push({ k: 'advTo', s: r.next() < 0.6 && created > 0 ? created - 1 - r.int(Math.min(4, created)) : r.int(Math.max(1, created)), to: r.next() < 0.015 ? 'purge' : r.pick(['expiry', 'expiry', 'warn', 'warn', 'cap'] as const), d: r.pick([-1, 0, 0, 1]) });
  }
  return ops;
}

// ---------------------------------------------------------------- runner
class Mismatch extends Error {}
const hit = (what: string) => { if (coverage) coverage[`HIT ${what}`] = (coverage[`HIT ${what}`] ?? 0) + 1; };
const coverage: Record<string, number> | undefined = process.env.MODEL_COVERAGE ? {} : undefined;


interface Target { app: TestApp; close(): Promise<void> }

async function run(ops: Op[], makeTarget: () => Promise<Target>, log?: string[]): Promise<void> {
  const target = await makeTarget();
  const { app } = target;
  const clock = app.clock;
  const model: MSession[] = [];
  const ids: string[] = [];
  const agentGone = AGENTS.map(() => false);
  let purgeCatchUp = false; // a sweep has run since the clock passed someone's purge cutoff
  const check = (i: number, what: string, actual: unknown, expected: unknown) => {
    const key = what + (Array.isArray(expected) && typeof expected[0] === 'number' ? ' ' + String(expected[0]) : '');
    if (coverage) coverage[key] = (coverage[key] ?? 0) + 1;
    try {
      expect(actual).toEqual(expected);
    } catch (e) {
      throw new Mismatch(`op #${i} ${what}:\n  actual   ${JSON.stringify(actual)}\n  expected ${JSON.stringify(expected)}`);
    }
  };
  const sid = (s: number) => (s < 0 || s >= ids.length ? UNKNOWN : ids[s]!);
  const msOf = (s: number) => (s < 0 || s >= model.length ? undefined : model[s]);
  const expectError = (i: number, name: string, res: { status: number; body: any }, st: 'gone' | 'expired', m?: MSession) => {
    if (st === 'gone') check(i, `${name} status/code`, [res.status, res.body?.error?.code], [404, 'SESSION_NOT_FOUND']);
    else {
      check(i, `${name} status/code`, [res.status, res.body?.error?.code], [410, 'SESSION_EXPIRED']);
      check(i, `${name} details has expiresAt`, String(res.body.error.details).includes(iso(expiresAt(m!))), true);
    }
  };
  // "exactly at expiresAt + retention": reads may answer 410 or 404 until a sweep; we accept both but record it.
  const stateFor = (m: MSession | undefined, now: number) => state(m, now);
  try {
    for (const [i, op] of ops.entries()) {
      const now = clock.now();
      log?.push(`#${i} t=+${(now - T0) / 1000}s ${JSON.stringify(op)}`);
      switch (op.k) {
        case 'create': {
          const body: Record<string, unknown> = { agentId: AGENTS[op.agent]!.id, userId: USERS[op.user]! };
          if (op.cfg) body.timeoutConfig = op.cfg;
          const res = await app.request({ method: 'POST', url: '/api/messaging/sessions', body });
          if (agentGone[op.agent]) {
            check(i, 'create for deleted agent', [res.status, res.body?.error?.code], [404, 'AGENT_NOT_FOUND']);
            model.push({ ...({} as MSession), deleted: true, sessionId: UNKNOWN, agent: op.agent, user: op.user, createdAt: now, lastActivity: now, anchor: now, cfg: BUILT_IN, renewalCount: 0, messages: 0 });
            ids.push(UNKNOWN);
            break;
          }
          check(i, 'create status', res.status, 201);
          const cfg = effective(op.cfg, AGENTS[op.agent]!.cfg);
          const m: MSession = { messages: 0, sessionId: res.body.sessionId, agent: op.agent, user: op.user, createdAt: now, lastActivity: now, anchor: now, cfg, renewalCount: 0, deleted: false };
          model.push(m);
          ids.push(res.body.sessionId);
          const v = view(m, now);
          check(i, 'create body', res.body, { sessionId: v.sessionId, agentId: v.agentId, userId: v.userId, createdAt: v.createdAt, metadata: {}, expiresAt: v.expiresAt, timeoutConfig: v.timeoutConfig });
          break;
        }
        case 'get':
        case 'hb':
        case 'renew':
        case 'msg':
        case 'patch': {
          const m = msOf(op.s);
          const st = stateFor(m, now);
          const url = `/api/messaging/sessions/${sid(op.s)}${{ get: '', hb: '/heartbeat', renew: '/renew', msg: '/messages', patch: '/timeout' }[op.k]}`;
          const method = op.k === 'get' ? 'GET' : op.k === 'patch' ? 'PATCH' : 'POST';
          const body = op.k === 'msg' ? { content: `m${i}` } : op.k === 'patch' ? op.cfg : undefined;
          const res = await app.request({ method, url, ...(body !== undefined ? { body } : {}) });
          if (m && !m.deleted && now === expiresAt(m)) hit(`${op.k} exactly at expiry`);
          if (m && !m.deleted && now === expiresAt(m) + RETENTION) hit(`${op.k} exactly at purge cutoff → ${res.status}`);
          if (m?.deleted) hit(`${op.k} on deleted id`);
          if (st !== 'active') {
            // The purge boundary itself (now === expiresAt + retention) is not pinned down: accept 404 or 410 there.
            if (!STRICT_PURGE && m && !m.deleted && now === expiresAt(m) + RETENTION && res.status === 404) break;
            expectError(i, op.k, res, st, m);
            break;
          }
          const s = m!;
          const e0 = expiresAt(s);
          if (now === e0 - 1) hit('op 1 ms before expiry');
          if (now === e0 - s.cfg.warningThresholdMinutes * MIN) hit(`${op.k} exactly at warning start`);
          if (now === e0 - s.cfg.warningThresholdMinutes * MIN - 1) hit('1 ms before warning start');
          if (e0 === cap(s)) hit(`${op.k} with expiresAt at cap (autoRenew ${s.cfg.autoRenew})`);
          if (op.k === 'hb' || op.k === 'msg') {
            s.lastActivity = now;
            const before = expiresAt(s);
            if (s.cfg.autoRenew) {
              s.anchor = now;
              s.renewalCount++;
            }
            if (op.k === 'msg') {
              s.messages++;
              check(i, 'msg status', res.status, 201);
              const v = view(s, now);
              check(i, 'msg sessionStatus', res.body.sessionStatus, { expiresAt: v.expiresAt, renewalCount: v.renewalCount, wasRenewed: s.cfg.autoRenew, isNearExpiration: v.isNearExpiration });
              check(i, 'msg createdAt', res.body.createdAt, iso(now));
              void before;
              break;
            }
          } else if (op.k === 'renew') {
            if (expiresAt(s) === cap(s)) {
              check(i, 'renew at cap', [res.status, res.body?.error?.code], [422, 'MAX_DURATION_REACHED']);
              break;
            }
            s.anchor = now;
            s.renewalCount++;
          } else if (op.k === 'patch') {
            const next = { ...s.cfg, ...op.cfg };
            if (next.maxDurationMinutes < next.timeoutMinutes) next.maxDurationMinutes = next.timeoutMinutes;
            s.cfg = next;
            if (now >= expiresAt(s)) hit('patch expiring the session at once');
            if (now === expiresAt(s)) hit('patch putting expiresAt exactly at now');
          }
          check(i, `${op.k} status`, res.status, 200);
          check(i, `${op.k} body`, res.body, { ...view(s, now), metadata: {} });
          break;
        }
        case 'del': {
          const m = msOf(op.s);
          const st = stateFor(m, now);
          const res = await app.request({ method: 'DELETE', url: `/api/messaging/sessions/${sid(op.s)}` });
          if (st === 'gone') {
            if (!STRICT_PURGE && m && !m.deleted && now === expiresAt(m) + RETENTION && res.status === 200) { m.deleted = true; break; }
            check(i, 'del gone', [res.status, res.body?.error?.code], [404, 'SESSION_NOT_FOUND']);
          } else {
            check(i, 'del status', res.status, 200);
            check(i, 'del body.success', res.body.success, true);
            m!.deleted = true;
          }
          break;
        }
        case 'list': {
          const q = new URLSearchParams();
          if (op.agent !== undefined) q.set('agentId', AGENTS[op.agent]!.id);
          if (op.user !== undefined) q.set('userId', USERS[op.user]!);
          if (op.status) q.set('status', op.status);
          if (op.limit !== undefined) q.set('limit', String(op.limit));
          if (op.offset !== undefined) q.set('offset', String(op.offset));
          const res = await app.request({ method: 'GET', url: `/api/messaging/sessions?${q}` });
          check(i, 'list status', res.status, 200);
          // Sessions exactly at their purge cutoff are ambiguous: skip the comparison then.
          const onCutoff = !STRICT_PURGE && model.some((m) => !m.deleted && now === expiresAt(m) + RETENTION);
          if (onCutoff) break;
          const live = model.filter((m) => stateFor(m, now) !== 'gone');
          const status = op.status ?? 'active';
          const matches = live
            .filter((m) => (op.agent === undefined || m.agent === op.agent) && (op.user === undefined || m.user === op.user))
            .filter((m) => status === 'all' || stateFor(m, now) === status)
            .sort((a, b) => b.createdAt - a.createdAt || (a.sessionId < b.sessionId ? 1 : -1));
          const offset = op.offset ?? 0;
          const page = matches.slice(offset, offset + (op.limit ?? 50)).map((m) => ({ ...view(m, now), metadata: {} }));
          const active = live.filter((m) => stateFor(m, now) === 'active').length;
          check(i, 'list', { sessions: res.body.sessions, total: res.body.total, stats: res.body.stats }, {
            sessions: page, total: matches.length, stats: { totalSessions: live.length, activeSessions: active, expiredSessions: live.length - active },
          });
          break;
        }
        case 'health': {
          const res = await app.request({ method: 'GET', url: '/api/messaging/sessions/health' });
          const active = model.filter((m) => stateFor(m, now) === 'active');
          check(i, 'health', { status: res.status, activeSessions: res.body.activeSessions, expiringSoon: res.body.expiringSoon }, {
            status: 200, activeSessions: active.length, expiringSoon: active.filter((m) => view(m, now).isNearExpiration).length,
          });
          break;
        }
        case 'page': {
          const onCutoff = !STRICT_PURGE && model.some((m) => !m.deleted && now === expiresAt(m) + RETENTION);
          if (onCutoff) break;
          const want = model.filter((m) => stateFor(m, now) !== 'gone' && (op.status === 'all' || stateFor(m, now) === op.status))
            .sort((a, b) => b.createdAt - a.createdAt || (a.sessionId < b.sessionId ? 1 : -1)).map((m) => m.sessionId);
          const got: string[] = [];
          let cursor: string | undefined;
          for (let pages = 0; pages < 500; pages++) {
            const res = await app.request({ method: 'GET', url: `/api/messaging/sessions?status=${op.status}&limit=${op.limit}&count=false${cursor ? `&cursor=${cursor}` : ''}` });
            check(i, 'page status', res.status, 200);
            check(i, 'page count=false has no total/stats', [res.body.total, res.body.stats], [undefined, undefined]);
            got.push(...res.body.sessions.map((x: { sessionId: string }) => x.sessionId));
            cursor = res.body.nextCursor;
            if (!cursor) break;
          }
          check(i, 'cursor paging', got, want);
          break;
        }
        case 'msgs': {
          const m = msOf(op.s);
          const st = stateFor(m, now);
          const res = await app.request({ method: 'GET', url: `/api/messaging/sessions/${sid(op.s)}/messages?limit=${op.limit}` });
          if (!STRICT_PURGE && m && !m.deleted && now === expiresAt(m) + RETENTION && res.status === 404) break;
          if (st !== 'active') { expectError(i, 'msgs', res, st, m); break; }
          check(i, 'msgs', [res.status, res.body.messages.length, res.body.hasMore], [200, Math.min(op.limit, m!.messages), m!.messages > op.limit]);
          break;
        }
        case 'agentDel': {
          const a = AGENTS[op.agent]!;
          const res = await app.request({ method: 'DELETE', url: `/api/agents/${a.id}${op.force ? '?force=true' : ''}` });
          if (agentGone[op.agent]) { check(i, 'agentDel unknown', [res.status, res.body?.error?.code], [404, 'AGENT_NOT_FOUND']); break; }
          const hasActive = model.some((m) => m.agent === op.agent && stateFor(m, now) === 'active');
          if (hasActive && !op.force) { check(i, 'agentDel with active sessions', [res.status, res.body?.error?.code], [409, 'AGENT_HAS_ACTIVE_SESSIONS']); break; }
          check(i, 'agentDel', res.status, 200);
          agentGone[op.agent] = true;
          // "then its sessions and messages go too" (said for force; an agent without active sessions may still have expired ones)
          for (const m of model) if (m.agent === op.agent) m.deleted = true;
          break;
        }
        case 'agentReg': {
          const a = AGENTS[op.agent]!;
          const res = await app.request({ method: 'POST', url: '/api/agents', body: { characterJson: { id: a.id, name: `agent${op.agent}`, settings: a.settings } } });
          check(i, 'agentReg', res.status, agentGone[op.agent] ? 201 : 409);
          agentGone[op.agent] = false;
          break;
        }
        case 'bad': {
          const res = op.create
            ? await app.request({ method: 'POST', url: '/api/messaging/sessions', body: { agentId: AGENTS[0]!.id, userId: USERS[0]!, timeoutConfig: op.cfg } })
            : await app.request({ method: 'PATCH', url: `/api/messaging/sessions/${sid(op.s)}/timeout`, body: op.cfg });
          // Validation comes first (400) for a bad body, whatever the session's state.
          check(i, `bad ${op.create ? 'create' : 'patch'}`, [res.status, res.body?.error?.code], [400, 'INVALID_REQUEST']);
          break;
        }
        case 'burst': {
          const m = msOf(op.s);
          const st = stateFor(m, now);
          const url = `/api/messaging/sessions/${sid(op.s)}/${{ hb: 'heartbeat', msg: 'messages', renew: 'renew' }[op.kind]}`;
          const results = await Promise.all(Array.from({ length: op.n }, (_, j) => app.request({ method: 'POST', url, ...(op.kind === 'msg' ? { body: { content: `b${i}-${j}` } } : {}) })));
          const got = results.map((r) => `${r.status}:${r.status < 300 ? (op.kind === 'msg' ? r.body.sessionStatus.renewalCount : r.body.renewalCount) : r.body.error.code}`).sort();
          const want: string[] = [];
          for (let j = 0; j < op.n; j++) {
            if (st !== 'active') { want.push(st === 'gone' ? '404:SESSION_NOT_FOUND' : '410:SESSION_EXPIRED'); continue; }
            const s = m!;
            if (op.kind === 'renew') {
              if (expiresAt(s) === cap(s)) { want.push('422:MAX_DURATION_REACHED'); continue; }
              s.anchor = now; s.renewalCount++; want.push(`200:${s.renewalCount}`);
            } else {
              s.lastActivity = now;
              if (s.cfg.autoRenew) { s.anchor = now; s.renewalCount++; }
              if (op.kind === 'msg') s.messages++;
              want.push(`${op.kind === 'msg' ? 201 : 200}:${s.renewalCount}`);
            }
          }
          check(i, `burst ${op.kind}`, got, want.sort());
          break;
        }
        case 'sweep':
          await app.sweeper.sweep();
          purgeCatchUp = true;
          break;
        case 'adv':
          clock.advance(op.ms);
          break;
        case 'advTo': {
          const m = msOf(op.s);
          if (!m) break;
          const e = expiresAt(m);
          const t = { expiry: e, warn: e - m.cfg.warningThresholdMinutes * MIN, cap: cap(m), purge: e + RETENTION }[op.to] + op.d;
          if (t > now) clock.set(t);
          break;
        }
      }
    }
    void purgeCatchUp;
    if (coverage) (await import('node:fs')).writeFileSync(process.env.MODEL_COVERAGE!, JSON.stringify(coverage, null, 1));
  } finally {
    await target.close();
  }
}

let profile: Profile = 'builtIn';
async function sqliteTarget(): Promise<Target> {
  const app = await startTestApp({ clock: fakeClock(), retentionMs: RETENTION, sweepBatchSize: Number(process.env.MODEL_SWEEP_BATCH ?? 500), sessionDefaults: PROFILES[profile].serverDefaults });
  await registerAgents(app);
  return { app, close: () => app.close() };
}

async function postgresTarget(): Promise<Target> {
  const database = await createTestDatabase();
  const store = await openPostgresStore({ url: database.url, poolSize: 4 });
  const app = await startTestApp({ clock: fakeClock(), store, retentionMs: RETENTION, sweepBatchSize: Number(process.env.MODEL_SWEEP_BATCH ?? 500), sessionDefaults: PROFILES[profile].serverDefaults });
  await registerAgents(app);
  return { app, close: async () => { await app.close(); await database.drop(); } };
}

// Two instances on one PostgreSQL database (the store "for several instances"), sharing the
// fake clock: requests and sweeps alternate between them.
async function postgresTwoInstancesTarget(): Promise<Target> {
  const database = await createTestDatabase();
  const clock = fakeClock();
  const options = { clock, retentionMs: RETENTION, sweepBatchSize: Number(process.env.MODEL_SWEEP_BATCH ?? 500), sessionDefaults: PROFILES[profile].serverDefaults };
  const a = await startTestApp({ ...options, store: await openPostgresStore({ url: database.url, poolSize: 4 }) });
  const b = await startTestApp({ ...options, store: await openPostgresStore({ url: database.url, poolSize: 4 }) });
  await registerAgents(a);
  let turn = 0;
  const app = {
    ...a,
    request: (req: Parameters<TestApp['request']>[0]) => (turn++ % 2 === 0 ? a : b).request(req),
    sweeper: { ...a.sweeper, sweep: () => (turn++ % 2 === 0 ? a : b).sweeper.sweep() },
  } as TestApp;
  return { app, close: async () => { await a.close(); await b.close(); await database.drop(); } };
}

async function registerAgents(app: TestApp) {
  for (const [n, a] of AGENTS.entries()) {
    const res = await app.request({ method: 'POST', url: '/api/agents', body: { characterJson: { id: a.id, name: `agent${n}`, settings: a.settings } } });
    expect(res.status).toBe(201);
  }
}

async function shrink(ops: Op[], makeTarget: () => Promise<Target>, budget: number): Promise<Op[]> {
  const fails = async (candidate: Op[]) => {
    try {
      await run(candidate, makeTarget);
      return false;
    } catch (e) {
      return e instanceof Mismatch;
    }
  };
  let current = ops;
  let chunk = Math.max(1, current.length >> 1);
  while (chunk >= 1 && budget > 0) {
    let removed = false;
    for (let start = 0; start < current.length && budget > 0; ) {
      const candidate = [...current.slice(0, start), ...current.slice(start + chunk)];
      budget--;
      if (candidate.length > 0 && (await fails(candidate))) {
        current = candidate;
        removed = true;
      } else start += chunk;
    }
    if (!removed) chunk >>= 1;
  }
  return current;
}

const SEEDS = (process.env.MODEL_SEEDS ?? '1').split(',').map(Number);
const LENGTH = Number(process.env.MODEL_LENGTH ?? 400);

for (const [name, makeTarget] of [['SQLite', sqliteTarget], ['PostgreSQL', postgresTarget], ['PostgreSQL, two instances', postgresTwoInstancesTarget]] as const) {
  for (const p of Object.keys(PROFILES) as Profile[]) describe(`model-based random sequences on ${name}, ${p} defaults`, () => {
    for (const seed of SEEDS) {
      it(`seed ${seed}: ${LENGTH} operations agree with the model`, async () => {
        profile = p;
        useProfile(p);
        const ops = generate(seed, LENGTH);
        try {
          await run(ops, makeTarget);
        } catch (e) {
          if (!(e instanceof Mismatch) || process.env.MODEL_NO_SHRINK) throw e;
          const small = await shrink(ops, makeTarget, Number(process.env.MODEL_SHRINK_BUDGET ?? 300));
          const log: string[] = [];
          let message = '';
          try { await run(small, makeTarget, log); } catch (e2) { message = (e2 as Error).message; }
          throw new Error(`seed ${seed} (${name}, ${p}) fails; shrunk to ${small.length} ops:\n${log.join('\n')}\n${message}`);
        }
      }, 600_000);
    }
  });
}
