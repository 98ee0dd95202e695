// The event benchmarks (bench/events-server.ts on the server's CPU, this process as the
// clients): what the event log costs createSession and sendSessionMessage (on / off in
// the same run), warnings for many sessions falling due in one second delivered to one
// stream, many concurrent streams (RSS and the server CPU each event costs to fan out),
// and many messages waiting for their agent's reply (transport http).
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { createInterface } from 'node:readline';
import { startTiming } from '../src/domain/timeout-policy.js';
import { openSqliteStore } from '../src/storage/sqlite/sqlite-store.js';
import type { SessionRecord } from '../src/storage/store.js';
import { CAN_PIN, ROOT, SERVER_CPU, api, temporaryDatabase, tracked } from './lib.js';
import { type OffOnRatio, offThenOn } from './off-then-on.js';
import { type LoadSettings, startWithScenarios } from './throughput.js';

export interface EventsResults {
  /** Medians over the rounds of req/s with the event log off and on, and of on / off. */
  logOverhead: OffOnRatio[];
  /** `serverCpuSeconds`: CPU the server used meanwhile (on a loaded machine, far less than the wall time). */
  dueWarnings: { sessions: number; deliveredSeconds: number; delivered: number; maxEventLoopDelayMs: number; serverCpuSeconds: number };
  streams: { clients: number; idleRssMb: number; rssMb: number; events: number; deliveredSeconds: number; serverCpuMsPerEvent: number; serverCpuUsPerDelivery: number };
  replyWaits: { waiters: number; rssMb: number; answered: number; p50Ms: number; p99Ms: number; maxMs: number };
}

export const EVENT_LOG_SCENARIOS = ['createSession', 'sendSessionMessage'];
const USER_ID = '5f1c1c8e-4a3b-4c7d-9e2f-0a1b2c3d4e5f';
const agent = new Agent({ keepAlive: true, maxSockets: Infinity });

interface EventsServer {
  baseUrl: string;
  pid: number;
  command(line: string): void;
  report(): Promise<{ maxEventLoopDelayMs: number; rssMb: number }>;
  stop(): Promise<void>;
}

export async function startEventsServer(databasePath: string, env: Record<string, string> = {}): Promise<EventsServer> {
  // BENCH_SERVER_NODE_ARGS: node options for the server alone, e.g. "--cpu-prof --cpu-prof-dir=bench/tmp/prof".
  const nodeArgs = process.env.BENCH_SERVER_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const command = [process.execPath, ...nodeArgs, '--import', 'tsx', 'bench/events-server.ts'];
  const [file, ...args] = CAN_PIN ? ['taskset', '-c', SERVER_CPU, ...command] : command;
  const child: ChildProcess = tracked(spawn(file!, args, { cwd: ROOT, env: { ...process.env, DATABASE_PATH: databasePath, ...env }, stdio: ['pipe', 'pipe', 'inherit'] }));
  const lines = createInterface({ input: child.stdout! });
  const waiting: Array<(line: string) => void> = [];
  let listening!: (url: string) => void;
  const baseUrl = new Promise<string>((resolve) => (listening = resolve));
  lines.on('line', (line) => {
    const match = /listening on (http:\/\/\S+)/.exec(line);
    if (match) listening(match[1]!);
    else waiting.shift()?.(line);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    baseUrl: await baseUrl,
    pid: child.pid!,
    command: (line) => child.stdin!.write(`${line}\n`),
    report() {
      const answer = new Promise<string>((resolve) => waiting.push(resolve));
      child.stdin!.write('report\n');
      return answer.then((line) => JSON.parse(line));
    },
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;

/** CPU time (user + system) of a process so far, in ms. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // clock ticks: 100 a second on Linux
}

/** A stream read by counting frames (`id:` lines); resolves `until(n)` once n came. */
function openCountingStream(url: string): Promise<{ count: () => number; until: (n: number) => Promise<void>; close: () => void }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent, headers: { accept: 'text/event-stream' } }, (res) => {
      let count = 0;
      // Frames are counted by their "\nid: ": the tail kept is one character shorter than
      // that, so a match is counted in the chunk it ends in, once (a 5-character tail
      // counted a match twice when a chunk ended with it: 100,001 of 100,000).
      let tail = '\n';
      const waiters: Array<{ n: number; done: () => void }> = [];
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        const text = tail + chunk;
        count += text.split('\nid: ').length - 1;
        tail = text.slice(-4);
        for (const waiter of waiters.filter((w) => count >= w.n)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.done();
        }
      });
      resolve({
        count: () => count,
        until: (n) => (count >= n ? Promise.resolve() : new Promise((done) => waiters.push({ n, done }))),
        close: () => req.destroy(),
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** createSession and sendSessionMessage with the event log off and on, side by side, for `rounds`. */
export function runLogOverhead(settings: LoadSettings, rounds: number): Promise<EventsResults['logOverhead']> {
  return offThenOn(EVENT_LOG_SCENARIOS, rounds, settings, (on) => startWithScenarios({ EVENT_LOG: on ? 'on' : 'off' }, startEventsServer));
}

/** `count` sessions whose warnings all fall due in the same second; one stream of session.warning receives them. */
export async function runDueWarnings(count: number): Promise<EventsResults['dueWarnings']> {
  const databasePath = temporaryDatabase('sessions-bench-events-');
  const store = openSqliteStore(databasePath);
  const agentId = randomUUID();
  const now = Date.now();
  await store.insertAgent({ id: agentId, name: 'Bench', settings: {}, createdAt: now });
  // Warnings at now + 5 min (timeout 10, threshold 5), all within one second.
  const timing = { timeoutMinutes: 10, autoRenew: false, maxDurationMinutes: 600, warningThresholdMinutes: 5 };
  for (let start = 0; start < count; start += 2000) {
    const batch: Array<Promise<boolean>> = [];
    for (let i = start; i < Math.min(count, start + 2000); i += 1) {
      const session: SessionRecord = { id: randomUUID(), agentId, userId: USER_ID, metadata: {}, announced: 'nothing', status: 'active', ...startTiming(now + (i % 1000), timing) };
      batch.push(store.insertSession(session));
    }
    await Promise.all(batch);
  }
  await store.close();
  const server = await startEventsServer(databasePath);
  try {
    const stream = await openCountingStream(`${server.baseUrl}/api/messaging/sessions/events?types=session.warning`);
    await new Promise((resolve) => setTimeout(resolve, 500));
    await server.report(); // resets the delay histogram
    const started = performance.now();
    const cpuBefore = cpuMs(server.pid);
    server.command(`jump ${5 * 60_000 + 1000}`);
    const deadline = new Promise((resolve) => setTimeout(resolve, 60_000));
    await Promise.race([stream.until(count), deadline]);
    const deliveredSeconds = Math.round((performance.now() - started) / 10) / 100;
    const serverCpuSeconds = Math.round((cpuMs(server.pid) - cpuBefore) / 10) / 100;
    const { maxEventLoopDelayMs } = await server.report();
    const delivered = stream.count();
    stream.close();
    return { sessions: count, deliveredSeconds, delivered, maxEventLoopDelayMs, serverCpuSeconds };
  } finally {
    await server.stop();
  }
}

/** `clients` streams of every event; `events` messages posted one after another; RSS and server CPU per event. */
async function runStreams(clients: number, events: number): Promise<EventsResults['streams']> {
  const server = await startEventsServer(temporaryDatabase('sessions-bench-events-'));
  try {
    const base = `${server.baseUrl}/api`;
    const agentId = (await api(`${base}/agents`, 'POST', { characterJson: { name: 'Bench' } })).data.character.id;
    const sessionId = (await api(`${base}/messaging/sessions`, 'POST', { agentId, userId: USER_ID })).sessionId;
    const idleRssMb = (await server.report()).rssMb;
    const streams = [];
    for (let i = 0; i < clients; i += 1) streams.push(await openCountingStream(`${base}/messaging/sessions/events?types=message.created`));
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const { rssMb } = await server.report();
    const cpuBefore = cpuMs(server.pid);
    const started = performance.now();
    for (let i = 0; i < events; i += 1) await api(`${base}/messaging/sessions/${sessionId}/messages`, 'POST', { content: `event ${i}` });
    await Promise.all(streams.map((stream) => stream.until(events)));
    const deliveredSeconds = Math.round((performance.now() - started) / 10) / 100;
    const cpu = cpuMs(server.pid) - cpuBefore;
    for (const stream of streams) stream.close();
    return {
      clients,
      idleRssMb,
      rssMb,
      events,
      deliveredSeconds,
      serverCpuMsPerEvent: Math.round((cpu / events) * 100) / 100,
      serverCpuUsPerDelivery: Math.round(((cpu * 1000) / (events * clients)) * 10) / 10,
    };
  } finally {
    await server.stop();
  }
}

function post(url: string, body: unknown): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

/** `waiters` messages sent with transport http at once, each answered by its agent's reply; latency from reply to answer. */
async function runReplyWaits(waiters: number): Promise<EventsResults['replyWaits']> {
  const server = await startEventsServer(temporaryDatabase('sessions-bench-events-'));
  try {
    const base = `${server.baseUrl}/api`;
    const agentId = (await api(`${base}/agents`, 'POST', { characterJson: { name: 'Bench' } })).data.character.id;
    const sessions: string[] = [];
    for (let i = 0; i < waiters; i += 1) sessions.push((await api(`${base}/messaging/sessions`, 'POST', { agentId, userId: USER_ID })).sessionId);
    const answeredAt: number[] = [];
    const answers = sessions.map((id, i) =>
      post(`${base}/messaging/sessions/${id}/messages`, { content: 'hello?', transport: 'http' }).then((answer) => {
        answeredAt[i] = performance.now();
        return answer;
      }),
    );
    // Every message stored (and so waiting) before the agent replies.
    for (const id of sessions) while ((await api(`${base}/messaging/sessions/${id}/messages`, 'GET')).messages.length < 1) await new Promise((resolve) => setTimeout(resolve, 10));
    const { rssMb } = await server.report();
    const repliedAt: number[] = [];
    await Promise.all(
      sessions.map((id, i) => {
        repliedAt[i] = performance.now();
        return post(`${base}/messaging/sessions/${id}/messages`, { content: 'here', authorId: agentId });
      }),
    );
    const results = await Promise.all(answers);
    const latencies = answeredAt.map((at, i) => at - repliedAt[i]!).sort((a, b) => a - b);
    const round = (ms: number) => Math.round(ms * 10) / 10;
    return {
      waiters,
      rssMb,
      answered: results.filter((answer) => answer.status === 201 && answer.text.includes('"agentResponse"')).length,
      p50Ms: round(percentile(latencies, 50)),
      p99Ms: round(percentile(latencies, 99)),
      maxMs: round(latencies.at(-1)!),
    };
  } finally {
    await server.stop();
  }
}

export async function runEvents(
  settings: { load: LoadSettings; rounds: number; dueSessions: number; streamClients: number; streamEvents: number; replyWaiters: number },
  log: (line: string) => void,
): Promise<EventsResults> {
  log('event log off / on (createSession, sendSessionMessage)');
  const logOverhead = await runLogOverhead(settings.load, settings.rounds);
  log(`${settings.dueSessions.toLocaleString('en-US')} warnings due in one second, one stream`);
  const dueWarnings = await runDueWarnings(settings.dueSessions);
  log(`${settings.streamClients} streams, ${settings.streamEvents} events`);
  const streams = await runStreams(settings.streamClients, settings.streamEvents);
  log(`${settings.replyWaiters} messages waiting for their agent's reply`);
  const replyWaits = await runReplyWaits(settings.replyWaiters);
  return { logOverhead, dueWarnings, streams, replyWaits };
}

// Alone: node --import tsx bench/events.ts [--quick]
if (import.meta.url === `file://${process.argv[1]}`) {
  const quick = process.argv.includes('--quick');
  const results = await runEvents(
    quick
      ? { load: { durationSeconds: 3, warmupSeconds: 1, connections: 50 }, rounds: 1, dueSessions: 10_000, streamClients: 100, streamEvents: 20, replyWaiters: 100 }
      : { load: { durationSeconds: 10, warmupSeconds: 3, connections: 50 }, rounds: 5, dueSessions: 100_000, streamClients: 1000, streamEvents: 50, replyWaiters: 1000 },
    (line) => console.error(`[bench] ${line}`),
  );
  console.log(JSON.stringify(results, null, 2));
}
