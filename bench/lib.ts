// Processes and measurements shared by the benchmarks.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { distIsFresh } from '../test/helpers/built.js';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));

const temporaryDirectories: string[] = [];
process.once('exit', () => {
  for (const directory of temporaryDirectories) rmSync(directory, { recursive: true, force: true });
});

// Interrupted (Ctrl-C, a timeout's SIGTERM), the bench passes the signal on to the processes
// it started (its servers stop; the pinned bench, below, does all this in turn) and exits
// through 'exit' above, so no database is left behind (a full run's reach hundreds of MB).
const children = new Set<ChildProcess>();
const cleanUps = new Set<() => void>();
// `on`, not `once`: a Ctrl-C reaches every process of the group, then the forwarded one comes
// too, and a signal with no listener left kills the process before it has cleaned up.
for (const [signal, number] of [['SIGINT', 2], ['SIGTERM', 15]] as const) {
  process.on(signal, () => {
    for (const child of children) child.kill(signal);
    for (const cleanUp of cleanUps) cleanUp();
    process.exit(128 + number);
  });
}

/** Runs `cleanUp` (synchronous) if the bench is interrupted before the returned function is called. */
export function onInterrupt(cleanUp: () => void): () => void {
  cleanUps.add(cleanUp);
  return () => cleanUps.delete(cleanUp);
}

/** A process the bench started, sent the signal that interrupts the bench. */
export function tracked<T extends ChildProcess>(child: T): T {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/**
 * A fresh database file in a temporary directory of its own, deleted when the bench
 * exits: a full run makes dozens, up to hundreds of MB each, and left behind they once
 * filled this machine's disk.
 */
export function temporaryDatabase(prefix = 'sessions-bench-'): string {
  const directory = mkdtempSync(join(tmpdir(), prefix));
  temporaryDirectories.push(directory);
  return join(directory, 'sessions.db');
}
/** The server gets CPU 0, the load generator CPU 1, when the machine allows it. */
export const CAN_PIN = cpus().length >= 2 && spawnSync('taskset', ['-c', '0', 'true']).status === 0;
export const SERVER_CPU = '0';
export const LOAD_CPU = '1';

/** Runs a script on the server's CPU: TypeScript through tsx, JavaScript (the built server) as is. */
export function spawnOnServerCpu(args: string[], env: Record<string, string> = {}, stderr: 'inherit' | 'pipe' = 'inherit'): ChildProcess {
  const command = [process.execPath, ...(args[0]!.endsWith('.ts') ? ['--import', 'tsx'] : []), ...args];
  const [file, ...rest] = CAN_PIN ? ['taskset', '-c', SERVER_CPU, ...command] : command;
  return tracked(spawn(file!, rest, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', stderr] }));
}

interface RunningServer {
  baseUrl: string;
  pid: number;
  /** The bench's set-up requests are done; the load follows (the stack floor starts keeping answers). */
  setUp?(): void;
  stop(): Promise<void>;
}

/** Starts a script that prints "listening on http://…" to stderr, as the server does, and waits for that line. */
async function startProcess(args: string[], env: Record<string, string>): Promise<RunningServer> {
  const child = spawnOnServerCpu(args, { HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'error', ...env }, 'pipe');
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const baseUrl = await new Promise<string>((resolve, reject) => {
    let output = '';
    child.stderr!.on('data', (chunk) => {
      output += chunk;
      const match = /listening on (http:\/\/\S+)/.exec(output);
      if (match) resolve(match[1]!);
      // Anything else the server says (a failure) is the bench's to show; its banners are not.
      const said = String(chunk).split('\n').filter((line) => line && !/listening on|Sessions API stopped/.test(line));
      if (said.length > 0) process.stderr.write(`${said.join('\n')}\n`);
    });
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited ${code} before listening`)));
  });
  return {
    baseUrl,
    pid: child.pid!,
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** The server as `npm start` runs it: compiled (see buildServer), without tsx in the process. */
export const startOurServer = (databasePath: string, env: Record<string, string> = {}) =>
  startProcess(['dist/main.js'], { DATABASE_PATH: databasePath, ...env });

/** dist/, built unless it is newer than every source file (what `npm start` and the server processes run). */
export function buildServer(): void {
  if (distIsFresh()) return;
  const { status } = spawnSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' });
  if (status !== 0) throw new Error('npm run build failed');
}

export const startCeiling = () => startProcess(['bench/ceiling-server.ts'], {});

/** The server as `npm start` runs it, each route answering a request it answered before as it did then (bench/floor-preload.ts). */
export async function startFloor(databasePath: string, env: Record<string, string> = {}): Promise<RunningServer> {
  const server = await startProcess(['--import', 'tsx', '--import', './bench/floor-preload.ts', 'dist/main.js'], { DATABASE_PATH: databasePath, ...env });
  return { ...server, setUp: () => process.kill(server.pid, 'SIGWINCH') };
}

export function rssMb(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Math.round(Number(match[1]) / 1024) : NaN;
}

const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 });

/** One request on a kept-alive connection: status, body and the time it took (µs). */
function timedRequest(url: string, method = 'GET', body?: unknown): Promise<{ status: number; body: any; micros: number }> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const req = request(url, { method, agent: keepAlive, headers: payload ? { 'content-type': 'application/json' } : {} }, (res) => {
      let text = '';
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined, micros: Number(process.hrtime.bigint() - started) / 1000 }),
      );
    });
    req.on('error', reject);
    req.end(payload);
  });
}

export async function api(url: string, method = 'GET', body?: unknown): Promise<any> {
  const response = await timedRequest(url, method, body);
  if (response.status >= 400) throw new Error(`${method} ${url} → ${response.status} ${JSON.stringify(response.body)}`);
  return response.body;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * Sequential requests, one at a time (the latency of the server, not of a queue), to each
 * source in turn, `count / rounds` at a time, so that sources
 * compared with each other see the same drift of the machine's speed.
 */
export async function sampleLatencies(count: number, sources: ((i: number) => string)[], rounds = 10): Promise<{ p50: number; p99: number }[]> {
  const micros = sources.map((): number[] => []);
  const time = async (source: number, i: number, keep: boolean) => {
    const url = sources[source]!(i);
    const response = await timedRequest(url);
    if (response.status !== 200) throw new Error(`${url} → ${response.status}`);
    if (keep) micros[source]!.push(response.micros);
  };
  for (let source = 0; source < sources.length; source += 1) for (let i = 0; i < 50; i += 1) await time(source, i, false); // warm-up
  const perRound = Math.ceil(count / rounds);
  for (let done = 0; done < count; done += perRound) {
    for (let source = 0; source < sources.length; source += 1) {
      for (let i = done; i < Math.min(count, done + perRound); i += 1) await time(source, 50 + i, true);
    }
  }
  return micros.map((values) => ({ p50: Math.round(percentile(values, 50)), p99: Math.round(percentile(values, 99)) }));
}
