// `npm run bench`'s command line: an option it does not know is refused (it started the
// full 25-minute run), and an interrupted bench leaves no database behind.
import { execFile, spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { until } from './helpers/until.js';

const bench = ['--import', 'tsx', 'bench/run.ts'];

async function run(args: string[]) {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [...bench, ...args]);
    return { status: 0, stdout, stderr };
  } catch (error) {
    const { code, stdout, stderr } = error as { code: number; stdout: string; stderr: string };
    return { status: code, stdout, stderr };
  }
}

describe('npm run bench', () => {
  const folder = mkdtempSync(join(tmpdir(), 'sessions-api-bench-cli-'));
  afterAll(() => rmSync(folder, { recursive: true, force: true }));

  it('prints its usage for --help, and refuses an option or step it does not know with exit 2, before running anything', async () => {
    const help = await run(['--help']);
    expect([help.status, help.stdout]).toEqual([0, expect.stringMatching(/^usage: npm run bench .*\n {2}\(none\) {8}full run/)]);
    const unknown = await run(['--quick', '--bogus']);
    expect([unknown.status, unknown.stderr.split('\n')[0]]).toEqual([2, "bench: Unknown option '--bogus'"]);
    expect(unknown.stdout).toBe('');
    const step = await run(['--only=nope']);
    expect([step.status, step.stderr.trim()]).toEqual([2, 'bench: --only: unknown step nope (known: event-log, warnings)']);
  });

  it('interrupted by SIGTERM, stops its server and removes its database (one was left in /tmp, up to hundreds of MB)', { timeout: 60_000 }, async () => {
    const child = spawn(process.execPath, [...bench, '--quick', '--only=warnings'], { env: { ...process.env, TMPDIR: folder }, stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const databases = () => readdirSync(folder).filter((name) => name.startsWith('sessions-bench-'));
    await until('the bench made its database', () => databases().length > 0, { everyMs: 50, ms: 30_000 });
    child.kill('SIGTERM');
    expect(await exited).toBe(143);
    await until('the pinned bench removed its database', () => databases().length === 0, { everyMs: 50, ms: 5_000 });
  });

  it('--postgres, interrupted by SIGTERM, stops and removes its throwaway cluster', { timeout: 90_000 }, async () => {
    const own = mkdtempSync(join(tmpdir(), 'sessions-api-bench-pg-'));
    chmodSync(own, 0o755); // the cluster's folder inside is the postgres user's
    try {
      const child = spawn(process.execPath, [...bench, '--quick', '--postgres'], { env: { ...process.env, TMPDIR: own }, stdio: ['ignore', 'ignore', 'pipe'] });
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      // "ceiling" is logged once the cluster serves (its clean-up registered).
      await until('the bench started its cluster', () => stderr.includes('[bench] ceiling'), { everyMs: 50, ms: 60_000 });
      const clusters = () => readdirSync(own).filter((name) => name.startsWith('sessions-api-pg-'));
      expect(clusters()).toHaveLength(1);
      const postgresOf = (cluster: string) => spawnSync('pgrep', ['-f', join(own, cluster, 'data')]).stdout.toString().trim();
      const [cluster] = clusters() as [string];
      expect(postgresOf(cluster)).not.toBe('');
      child.kill('SIGTERM');
      expect(await exited).toBe(143);
      await until('the pinned bench removed its cluster', () => clusters().length === 0, { everyMs: 50, ms: 10_000 });
      expect(postgresOf(cluster)).toBe('');
    } finally {
      spawnSync('pkill', ['-KILL', '-f', own]); // a cluster left running (the test failed): this test's own folder only
      rmSync(own, { recursive: true, force: true });
    }
  });
});
