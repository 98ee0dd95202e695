// A feature's cost as a ratio: the same scenarios with it off and on, back to back on
// fresh databases, for a few rounds; each ratio (on / off) is the median of its rounds, so
// that a burst of load elsewhere moves it less. The order alternates (off first in even
// rounds, on first in odd ones): always running off first put every "on" later in the run,
// where the machine's drift and the load left by the previous run fell on it alone.
import type { LoadResult } from './throughput.js';

export interface OffOnRatio {
  scenario: string;
  /** Medians over the rounds. */
  offReqPerSec: number;
  onReqPerSec: number;
  /** Median of the rounds' on / off: 1 means the feature costs nothing measurable. */
  ratio: number;
  rounds: number;
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

export async function offThenOn(
  scenarios: string[],
  rounds: number,
  run: (on: boolean) => Promise<Record<string, LoadResult>>,
): Promise<OffOnRatio[]> {
  const samples = new Map(scenarios.map((scenario) => [scenario, { off: [] as number[], on: [] as number[], ratio: [] as number[] }]));
  for (let round = 0; round < rounds; round += 1) {
    const offFirst = round % 2 === 0;
    const first = await run(!offFirst);
    const second = await run(offFirst);
    const [off, on] = offFirst ? [first, second] : [second, first];
    for (const [scenario, sample] of samples) {
      sample.off.push(off[scenario]!.reqPerSec);
      sample.on.push(on[scenario]!.reqPerSec);
      sample.ratio.push(on[scenario]!.reqPerSec / off[scenario]!.reqPerSec);
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
