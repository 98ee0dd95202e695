// `npm run bench -- --postgres [--quick]`: the throughput scenarios against one instance
// on PostgreSQL (a throwaway cluster on this machine, as the tests start it), beside
// the ceiling measured in the same run. Prints a Markdown table; changes no file.
// Not here yet: 2 instances behind a balancer, and CPU per request.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { startPostgresCluster } from '../test/helpers/postgres-cluster.js';
import { buildServer } from './lib.js';
import { type LoadSettings, runCeiling, runScenarios, SCENARIO_METHOD } from './throughput.js';

export async function runPostgresBench(settings: LoadSettings, log: (line: string) => void): Promise<void> {
  buildServer();
  log('PostgreSQL: a throwaway cluster (fsync=off: figures flatter writes than a real server)');
  const cluster = await startPostgresCluster();
  try {
    const name = `bench_${randomUUID().replaceAll('-', '')}`;
    const admin = new pg.Client({ connectionString: cluster.adminUrl });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`).finally(() => admin.end());
    log('ceiling');
    const ceiling = await runCeiling(settings);
    log('scenarios on PostgreSQL (one instance, DATABASE_POOL_SIZE=10)');
    const results = await runScenarios(settings, undefined, { DATABASE_URL: cluster.urlOf(name) });
    const rows = Object.entries(results).map(([scenario, result]) => {
      const ceilingReqPerSec = ceiling[SCENARIO_METHOD[scenario]!].reqPerSec;
      const ratio = Math.round((result.reqPerSec / ceilingReqPerSec) * 100) / 100;
      return `| ${scenario} | ${result.reqPerSec} | ${ratio} | ${result.p50} | ${result.p99} | ${result.errors} |`;
    });
    console.log(['| scenario (PostgreSQL, 1 instance) | req/s | × ceiling | p50 ms | p99 ms | errors |', '|---|---|---|---|---|---|', ...rows].join('\n'));
  } finally {
    cluster.destroy();
  }
}
