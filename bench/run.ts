// `npm run bench [-- --quick] [--postgres | --sweep-only | --keyed | --only=…]`: throughput beside the ceiling, scale, memory and the
// sweeper, in one run. Writes bench/results/latest.json, prints a Markdown report, and
// (full runs only) puts that report into the README's Performance section.
// `npm run bench -- --only=event-log,warnings`: only those event steps, at the run's sizes;
// prints their JSON and writes nothing.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { constants, cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildServer, CAN_PIN, LOAD_CPU, ROOT, SERVER_CPU, spawnOnServerCpu, startCeiling, startFloor, startOurServer, tracked } from './lib.js';
import { type Results, renderReport, evaluateTargets } from './report.js';
import { runDueWarnings, runEvents, runLogOverhead } from './events.js';
import { runMetricsOverhead } from './metrics-overhead.js';
import { runPostgresBench } from './postgres.js';
import { runScale, runSweepOnly } from './scale.js';
import { KEYED_CREATE, type MeasuredScenario, runKeyedOverhead, runScenarios, type ScenarioResult } from './throughput.js';

const ONLY_STEPS = ['event-log', 'warnings'];
const USAGE = `usage: npm run bench [-- --quick] [--postgres | --sweep-only | --keyed | --only=${ONLY_STEPS.join(',')}]
  (none)        full run, about 25 minutes at full load on both cores; updates the README's Performance table
  --quick       under 5 minutes at smaller sizes; leaves the README alone
  --postgres    the throughput scenarios on a PostgreSQL cluster of its own
  --sweep-only  only the scale step's expiry and purge, at its largest size
  --keyed       only createSession with an API key and an Idempotency-Key against plain
  --only=STEPS  only those event steps (${ONLY_STEPS.join(', ')}); prints JSON, writes nothing`;

// An option it does not know is refused: ignored, it started the full 25-minute run.
let options;
try {
  options = parseArgs({
    options: {
      quick: { type: 'boolean' },
      postgres: { type: 'boolean' },
      'sweep-only': { type: 'boolean' },
      keyed: { type: 'boolean' },
      only: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  }).values;
} catch (error) {
  console.error(`bench: ${(error as Error).message}\n${USAGE}`);
  process.exit(2);
}
if (options.help) {
  console.log(USAGE);
  process.exit(0);
}
const quick = options.quick === true;

// The load generator (this process) goes on the CPU the server does not use. A signal to
// this process goes on to the pinned one (tracked), which stops its servers and removes its databases.
if (CAN_PIN && process.env.BENCH_PINNED !== '1') {
  const args = ['-c', LOAD_CPU, process.execPath, ...process.execArgv, ...process.argv.slice(1)];
  const pinned = tracked(spawn('taskset', args, { stdio: 'inherit', env: { ...process.env, BENCH_PINNED: '1' } }));
  const [status, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => pinned.once('exit', (...ended) => resolve(ended)));
  process.exit(status ?? 128 + (signal ? constants.signals[signal] : 0));
}

const settings = quick
  ? {
      load: { durationSeconds: 3, warmupSeconds: 1, connections: 50 },
      scale: { steps: [{ sessions: 1_000, messages: 100 }, { sessions: 10_000, messages: 1_000 }, { sessions: 100_000, messages: 10_000 }], samples: 300 },
      events: { rounds: 1, dueSessions: 10_000, streamClients: 100, streamEvents: 20, replyWaiters: 100 },
    }
  : {
      load: { durationSeconds: 10, warmupSeconds: 3, connections: 50 },
      scale: { steps: [{ sessions: 1_000, messages: 100 }, { sessions: 100_000, messages: 10_000 }, { sessions: 1_000_000, messages: 100_000 }], samples: 1000 },
      events: { rounds: 5, dueSessions: 100_000, streamClients: 1000, streamEvents: 50, replyWaiters: 1000 },
    };

const log = (line: string) => console.error(`[bench] ${line}`);
const started = performance.now();

if (options.postgres) {
  await runPostgresBench(settings.load, log);
  process.exit(0);
}

// Only the scale step's expiry and purge, at the largest size (the lead's quiet check of the purge).
if (options['sweep-only']) {
  const sweep = await runSweepOnly(settings.scale.steps.at(-1)!, log);
  console.log(JSON.stringify(sweep));
  log(`purge: ${((sweep.purgeSeconds * 1e6) / Math.max(1, sweep.purged)).toFixed(0)} µs a session, longest event-loop delay ${sweep.purgeMaxEventLoopDelayMs} ms`);
  process.exit(0);
}

// Only the keyed create against the plain one, side by side on fresh databases (medians of the rounds).
if (options.keyed) {
  buildServer();
  const rounds = quick ? 2 : 5;
  log(`createSession plain, then with an API key and an Idempotency-Key, ${rounds} rounds`);
  const keyed = await runKeyedOverhead(settings.load, rounds);
  console.log(`${KEYED_CREATE}: ${keyed.onReqPerSec} req/s against ${keyed.offReqPerSec} plain, ${keyed.ratio}× (median of ${rounds} rounds; target ≥ 0.9×)`);
  log('WAL frames per create in the store, plain and with an idempotency record (bench/keyed-wal.ts)');
  const frames = await runOnServerCpu<Array<{ batch: number; plain: { framesPerCreate: number }; keyed: { framesPerCreate: number } }>>(['bench/keyed-wal.ts']);
  for (const { batch, plain, keyed: withRecord } of frames) {
    console.log(`WAL frames per create, batches of ${batch}: ${plain.framesPerCreate} plain, ${withRecord.framesPerCreate} with an idempotency record`);
  }
  process.exit(0);
}

const only = options.only?.split(',');
if (only) {
  const unknown = only.filter((step) => !ONLY_STEPS.includes(step));
  if (unknown.length > 0) {
    console.error(`bench: --only: unknown step ${unknown.join(', ')} (known: ${ONLY_STEPS.join(', ')})`);
    process.exit(2);
  }
  log(`only ${only.join(', ')}; ${CAN_PIN ? `server on CPU ${SERVER_CPU}, load on CPU ${LOAD_CPU}` : 'NOT pinned'}`);
  const results: Record<string, unknown> = {};
  if (only.includes('event-log')) {
    log('event log off / on (createSession, sendSessionMessage)');
    results.logOverhead = await runLogOverhead(settings.load, settings.events.rounds);
  }
  if (only.includes('warnings')) {
    log(`${settings.events.dueSessions.toLocaleString('en-US')} warnings due in one second, one stream`);
    results.dueWarnings = await runDueWarnings(settings.events.dueSessions);
  }
  console.log(JSON.stringify(results, null, 2));
  process.exit(0);
}

/**
 * Each scenario's ratio to the ceiling measured around it: a scenario with a size-matched ceiling
 * gets its plain ratio from the GET ceiling measured around getSession.
 */
function againstCeiling(results: Record<string, MeasuredScenario>): ScenarioResult[] {
  const plainGet = results.getSession?.ceiling?.reqPerSec;
  const ratio = (reqPerSec: number, ceiling: number) => Math.round((reqPerSec / ceiling) * 100) / 100;
  return Object.entries(results).map(([scenario, { ceiling, ...result }]) => {
    if (result.bodyBytes === undefined) return { scenario, ...result, ceilingReqPerSec: ceiling!.reqPerSec, ratio: ratio(result.reqPerSec, ceiling!.reqPerSec) };
    return {
      scenario,
      ...result,
      ceilingReqPerSec: plainGet!,
      ratio: ratio(result.reqPerSec, plainGet!),
      sizedCeilingReqPerSec: ceiling!.reqPerSec,
      sizedRatio: ratio(result.reqPerSec, ceiling!.reqPerSec),
    };
  });
}

/** A bench script run on the server's CPU; its last line, JSON. */
async function runOnServerCpu<T>(args: string[]): Promise<T> {
  const child = spawnOnServerCpu(args);
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  await new Promise((resolve) => child.once('exit', resolve));
  return JSON.parse(output.trim().split('\n').at(-1)!);
}

log(`${quick ? 'quick' : 'full'} run; ${CAN_PIN ? `server on CPU ${SERVER_CPU}, load on CPU ${LOAD_CPU}` : 'NOT pinned (taskset unavailable): figures will be noisy'}`);
buildServer();
const ceilingServer = await startCeiling();
log('scenarios, each between two runs of the ceiling (SQLITE_SYNCHRONOUS=normal)');
const measured = await runScenarios(settings.load, undefined, {}, startOurServer, ceilingServer.baseUrl);
const scenarios = againstCeiling(measured);
const ceiling = { GET: measured.getSession!.ceiling!, POST: measured.createSession!.ceiling! };
log('the stack floor: the same scenarios, each route answering again what it answered first (bench/floor-preload.ts)');
const floor = againstCeiling(await runScenarios(settings.load, undefined, {}, startFloor, ceilingServer.baseUrl));
log('createSession plain, then with an API key and an Idempotency-Key');
const keyedOverhead = await runKeyedOverhead(settings.load, quick ? 2 : 5);
log('write scenarios (SQLITE_SYNCHRONOUS=full)');
const synchronousFull = againstCeiling(await runScenarios(settings.load, ['createSession', 'sessionHeartbeat', 'sendSessionMessage'], { SQLITE_SYNCHRONOUS: 'full' }, startOurServer, ceilingServer.baseUrl));
await ceilingServer.stop();
log('metrics off, then on (METRICS_ENABLED)');
// Five rounds in a full run: one round in five was seen 10–30 % off in either direction (getSession, quiet machine).
const metricsOverhead = await runMetricsOverhead(settings.load, quick ? 2 : 5);
const scale = await runScale(settings.scale, log);
log('event-loop stall while another process holds the write lock (10 s)');
const lockStall = await runOnServerCpu<Results['lockStall']>(['bench/lock-probe.ts', '10']);
const countedSessions = settings.scale.steps.at(-1)!.sessions;
log(`each count statement at ${countedSessions.toLocaleString('en-US')} sessions (bench/counts-micro.ts)`);
const counts = await runOnServerCpu<Results['counts']>(['bench/counts-micro.ts', String(countedSessions)]);
const events = await runEvents({ load: settings.load, ...settings.events }, log);

const results: Results = {
  date: new Date().toISOString(),
  quick,
  machine: {
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    cores: cpus().length,
    memoryGb: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    pinned: CAN_PIN,
  },
  settings,
  ceiling,
  scenarios,
  floor,
  synchronousFull,
  metricsOverhead,
  keyedOverhead,
  scale,
  lockStall,
  events,
  counts,
  targets: [],
  seconds: 0,
};
results.targets = evaluateTargets(results);
results.seconds = Math.round((performance.now() - started) / 1000);

const resultsDirectory = join(ROOT, 'bench', 'results');
mkdirSync(resultsDirectory, { recursive: true });
writeFileSync(join(resultsDirectory, 'latest.json'), `${JSON.stringify(results, null, 2)}\n`);
const report = renderReport(results);
console.log(report);

if (!quick) {
  const readmePath = join(ROOT, 'README.md');
  const readme = readFileSync(readmePath, 'utf8');
  const pattern = /(<!-- bench:begin -->\n)[\s\S]*?(<!-- bench:end -->)/;
  if (pattern.test(readme)) {
    writeFileSync(readmePath, readme.replace(pattern, (_all, begin: string, end: string) => `${begin}${report}\n${end}`));
    log('README Performance section updated');
  }
}
log(`done in ${results.seconds} s; bench/results/latest.json written`);
