// `npm run bench -- --postgres [--quick]`: the throughput scenarios against one instance
// on PostgreSQL (a throwaway cluster on this machine, as the tests start it), beside
// the ceiling measured in the same run; then 1 against 2 instances on one database, with
// the CPU each request costs the servers and PostgreSQL (from /proc, so the rest of the
// machine's load does not count). Prints Markdown tables; changes no file.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { startPostgresCluster } from '../test/helpers/postgres-cluster.js';
import { spawnSync } from 'node:child_process';
import { api, buildServer, CAN_PIN, onInterrupt, SERVER_CPU, startOurServer } from './lib.js';
import { cpuSince, cpuSnapshot, postgresProcesses } from './process-cpu.js';
import { type LoadSettings, load, runCeiling, runScenarios, SCENARIO_METHOD, type Target } from './throughput.js';

const USER_ID = '5f1c1c8e-4a3b-4c7d-9e2f-0a1b2c3d4e5f';

/**
 * createSession and getSession against `instances` servers on one fresh database (both
 * pinned to the server's CPU, as one instance is), the load spread over them: req/s and
 * the CPU per request of the servers and of PostgreSQL.
 */
async function runInstances(settings: LoadSettings, databaseUrl: string, dataDirectory: string, instances: number): Promise<string[]> {
  const servers = [];
  for (let i = 0; i < instances; i++) servers.push(await startOurServer('unused-with-DATABASE_URL.db', { DATABASE_URL: databaseUrl }));
  try {
    const urls = servers.map((server) => server.baseUrl);
    const agentId = (await api(`${urls[0]}/api/agents`, 'POST', { characterJson: { name: 'Bench' } })).data.character.id;
    const readSession = (await api(`${urls[0]}/api/messaging/sessions`, 'POST', { agentId, userId: USER_ID })).sessionId;
    const targets: Record<string, Target> = {
      createSession: { method: 'POST', path: '/api/messaging/sessions', body: { agentId, userId: USER_ID } },
      getSession: { method: 'GET', path: `/api/messaging/sessions/${readSession}` },
    };
    const rows: string[] = [];
    for (const [scenario, target] of Object.entries(targets)) {
      if (settings.warmupSeconds > 0) await load(urls, target, settings, settings.warmupSeconds);
      const serverPids = servers.map((server) => server.pid);
      const before = cpuSnapshot([...serverPids, ...postgresProcesses(dataDirectory)]);
      const result = await load(urls, target, settings, settings.durationSeconds);
      const requests = result.reqPerSec * settings.durationSeconds;
      const microsPerRequest = (seconds: number) => Math.round((seconds / Math.max(requests, 1)) * 1e6);
      const serverCpu = microsPerRequest(cpuSince(before, serverPids));
      const postgresCpu = microsPerRequest(cpuSince(before, postgresProcesses(dataDirectory)));
      rows.push(`| ${scenario} | ${instances} | ${result.reqPerSec} | ${result.p50} | ${result.p99} | ${result.errors} | ${serverCpu} | ${postgresCpu} |`);
    }
    return rows;
  } finally {
    for (const server of servers) await server.stop();
  }
}

async function createDatabase(adminUrl: string): Promise<string> {
  const name = `bench_${randomUUID().replaceAll('-', '')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`).finally(() => admin.end());
  return name;
}

export async function runPostgresBench(settings: LoadSettings, log: (line: string) => void): Promise<void> {
  buildServer();
  log('PostgreSQL: a throwaway cluster (fsync=off: figures flatter writes than a real server), pinned with the server');
  const cluster = await startPostgresCluster();
  const forget = onInterrupt(() => cluster.destroy());
  try {
    // PostgreSQL on the server's CPU (the backends it forks inherit it): the load generator
    // keeps the other CPU to itself, as against the ceiling, which has the server alone.
    if (CAN_PIN) for (const pid of postgresProcesses(`${cluster.directory}/data`)) spawnSync('taskset', ['-p', '-c', SERVER_CPU, String(pid)], { stdio: 'ignore' });
    const name = await createDatabase(cluster.adminUrl);
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

    log('1 against 2 instances on one database (each on a fresh database), CPU per request from /proc');
    const instanceRows = [];
    for (const instances of [1, 2]) {
      instanceRows.push(...(await runInstances(settings, cluster.urlOf(await createDatabase(cluster.adminUrl)), `${cluster.directory}/data`, instances)));
    }
    console.log(
      [
        '',
        '| scenario (PostgreSQL) | instances | req/s | p50 ms | p99 ms | errors | server CPU µs/req | PostgreSQL CPU µs/req |',
        '|---|---|---|---|---|---|---|---|',
        ...instanceRows.sort(),
      ].join('\n'),
    );
  } finally {
    forget();
    cluster.destroy();
  }
}
