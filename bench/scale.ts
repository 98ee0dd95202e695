// Scale: the same reads against a database grown from the smallest size to the largest,
// each latency a ratio to the smallest size measured beside it again (requests to the two
// alternating, so both see the same drift of the machine); the server's memory at the
// largest; then every stored session expired at once, with the sweeper watched.
import { randomUUID } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nextPosition } from '../src/domain/message-order.js';
import { sessionId } from '../src/domain/session-id.js';
import { startTiming } from '../src/domain/timeout-policy.js';
import { openSqliteStore } from '../src/storage/sqlite/sqlite-store.js';
import type { SessionRecord, Store } from '../src/storage/store.js';
import { rssMb, sampleLatencies, spawnOnServerCpu, startOurServer } from './lib.js';

export interface ScaleStep {
  sessions: number;
  /** Messages in the one long conversation at this step. */
  messages: number;
}

export interface ScaleSettings {
  steps: ScaleStep[];
  samples: number;
}

interface Latency {
  p50: number;
  p99: number;
}

export const SCALE_READS = ['getSession', 'listSessionsByAgent', 'listSessionsByUser', 'messagesNewestPage', 'messagesMiddlePage'] as const;
export type ScaleRead = (typeof SCALE_READS)[number];

/** Each read: sequential requests, microseconds; and its p50 over the same at the smallest step. */
export type ScaleStepResult = ScaleStep & {
  loadSeconds: number;
  vsSmallest: Record<ScaleRead, number>;
  /** Each read's p50 on the copy of the smallest database, measured beside this step (its ratio's denominator). */
  smallestBesideP50: Record<ScaleRead, number>;
} & Record<ScaleRead, Latency>;

export interface SweepResult {
  sessions: number;
  /** What the expiring pass did: sessions marked expired until migration 26, since then the warnings and expiries it announced (the names kept for earlier results). */
  marked: number;
  markSeconds: number;
  markMaxEventLoopDelayMs: number;
  purged: number;
  purgeSeconds: number;
  purgeMaxEventLoopDelayMs: number;
}

export interface ScaleResult {
  steps: ScaleStepResult[];
  /** The largest step's vsSmallest. */
  ratios: Record<ScaleRead, number>;
  rssMbAtLargest: number;
  sweep: SweepResult;
}

const SESSIONS_PER_AGENT = 100;
const SESSIONS_PER_USER = 10;
const INSERTS_PER_TRANSACTION = 10_000;
const LONG_LIVED = { timeoutMinutes: 1440, autoRenew: true, maxDurationMinutes: 20160, warningThresholdMinutes: 5 };

/** What the loader has written so far, and what the reads pick from. */
interface Loaded {
  sessionIds: string[];
  agentIds: string[];
  userIds: string[];
  chatSessionId: string;
  messages: number;
  /** createdAt of the chat's first message; message i was written at firstMessageAt + i. */
  firstMessageAt: number;
}

/** A small deterministic generator, so every run reads the same spread of rows. */
function randomIndex(seed: number): (size: number) => number {
  let state = seed >>> 0;
  return (size) => {
    state = (Math.imul(state ^ (state >>> 15), 0x2c1b3c6d) + 0x9e3779b9) >>> 0;
    return state % size;
  };
}

async function inTransactions(count: number, write: (i: number) => Promise<unknown>): Promise<void> {
  for (let start = 0; start < count; start += INSERTS_PER_TRANSACTION) {
    const batch = [];
    // Writes issued in one turn commit together (group commit): one transaction per batch.
    for (let i = start; i < Math.min(count, start + INSERTS_PER_TRANSACTION); i += 1) batch.push(write(i));
    await Promise.all(batch);
  }
}

/** Grows the database to `step` through the store itself, as the server would write it. */
async function growTo(store: Store, loaded: Loaded, step: ScaleStep, now: number): Promise<void> {
  const from = loaded.sessionIds.length;
  const agentsNeeded = Math.ceil(step.sessions / SESSIONS_PER_AGENT);
  await inTransactions(agentsNeeded - loaded.agentIds.length, async () => {
    const id = randomUUID();
    loaded.agentIds.push(id);
    await store.insertAgent({ id, name: 'Scale', settings: {}, createdAt: now });
  });
  await inTransactions(step.sessions - from, async (i) => {
    const index = from + i;
    const userIndex = Math.floor(index / SESSIONS_PER_USER);
    if (userIndex === loaded.userIds.length) loaded.userIds.push(randomUUID());
    const createdAt = now - (step.sessions - index);
    const session: SessionRecord = {
      id: sessionId(), // as createSession makes them
      agentId: loaded.agentIds[index % loaded.agentIds.length]!,
      userId: loaded.userIds[userIndex]!,
      metadata: { platform: 'bench' },
      announced: 'nothing',
      status: 'active',
      ...startTiming(createdAt, LONG_LIVED),
    };
    loaded.sessionIds.push(session.id);
    if (!(await store.insertSession(session))) throw new Error('agent missing');
  });
  if (!loaded.chatSessionId) loaded.chatSessionId = loaded.sessionIds[0]!;
  const fromMessage = loaded.messages;
  await inTransactions(step.messages - fromMessage, async (i) => {
    const createdAt = loaded.firstMessageAt + fromMessage + i;
    await store.appendMessage(loaded.chatSessionId, (session, lastPosition) => ({
      session: session!,
      message: {
        id: randomUUID(),
        sessionId: loaded.chatSessionId,
        position: nextPosition(createdAt, lastPosition),
        createdAt,
        authorId: loaded.userIds[0]!,
        isAgent: i % 2 === 1,
        content: `Message ${fromMessage + i} of a long conversation, about as long as a chat line usually is.`,
        attachments: [],
        metadata: {},
      },
    }));
  });
  loaded.messages = step.messages;
}

/** A database and what it holds: a server's URL and the rows its reads pick from. */
interface Measured {
  baseUrl: string;
  loaded: Loaded;
}

/** Each read against every database, their requests alternating so that all see the same drift. */
async function measureReads(databases: Measured[], samples: number, seed: number): Promise<Record<ScaleRead, Latency>[]> {
  const sources = databases.map(({ baseUrl, loaded }) => {
    const pick = randomIndex(seed);
    const api = `${baseUrl}/api/messaging/sessions`;
    const chat = `${api}/${loaded.chatSessionId}/messages?limit=50`;
    const middle = loaded.firstMessageAt + Math.floor(loaded.messages / 2);
    return {
      getSession: () => `${api}/${loaded.sessionIds[pick(loaded.sessionIds.length)]}`,
      listSessionsByAgent: () => `${api}?agentId=${loaded.agentIds[pick(loaded.agentIds.length)]}&limit=20`,
      listSessionsByUser: () => `${api}?userId=${loaded.userIds[pick(loaded.userIds.length)]}&limit=20`,
      messagesNewestPage: () => chat,
      messagesMiddlePage: () => `${chat}&before=${middle}`,
    } satisfies Record<ScaleRead, () => string>;
  });
  const results = databases.map(() => ({}) as Record<ScaleRead, Latency>);
  for (const read of SCALE_READS) {
    const latencies = await sampleLatencies(samples, sources.map((source) => source[read]));
    latencies.forEach((latency, i) => (results[i]![read] = latency));
  }
  return results;
}

/** Runs bench/sweep-probe.ts on the server's CPU against the file and reads its report. */
async function probeSweep(databasePath: string, expireAt: number): Promise<SweepResult> {
  const child = spawnOnServerCpu(['bench/sweep-probe.ts', databasePath, String(expireAt)]);
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`sweep probe exited ${code}`);
  return JSON.parse(output) as SweepResult;
}

/**
 * Only the sweeper's step, at one size (`npm run bench -- --sweep-only [--quick]`): a database
 * grown as the scale steps grow it, then every session expired at once and purged.
 */
export async function runSweepOnly(step: ScaleStep, log: (line: string) => void): Promise<SweepResult> {
  const directory = mkdtempSync(join(tmpdir(), 'sessions-sweep-'));
  const databasePath = join(directory, 'sessions.db');
  const now = Date.now();
  const loaded: Loaded = { sessionIds: [], agentIds: [], userIds: [], chatSessionId: '', messages: 0, firstMessageAt: now - 10_000_000 };
  try {
    const started = performance.now();
    const store = openSqliteStore(databasePath);
    await growTo(store, loaded, step, now);
    await store.close();
    log(`sweep: ${step.sessions} sessions, ${step.messages} messages loaded in ${((performance.now() - started) / 1000).toFixed(1)} s; expiring them at once`);
    return await probeSweep(databasePath, now + 2 * LONG_LIVED.maxDurationMinutes * 60_000);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

/** The smallest step's rows: a copy of what was loaded then. */
function snapshot(loaded: Loaded): Loaded {
  return { ...loaded, sessionIds: [...loaded.sessionIds], agentIds: [...loaded.agentIds], userIds: [...loaded.userIds] };
}

/** Copies a closed database (and its WAL, if one is left) beside itself. */
function copyDatabase(from: string, to: string): void {
  copyFileSync(from, to);
  if (existsSync(`${from}-wal`)) copyFileSync(`${from}-wal`, `${to}-wal`);
}

export async function runScale(settings: ScaleSettings, log: (line: string) => void): Promise<ScaleResult> {
  const directory = mkdtempSync(join(tmpdir(), 'sessions-scale-'));
  const databasePath = join(directory, 'sessions.db');
  // The smallest step's database stays aside: each later step is measured beside it again.
  const smallestPath = join(directory, 'smallest.db');
  const now = Date.now();
  const loaded: Loaded = { sessionIds: [], agentIds: [], userIds: [], chatSessionId: '', messages: 0, firstMessageAt: now - 10_000_000 };
  let smallest: Loaded | undefined;
  const steps: ScaleStepResult[] = [];
  let rssMbAtLargest = NaN;
  // Nothing expires during the reads; the sweeper is kept out of them.
  const startServer = (path: string) => startOurServer(path, { SESSION_SWEEP_INTERVAL_SECONDS: '86400' });
  try {
    for (const step of settings.steps) {
      const started = performance.now();
      const store = openSqliteStore(databasePath);
      await growTo(store, loaded, step, now);
      await store.close();
      const loadSeconds = (performance.now() - started) / 1000;
      log(`scale: ${step.sessions} sessions, ${step.messages} messages loaded in ${loadSeconds.toFixed(1)} s`);
      if (!smallest) {
        copyDatabase(databasePath, smallestPath);
        smallest = snapshot(loaded);
      }

      const servers = [await startServer(databasePath), ...(steps.length > 0 ? [await startServer(smallestPath)] : [])];
      try {
        const databases = [{ baseUrl: servers[0]!.baseUrl, loaded }, ...servers.slice(1).map(({ baseUrl }) => ({ baseUrl, loaded: smallest! }))];
        const [reads, smallestBeside = reads] = await measureReads(databases, settings.samples, steps.length + 1);
        const vsSmallest = Object.fromEntries(SCALE_READS.map((read) => [read, Math.round((reads![read].p50 / smallestBeside![read].p50) * 100) / 100]));
        const smallestBesideP50 = Object.fromEntries(SCALE_READS.map((read) => [read, smallestBeside![read].p50]));
        steps.push({
          ...step,
          loadSeconds: Math.round(loadSeconds * 10) / 10,
          ...reads!,
          vsSmallest: vsSmallest as Record<ScaleRead, number>,
          smallestBesideP50: smallestBesideP50 as Record<ScaleRead, number>,
        });
        rssMbAtLargest = rssMb(servers[0]!.pid);
      } finally {
        await Promise.all(servers.map((server) => server.stop()));
      }
    }
    log(`scale: expiring ${loaded.sessionIds.length} sessions at once`);
    const sweep = await probeSweep(databasePath, now + 2 * LONG_LIVED.maxDurationMinutes * 60_000);
    return {
      steps,
      ratios: steps.at(-1)!.vsSmallest,
      rssMbAtLargest,
      sweep,
    };
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}
