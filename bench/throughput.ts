// Req/s and latency of each scenario under load, beside the ceiling measured in the
// same run: the ratio is what is compared, because these machines are noisy.
import { randomUUID } from 'node:crypto';
import autocannon from 'autocannon';
import { generateApiKey, hashApiKey } from '../src/api-keys.js';
import { openSqliteStore } from '../src/storage/sqlite/sqlite-store.js';
import { api, startCeiling, startOurServer, temporaryDatabase } from './lib.js';
import { type OffOnRatio, offThenOn, type RunningVariant } from './off-then-on.js';

export interface LoadSettings {
  durationSeconds: number;
  warmupSeconds: number;
  connections: number;
}

export interface LoadResult {
  reqPerSec: number;
  p50: number;
  p99: number;
  errors: number;
  /** Median size of the answer's body (the scenarios measured against a size-matched ceiling). */
  bodyBytes?: number;
}

/** A scenario's figures, and those of the ceiling measured around it (runScenarios given a ceiling). */
export interface MeasuredScenario extends LoadResult {
  ceiling?: LoadResult;
}

export interface ScenarioResult extends LoadResult {
  scenario: string;
  ceilingReqPerSec: number;
  ratio: number;
  /** The ceiling route answering a constant body of bodyBytes, and the ratio to it. */
  sizedCeilingReqPerSec?: number;
  sizedRatio?: number;
}

/** The scenarios whose answers are large: they are also compared with a ceiling answering as many bytes. */
export const LIST_BY_CURSOR = 'listSessions, cursor, count=false';
export const SIZE_MATCHED = ['getSessionMessages', 'listSessions', LIST_BY_CURSOR];

/** The median size of `samples` answers to a GET. */
async function medianBodyBytes(url: string, samples = 11): Promise<number> {
  const sizes: number[] = [];
  for (let i = 0; i < samples; i += 1) sizes.push(Buffer.byteLength(await (await fetch(url)).text()));
  return sizes.sort((a, b) => a - b)[Math.floor(samples / 2)]!;
}

export interface Target {
  method: 'GET' | 'POST';
  path: string;
  body?: unknown;
  headers?: Record<string, string>;
  /** A new Idempotency-Key on every request: each one is a write, none a replay. */
  freshIdempotencyKey?: boolean;
}

/** The ceiling route (bench/ceiling-server.ts) of each method. */
const CEILING_TARGETS: Record<'GET' | 'POST', Target> = {
  GET: { method: 'GET', path: '/ceiling' },
  POST: { method: 'POST', path: '/ceiling', body: { agentId: 'x' } },
};

/** Load on one server, or spread over several (`baseUrl` a list: autocannon's connections round-robin over them). */
export async function load(baseUrl: string | string[], target: Target, settings: LoadSettings, seconds: number): Promise<LoadResult> {
  const result = await autocannon({
    // autocannon takes a list of URLs, though its types say one
    url: (Array.isArray(baseUrl) ? baseUrl.map((url) => `${url}${target.path}`) : `${baseUrl}${target.path}`) as string,
    method: target.method,
    connections: settings.connections,
    duration: seconds,
    headers: { ...(target.body === undefined ? {} : { 'content-type': 'application/json' }), ...target.headers },
    body: target.body === undefined ? undefined : JSON.stringify(target.body),
    requests: target.freshIdempotencyKey
      ? [{ setupRequest: (request) => ({ ...request, headers: { ...request.headers, 'idempotency-key': randomUUID() } }) }]
      : undefined,
  });
  return {
    reqPerSec: Math.round(result.requests.average),
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx,
  };
}

async function measure(baseUrl: string, target: Target, settings: LoadSettings): Promise<LoadResult> {
  if (settings.warmupSeconds > 0) await load(baseUrl, target, settings, settings.warmupSeconds);
  return load(baseUrl, target, settings, settings.durationSeconds);
}

/**
 * The scenario, with the ceiling measured just before and just after it (half the duration
 * each; its req/s the mean of the two): the machine's speed drifts by tens of per cent over
 * minutes, so a ceiling measured once at the start does not match a scenario run later.
 */
async function measureBesideCeiling(baseUrl: string, target: Target, ceiling: { url: string; target: Target }, settings: LoadSettings): Promise<{ scenario: LoadResult; ceiling: LoadResult }> {
  if (settings.warmupSeconds > 0) await load(baseUrl, target, settings, settings.warmupSeconds);
  const half = Math.ceil(settings.durationSeconds / 2);
  const before = await load(ceiling.url, ceiling.target, settings, half);
  const scenario = await load(baseUrl, target, settings, settings.durationSeconds);
  const after = await load(ceiling.url, ceiling.target, settings, half);
  return {
    scenario,
    ceiling: {
      reqPerSec: Math.round((before.reqPerSec + after.reqPerSec) / 2),
      p50: Math.max(before.p50, after.p50),
      p99: Math.max(before.p99, after.p99),
      errors: before.errors + after.errors,
    },
  };
}

/**
 * The scenarios' requests on a server with a fresh database: an agent, sessions to read,
 * beat and list, and a conversation of 60 messages.
 */
export async function scenarioTargets(baseUrl: string): Promise<Record<string, Target>> {
  const base = `${baseUrl}/api`;
  const agentId = (await api(`${base}/agents`, 'POST', { characterJson: { name: 'Bench' } })).data.character.id;
  const userId = '5f1c1c8e-4a3b-4c7d-9e2f-0a1b2c3d4e5f';
  const longLived = { timeoutMinutes: 1440, maxDurationMinutes: 20160 };
  const newSession = async () => (await api(`${base}/messaging/sessions`, 'POST', { agentId, userId, timeoutConfig: longLived })).sessionId;
  const [readSession, beatSession, chatSession] = [await newSession(), await newSession(), await newSession()];
  for (let i = 0; i < 60; i += 1) await api(`${base}/messaging/sessions/${chatSession}/messages`, 'POST', { content: `message ${i}` });
  for (let i = 0; i < 200; i += 1) await newSession();
  const listPath = `/api/messaging/sessions?agentId=${agentId}&limit=20`;
  const secondPage = `${listPath}&count=false&cursor=${(await api(`${baseUrl}${listPath}&count=false`)).nextCursor}`;

  return {
    createSession: { method: 'POST', path: '/api/messaging/sessions', body: { agentId, userId, metadata: { platform: 'bench' } } },
    getSession: { method: 'GET', path: `/api/messaging/sessions/${readSession}` },
    sessionHeartbeat: { method: 'POST', path: `/api/messaging/sessions/${beatSession}/heartbeat` },
    sendSessionMessage: { method: 'POST', path: `/api/messaging/sessions/${chatSession}/messages`, body: { content: 'Hello from the benchmark' } },
    getSessionMessages: { method: 'GET', path: `/api/messaging/sessions/${chatSession}/messages?limit=50` },
    listSessions: { method: 'GET', path: listPath },
    [LIST_BY_CURSOR]: { method: 'GET', path: secondPage },
  };
}

/**
 * The scenarios against a fresh database; `env` sets the server (e.g. SQLITE_SYNCHRONOUS); `start` starts it
 * (default: as npm start does). Given `ceilingUrl` (bench/ceiling-server.ts), each scenario is measured between
 * two runs of the ceiling route of its method, or (SIZE_MATCHED) of the route answering as many bytes.
 */
export async function runScenarios(
  settings: LoadSettings,
  names: string[] | undefined,
  env: Record<string, string> = {},
  start: (databasePath: string, env: Record<string, string>) => Promise<{ baseUrl: string; setUp?(): void; stop(): Promise<void> }> = startOurServer,
  ceilingUrl?: string,
): Promise<Record<string, MeasuredScenario>> {
  const server = await start(temporaryDatabase(), env);
  try {
    const scenarios = await scenarioTargets(server.baseUrl);
    server.setUp?.();
    const results: Record<string, MeasuredScenario> = {};
    for (const [name, target] of Object.entries(scenarios)) {
      if (names && !names.includes(name)) continue;
      const bodyBytes = SIZE_MATCHED.includes(name) ? await medianBodyBytes(`${server.baseUrl}${target.path}`) : undefined;
      if (ceilingUrl === undefined) {
        results[name] = { ...(await measure(server.baseUrl, target, settings)), bodyBytes };
        continue;
      }
      const ceilingTarget: Target = bodyBytes === undefined ? CEILING_TARGETS[target.method] : { method: 'GET', path: `/ceiling/sized?bytes=${bodyBytes}` };
      const measured = await measureBesideCeiling(server.baseUrl, target, { url: ceilingUrl, target: ceilingTarget }, settings);
      results[name] = { ...measured.scenario, bodyBytes, ceiling: measured.ceiling };
    }
    return results;
  } finally {
    await server.stop();
  }
}

export const KEYED_CREATE = 'createSession, API key + Idempotency-Key';

/**
 * createSession plain (keys off), and on a server with API keys on, sending a key from
 * the keys table and a fresh Idempotency-Key (a record written with each session),
 * side by side on fresh databases: the median ratio of the rounds (see off-then-on.ts).
 */
export async function runKeyedOverhead(settings: LoadSettings, rounds: number): Promise<OffOnRatio> {
  const [keyed] = await offThenOn([KEYED_CREATE], rounds, settings, (on) => startCreateVariant({ apiKey: on, idempotencyKey: on }));
  return keyed!;
}

/**
 * A server on a fresh database, its agent made through the store, and its createSession
 * request (KEYED_CREATE): with an API key (keys on) or without (keys off), with a fresh
 * Idempotency-Key per request or none.
 */
async function startCreateVariant(variant: { apiKey: boolean; idempotencyKey: boolean }): Promise<RunningVariant> {
  const databasePath = temporaryDatabase();
  const key = generateApiKey();
  const agentId = randomUUID();
  const store = openSqliteStore(databasePath);
  if (variant.apiKey) await store.insertApiKey({ id: randomUUID(), name: 'bench', keyHash: hashApiKey(key), admin: true, agentIds: [], createdAt: Date.now() });
  await store.insertAgent({ id: agentId, name: 'Bench', settings: {}, createdAt: Date.now() });
  await store.close();
  const server = await startOurServer(databasePath);
  const body = { agentId, userId: '5f1c1c8e-4a3b-4c7d-9e2f-0a1b2c3d4e5f', metadata: { platform: 'bench' } };
  const headers: Record<string, string> = variant.apiKey ? { 'x-api-key': key } : {};
  const target: Target = { method: 'POST', path: '/api/messaging/sessions', body, headers, freshIdempotencyKey: variant.idempotencyKey };
  return { baseUrl: server.baseUrl, targets: { [KEYED_CREATE]: target }, stop: () => server.stop() };
}

/** A server (`start`, as runScenarios takes it) on a fresh database, with the scenarios' requests: one side of offThenOn. */
export async function startWithScenarios(
  env: Record<string, string>,
  start: (databasePath: string, env: Record<string, string>) => Promise<{ baseUrl: string; stop(): Promise<void> }> = startOurServer,
): Promise<RunningVariant> {
  const server = await start(temporaryDatabase(), env);
  try {
    return { baseUrl: server.baseUrl, targets: await scenarioTargets(server.baseUrl), stop: () => server.stop() };
  } catch (error) {
    await server.stop();
    throw error;
  }
}

export async function runCeiling(settings: LoadSettings): Promise<{ GET: LoadResult; POST: LoadResult }> {
  const ceiling = await startCeiling();
  try {
    return { GET: await measure(ceiling.baseUrl, CEILING_TARGETS.GET, settings), POST: await measure(ceiling.baseUrl, CEILING_TARGETS.POST, settings) };
  } finally {
    await ceiling.stop();
  }
}

export const SCENARIO_METHOD: Record<string, 'GET' | 'POST'> = {
  createSession: 'POST',
  getSession: 'GET',
  sessionHeartbeat: 'POST',
  sendSessionMessage: 'POST',
  getSessionMessages: 'GET',
  listSessions: 'GET',
  [LIST_BY_CURSOR]: 'GET',
};
