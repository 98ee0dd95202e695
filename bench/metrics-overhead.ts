// What metrics cost: the same scenarios with METRICS_ENABLED=false and then =true, back
// to back on fresh databases, compared as a ratio (on / off) within one run.
import { type LoadSettings, runScenarios } from './throughput.js';

export const METRICS_SCENARIOS = ['createSession', 'getSession', 'sessionHeartbeat'];

export interface MetricsOverhead {
  scenario: string;
  offReqPerSec: number;
  onReqPerSec: number;
  /** on / off: 1 means metrics cost nothing measurable. */
  ratio: number;
}

export async function runMetricsOverhead(settings: LoadSettings): Promise<MetricsOverhead[]> {
  const off = await runScenarios(settings, METRICS_SCENARIOS, { METRICS_ENABLED: 'false' });
  const on = await runScenarios(settings, METRICS_SCENARIOS, { METRICS_ENABLED: 'true' });
  return METRICS_SCENARIOS.map((scenario) => {
    const offReqPerSec = off[scenario]!.reqPerSec;
    const onReqPerSec = on[scenario]!.reqPerSec;
    return { scenario, offReqPerSec, onReqPerSec, ratio: Math.round((onReqPerSec / offReqPerSec) * 100) / 100 };
  });
}
