// What metrics cost: the same scenarios with METRICS_ENABLED=false and then =true, back
// to back on fresh databases, for a few rounds; each scenario's ratio (on / off) is the
// median of its rounds, so that a burst of load elsewhere moves it less.
import { type LoadSettings, runScenarios } from './throughput.js';

export const METRICS_SCENARIOS = ['createSession', 'getSession', 'sessionHeartbeat'];

export interface MetricsOverhead {
  scenario: string;
  /** Medians over the rounds. */
  offReqPerSec: number;
  onReqPerSec: number;
  /** Median of the rounds' on / off: 1 means metrics cost nothing measurable. */
  ratio: number;
  rounds: number;
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

export async function runMetricsOverhead(settings: LoadSettings, rounds: number): Promise<MetricsOverhead[]> {
  const samples = new Map(METRICS_SCENARIOS.map((scenario) => [scenario, { off: [] as number[], on: [] as number[], ratio: [] as number[] }]));
  for (let round = 0; round < rounds; round += 1) {
    const off = await runScenarios(settings, METRICS_SCENARIOS, { METRICS_ENABLED: 'false' });
    const on = await runScenarios(settings, METRICS_SCENARIOS, { METRICS_ENABLED: 'true' });
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
