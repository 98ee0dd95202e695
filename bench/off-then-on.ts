// A feature's cost as a ratio: the same scenarios on a server with it off and one with it
// on, side by side. Each round starts both on fresh databases and, per scenario, warms
// both up, then loads them in turns (SLICES each, fewer in a short run), the order
// alternating, so that each has half of every stretch of the machine's time. The round's
// ratio is on / off of the requests served; the figures are medians over the rounds.
// (Before: each round ran off and on one after the other, a whole run each. The machine's
// speed drifts by tens of per cent over minutes, and with one run of each in a round, that
// drift fell on one of the two: on this machine the event log's cost on a create read
// 0.76-0.95× in three-round runs, against 0.86-0.93× in turns.)
import { type LoadResult, type LoadSettings, load, type Target } from './throughput.js';

export interface OffOnRatio {
  scenario: string;
  /** Medians over the rounds. */
  offReqPerSec: number;
  onReqPerSec: number;
  /** Median of the rounds' on / off: 1 means the feature costs nothing measurable. */
  ratio: number;
  rounds: number;
}

/** A server started for a round, with the request of each scenario. */
export interface RunningVariant {
  baseUrl: string;
  targets: Record<string, Target>;
  stop(): Promise<void>;
}

/** Turns of each server per scenario and round: the duration is cut into this many (turns of a second at least). */
export const SLICES = 5;

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

export async function offThenOn(scenarios: string[], rounds: number, settings: LoadSettings, start: (on: boolean) => Promise<RunningVariant>): Promise<OffOnRatio[]> {
  const samples = new Map(scenarios.map((scenario) => [scenario, { off: [] as number[], on: [] as number[], ratio: [] as number[] }]));
  const slices = Math.max(1, Math.min(SLICES, Math.floor(settings.durationSeconds)));
  const sliceSeconds = settings.durationSeconds / slices;
  for (let round = 0; round < rounds; round += 1) {
    const off = await start(false);
    const on = await start(true);
    try {
      for (const [scenario, sample] of samples) {
        const run = (server: RunningVariant, seconds: number): Promise<LoadResult> => load(server.baseUrl, server.targets[scenario]!, settings, seconds);
        if (settings.warmupSeconds > 0) for (const server of [off, on]) await run(server, settings.warmupSeconds);
        const served = { off: 0, on: 0 };
        for (let slice = 0; slice < slices; slice += 1) {
          const order = (round + slice) % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const);
          for (const variant of order) served[variant] += (await run(variant === 'off' ? off : on, sliceSeconds)).reqPerSec * sliceSeconds;
        }
        sample.off.push(served.off / settings.durationSeconds);
        sample.on.push(served.on / settings.durationSeconds);
        sample.ratio.push(served.on / served.off);
      }
    } finally {
      await Promise.all([off.stop(), on.stop()]);
    }
  }
  return [...samples].map(([scenario, sample]) => ({
    scenario,
    offReqPerSec: Math.round(median(sample.off)),
    onReqPerSec: Math.round(median(sample.on)),
    ratio: Math.round(median(sample.ratio) * 100) / 100,
    rounds,
  }));
}
