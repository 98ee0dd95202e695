// What metrics cost: the same scenarios with METRICS_ENABLED=false and then =true (see off-then-on.ts).
import { type OffOnRatio, offThenOn } from './off-then-on.js';
import { type LoadSettings, runScenarios } from './throughput.js';

export const METRICS_SCENARIOS = ['createSession', 'getSession', 'sessionHeartbeat'];

export type MetricsOverhead = OffOnRatio;

export function runMetricsOverhead(settings: LoadSettings, rounds: number): Promise<MetricsOverhead[]> {
  return offThenOn(METRICS_SCENARIOS, rounds, (on) => runScenarios(settings, METRICS_SCENARIOS, { METRICS_ENABLED: String(on) }));
}
