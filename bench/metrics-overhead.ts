// What metrics cost: the same scenarios with METRICS_ENABLED=false and =true, side by side (see off-then-on.ts).
import { type OffOnRatio, offThenOn } from './off-then-on.js';
import { type LoadSettings, startWithScenarios } from './throughput.js';

export const METRICS_SCENARIOS = ['createSession', 'getSession', 'sessionHeartbeat'];

export type MetricsOverhead = OffOnRatio;

export function runMetricsOverhead(settings: LoadSettings, rounds: number): Promise<MetricsOverhead[]> {
  return offThenOn(METRICS_SCENARIOS, rounds, settings, (on) => startWithScenarios({ METRICS_ENABLED: String(on) }));
}
