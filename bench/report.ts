// The benchmark's results: their shape, the targets judged against them, and
// the Markdown report printed and put into the README.
import type { EventsResults } from './events.js';
import type { MetricsOverhead } from './metrics-overhead.js';
import { SCALE_READS, type ScaleResult, type ScaleSettings } from './scale.js';
import type { OffOnRatio } from './off-then-on.js';
import { KEYED_CREATE, type LoadResult, type LoadSettings, type ScenarioResult } from './throughput.js';

export interface Target {
  figure: string;
  target: string;
  measured: string;
  met: boolean;
}

export interface Results {
  date: string;
  quick: boolean;
  machine: { cpu: string; cores: number; memoryGb: number; node: string; pinned: boolean };
  settings: { load: LoadSettings; scale: ScaleSettings };
  ceiling: Record<'GET' | 'POST', LoadResult>;
  scenarios: ScenarioResult[];
  /** The same scenarios against the stack floor (bench/floor-preload.ts), each beside the ceiling (absent from older results). */
  floor?: ScenarioResult[];
  /** The write scenarios again with SQLITE_SYNCHRONOUS=full. */
  synchronousFull: ScenarioResult[];
  /** The same scenarios with metrics off and on (absent from results taken before metrics existed). */
  metricsOverhead?: MetricsOverhead[];
  /** createSession plain, then with an API key and an Idempotency-Key, alternating (absent before; older runs had a keyed scenario row). */
  keyedOverhead?: OffOnRatio;
  scale: ScaleResult;
  /** bench/lock-probe.ts: the same light workload without, then with, a second process holding the write lock. */
  lockStall?: { holdSeconds: number; baseline: LockPhase; locked: LockPhase; healthAfter: number };
  /** bench/events.ts: the event log on / off, due warnings, many streams, many reply waits (absent before events existed). */
  events?: EventsResults;
  /** bench/counts-micro.ts at the largest scale: wall µs per count statement (absent before running totals). */
  counts?: Record<string, number> & { sessions: number };
  targets: Target[];
  seconds: number;
}

interface LockPhase {
  maxEventLoopDelayMs: number;
  reads: number;
  readP50Ms: number;
  readMaxMs: number;
  writes: number;
  writesCommitted: number;
  writes503: number;
  writeMaxMs: number;
  health: number[];
}

const times = (ratio: number) => `${ratio.toFixed(2)}×`;

function eventTargets(events: EventsResults | undefined): Target[] {
  if (!events) return [];
  const costliest = events.logOverhead.reduce((worst, m) => (m.ratio < worst.ratio ? m : worst));
  const due = events.dueWarnings;
  const count = due.sessions.toLocaleString('en-US');
  return [
    { figure: 'req/s with the event log on / off, createSession and sendSessionMessage', target: '≥ 0.9×', measured: `worst ${times(costliest.ratio)} (${costliest.scenario})`, met: costliest.ratio >= 0.9 },
    { figure: `${count} warnings due in one second, all on one stream`, target: '≤ 2 s', measured: `${due.delivered.toLocaleString('en-US')} in ${due.deliveredSeconds} s`, met: due.delivered === due.sessions && due.deliveredSeconds <= 2 },
    { figure: `max event-loop delay delivering those ${count} warnings`, target: '≤ 20 ms', measured: `${due.maxEventLoopDelayMs} ms`, met: due.maxEventLoopDelayMs <= 20 },
  ];
}

function eventsSection(events: EventsResults | undefined): string[] {
  if (!events) return [];
  const { streams, replyWaits } = events;
  return [
    '',
    `**Events** (\`bench/events.ts\`: the app as \`npm start\` wires it, through tsx, with bench-only controls in \`bench/events-server.ts\`; the event log off drops the events each write carries; off and on side by side on fresh databases, loaded in turns, ${events.logOverhead[0]?.rounds ?? 0} rounds, medians)`,
    '',
    table(
      ['scenario', 'req/s, event log off', 'req/s, event log on', 'on / off'],
      events.logOverhead.map((m) => [m.scenario, m.offReqPerSec.toLocaleString('en-US'), m.onReqPerSec.toLocaleString('en-US'), times(m.ratio)]),
    ),
    '',
    `${events.dueWarnings.sessions.toLocaleString('en-US')} sessions with warnings due in the same second: ${events.dueWarnings.delivered.toLocaleString('en-US')} delivered to one stream (\`types=session.warning\`) ${events.dueWarnings.deliveredSeconds} s after the clock reached them (server CPU meanwhile ${events.dueWarnings.serverCpuSeconds} s); longest event-loop delay ${events.dueWarnings.maxEventLoopDelayMs} ms. ` +
      `${streams.clients.toLocaleString('en-US')} concurrent streams: server RSS ${streams.idleRssMb} MB before, ${streams.rssMb} MB with them open; ${streams.events} events posted one after another reached every stream in ${streams.deliveredSeconds} s, ` +
      `costing the server ${streams.serverCpuMsPerEvent} ms of CPU per event (${streams.serverCpuUsPerDelivery} µs per delivery). ` +
      `${replyWaits.waiters.toLocaleString('en-US')} messages waiting at once for their agent's reply (\`transport: http\`): server RSS ${replyWaits.rssMb} MB while waiting; ${replyWaits.answered} answered; ` +
      `from the agent's reply sent to the waiting answer received, p50 / p99 / max ${replyWaits.p50Ms} / ${replyWaits.p99Ms} / ${replyWaits.maxMs} ms (all ${replyWaits.waiters} replies sent at once).`,
  ];
}

export function evaluateTargets({ scenarios, floor, scale, metricsOverhead = [], keyedOverhead, events, counts }: Results): Target[] {
  const ratioOf = (name: string) => scenarios.find((s) => s.scenario === name)?.ratio ?? 0;
  const ratioTarget = (name: string, least: number): Target => ({
    figure: `${name} req/s`,
    target: `≥ ${least} × ceiling`,
    measured: `${times(ratioOf(name))}${floorNote(floor, name, 'ratio')}`,
    met: ratioOf(name) >= least,
  });
  const reqPerSecOf = (name: string) => scenarios.find((s) => s.scenario === name)?.reqPerSec ?? 0;
  const keyedRatio = keyedOverhead?.ratio ?? Math.round((reqPerSecOf(KEYED_CREATE) / Math.max(1, reqPerSecOf('createSession'))) * 100) / 100;
  const worstP99 = scenarios.reduce((worst, s) => (s.p99 > worst.p99 ? s : worst));
  const scaleTarget = (figure: string, ratio: number): Target => ({ figure, target: '≤ 1.2×', measured: times(ratio), met: ratio <= 1.2 });
  const largest = scale.steps.at(-1)!.sessions.toLocaleString('en-US');
  const smallest = scale.steps[0]!.sessions.toLocaleString('en-US');
  const costliest = metricsOverhead.reduce<MetricsOverhead | undefined>((worst, m) => (!worst || m.ratio < worst.ratio ? m : worst), undefined);
  const metricsTarget: Target[] = costliest
    ? [{ figure: 'req/s with metrics on / off, every scenario', target: '≥ 0.9×', measured: `worst ${times(costliest.ratio)} (${costliest.scenario})`, met: costliest.ratio >= 0.9 }]
    : [];
  return [
    ...metricsTarget,
    ratioTarget('createSession', 0.5),
    ratioTarget('getSession', 0.7),
    ratioTarget('sessionHeartbeat', 0.7),
    ratioTarget('sendSessionMessage', 0.5),
    ...sizedTargets(scenarios, floor),
    {
      figure: 'createSession with API key + Idempotency-Key, vs without',
      target: '≥ 0.9×',
      measured: times(keyedRatio),
      met: keyedRatio >= 0.9,
    },
    { figure: 'p99 at 50 connections, every scenario', target: '≤ 10 ms', measured: `worst ${worstP99.p99} ms (${worstP99.scenario})`, met: worstP99.p99 <= 10 },
    scaleTarget(`getSession p50, ${largest} vs ${smallest} sessions`, scale.ratios.getSession),
    scaleTarget(`listSessions (filtered) p50, ${largest} vs ${smallest}`, Math.max(scale.ratios.listSessionsByAgent, scale.ratios.listSessionsByUser)),
    scaleTarget(`messages page p50, ${scale.steps.at(-1)!.messages.toLocaleString('en-US')} vs ${scale.steps[0]!.messages} messages`, Math.max(scale.ratios.messagesNewestPage, scale.ratios.messagesMiddlePage)),
    { figure: `RSS with ${largest} sessions stored`, target: '≤ 150 MB', measured: `${scale.rssMbAtLargest} MB`, met: scale.rssMbAtLargest <= 150 },
    {
      figure: `max event-loop delay expiring ${scale.sweep.sessions.toLocaleString('en-US')} sessions`,
      target: '≤ 20 ms',
      measured: `${scale.sweep.markMaxEventLoopDelayMs} ms`,
      met: scale.sweep.markMaxEventLoopDelayMs <= 20,
    },
    ...eventTargets(events),
    ...countTargets(counts),
  ];
}

/** The slowest count statement (total, stats and health, each filter), at the largest scale. */
function countTargets(counts: Results['counts']): Target[] {
  if (!counts) return [];
  const [slowest, us] = Object.entries(counts)
    .filter(([name]) => name.endsWith('Us'))
    .reduce((worst, entry) => (entry[1] > worst[1] ? entry : worst));
  return [{ figure: `each count at ${counts.sessions.toLocaleString('en-US')} sessions (total, stats, health; every filter)`, target: '≤ 50 µs', measured: `worst ${us} µs (${slowest.slice(0, -2)})`, met: us <= 50 }];
}

/** "; stack floor N×": the same ratio of the scenario's stack floor, when it was measured. */
function floorNote(floor: ScenarioResult[] | undefined, scenario: string, ratio: 'ratio' | 'sizedRatio'): string {
  const measured = floor?.find((s) => s.scenario === scenario)?.[ratio];
  return measured === undefined ? '' : `; stack floor ${times(measured)}`;
}

/** getSessionMessages and listSessions against the ceiling answering as many bytes (absent from older results). */
function sizedTargets(scenarios: ScenarioResult[], floor: ScenarioResult[] | undefined): Target[] {
  return scenarios
    .filter((s) => s.sizedRatio !== undefined)
    .map((s) => ({
      figure: `${s.scenario} req/s (${s.bodyBytes!.toLocaleString('en-US')} B answers)`,
      target: '≥ 0.5 × size-matched ceiling',
      measured: `${times(s.sizedRatio!)} (plain ${times(s.ratio)}${floorNote(floor, s.scenario, 'sizedRatio')})`,
      met: s.sizedRatio! >= 0.5,
    }));
}

function table(header: string[], rows: (string | number)[][]): string {
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((row) => `| ${row.join(' | ')} |`)].join('\n');
}

function throughputTable(results: ScenarioResult[]): string {
  const sized = (r: ScenarioResult) =>
    r.sizedRatio === undefined ? '' : `${times(r.sizedRatio)} (${r.sizedCeilingReqPerSec!.toLocaleString('en-US')} req/s at ${r.bodyBytes!.toLocaleString('en-US')} B)`;
  return table(
    ['scenario', 'req/s', 'ceiling req/s', 'ratio', 'size-matched ratio', 'p50 ms', 'p99 ms', 'errors'],
    results.map((r) => [r.scenario, r.reqPerSec.toLocaleString('en-US'), r.ceilingReqPerSec.toLocaleString('en-US'), times(r.ratio), sized(r), r.p50, r.p99, r.errors]),
  );
}

export function renderReport(results: Results): string {
  const { machine, settings, scale } = results;
  const { load } = settings;
  const sweep = scale.sweep;
  return [
    `Measured ${results.date.slice(0, 10)} (${results.quick ? 'quick run' : 'full run'}, ${results.seconds} s) on ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGb} GB, Node ${machine.node}; ` +
      `${machine.pinned ? 'server and load generator pinned to separate cores' : 'not pinned'}. ` +
      `Load: autocannon, ${load.connections} connections, ${load.durationSeconds} s after ${load.warmupSeconds} s warm-up, fresh database.`,
    '',
    '**Targets**',
    '',
    table(['figure', 'target', 'measured', ''], results.targets.map((t) => [t.figure, t.target, t.measured, t.met ? 'met' : '**missed**'])),
    '',
    '**Throughput** (`SQLITE_SYNCHRONOUS=normal`, the default; the ceiling is a bare Fastify route answering a constant JSON; the size-matched ceiling the same route answering a constant JSON as large as the median answer of the scenario; each measured just before and just after its scenario, req/s their mean)',
    '',
    throughputTable(results.scenarios),
    '',
    ...(results.floor
      ? [
          '**The stack floor** (`bench/floor-preload.ts`: the server as `npm start` runs it, each route answering a request it has answered before with that same answer, without running its handler again. Parsing, validation, every hook, the serializer and the socket remain; the handler\'s work, the store included, does not: the most any handler could reach through this server. Measured as the scenarios are, each beside the ceiling)',
          '',
          throughputTable(results.floor),
          '',
        ]
      : []),
    '**Writes with `SQLITE_SYNCHRONOUS=full`** (an fsync per commit: survives power loss)',
    '',
    throughputTable(results.synchronousFull),
    '',
    ...(results.metricsOverhead
      ? [
          `**Metrics on / off** (\`METRICS_ENABLED\`; off and on side by side on fresh databases, loaded in turns, ${results.metricsOverhead[0]?.rounds ?? 0} rounds; medians)`,
          '',
          table(
            ['scenario', 'req/s, metrics off', 'req/s, metrics on', 'on / off'],
            results.metricsOverhead.map((m) => [m.scenario, m.offReqPerSec.toLocaleString('en-US'), m.onReqPerSec.toLocaleString('en-US'), times(m.ratio)]),
          ),
          '',
        ]
      : []),
    ...(results.keyedOverhead
      ? [
          `**${KEYED_CREATE}** (plain and with both, side by side on fresh databases, loaded in turns, ${results.keyedOverhead.rounds} rounds; medians): ` +
            `${results.keyedOverhead.onReqPerSec.toLocaleString('en-US')} against ${results.keyedOverhead.offReqPerSec.toLocaleString('en-US')} req/s plain, ${times(results.keyedOverhead.ratio)}`,
          '',
        ]
      : []),
    `**Scale**: p50 / p99 in µs of ${settings.scale.samples} sequential requests on random rows (p50 as a ratio to the smallest size, measured again beside each larger one with their requests alternating); ~100 sessions per agent, 10 per user; one conversation grows to the message count shown`,
    '',
    table(
      ['sessions', 'messages', 'getSession', 'list by agent', 'list by user', 'messages, newest page', 'messages, middle page'],
      scale.steps.map((s) => [
        s.sessions.toLocaleString('en-US'),
        s.messages.toLocaleString('en-US'),
        ...SCALE_READS.map((read) => `${s[read].p50} / ${s[read].p99} (${times(s.vsSmallest[read])})`),
      ]),
    ),
    '',
    `Server RSS with ${scale.steps.at(-1)!.sessions.toLocaleString('en-US')} sessions stored: ${scale.rssMbAtLargest} MB. ` +
      `Expiring ${sweep.sessions.toLocaleString('en-US')} sessions at once: ${sweep.markSeconds} s, longest event-loop delay ${sweep.markMaxEventLoopDelayMs} ms; ` +
      `purging them afterwards: ${sweep.purgeSeconds} s, longest delay ${sweep.purgeMaxEventLoopDelayMs} ms.`,
    ...(results.lockStall ? ['', lockStallLine(results.lockStall)] : []),
    ...eventsSection(results.events),
  ].join('\n');
}

function lockStallLine({ holdSeconds, baseline, locked, healthAfter }: NonNullable<Results['lockStall']>): string {
  return (
    `**Write lock held by another process for ${holdSeconds} s** (reads every 50 ms, a heartbeat every 250 ms, health every second; ` +
    `the same workload unlocked beforehand in brackets): longest event-loop delay ${locked.maxEventLoopDelayMs} ms (${baseline.maxEventLoopDelayMs} ms); ` +
    `reads p50 / max ${locked.readP50Ms} / ${locked.readMaxMs} ms (${baseline.readP50Ms} / ${baseline.readMaxMs} ms); ` +
    `${locked.writesCommitted} of ${locked.writes} heartbeats committed once the lock was free, ${locked.writes503} answered 503 STORAGE_UNAVAILABLE after the 5 s lock wait; ` +
    `health ${locked.health.join(' / ')} meanwhile, ${healthAfter} after.`
  );
}
