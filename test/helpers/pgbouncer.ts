// A PgBouncer (Debian's `pgbouncer` package) in front of the run's test cluster, on a free
// loopback port, as the `postgres` user (it refuses root); stopped and deleted by `stop()`.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { folderForPostgresUser, freePort, runAsPostgresUser } from './postgres-cluster.js';

export const PGBOUNCER = process.env.PGBOUNCER ?? '/usr/sbin/pgbouncer';

export interface PgBouncer {
  /** The URL of `databaseUrl`'s database (on the cluster) through this PgBouncer. */
  urlOf(databaseUrl: string): string;
  stop(): void;
}

export async function startPgBouncer(clusterUrl: string, poolMode: 'session' | 'transaction'): Promise<PgBouncer> {
  const cluster = new URL(clusterUrl);
  const directory = folderForPostgresUser('sessions-api-pgbouncer-');
  const port = await freePort();
  const config = join(directory, 'pgbouncer.ini');
  const pidfile = join(directory, 'pgbouncer.pid');
  writeFileSync(
    config,
    [
      '[databases]',
      `* = host=${cluster.hostname} port=${cluster.port} user=${cluster.username}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = any',
      `pool_mode = ${poolMode}`,
      'max_client_conn = 200',
      'default_pool_size = 40',
      `logfile = ${join(directory, 'pgbouncer.log')}`,
      `pidfile = ${pidfile}`,
      '',
    ].join('\n'),
  );
  if (process.getuid?.() === 0) execFileSync('chown', ['postgres', config]);
  const stop = () => {
    try {
      if (existsSync(pidfile)) process.kill(Number(readFileSync(pidfile, 'utf8').trim()), 'SIGINT');
    } catch {
      // already gone
    }
    rmSync(directory, { recursive: true, force: true });
  };
  try {
    runAsPostgresUser(PGBOUNCER, ['-d', config]); // goes on in the background
    await listening(port);
  } catch (error) {
    stop();
    throw new Error(`cannot start PgBouncer: ${(error as { stderr?: string }).stderr || (error as Error).message}`);
  }
  return {
    urlOf(databaseUrl) {
      const url = new URL(databaseUrl);
      url.hostname = '127.0.0.1';
      url.port = String(port);
      return url.toString();
    },
    stop,
  };
}

/** Resolves once a connection to `port` is taken (within 10 s). */
async function listening(port: number): Promise<void> {
  for (const started = Date.now(); Date.now() - started < 10_000; await new Promise((resolve) => setTimeout(resolve, 50))) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => resolve(true)).once('error', () => resolve(false));
      socket.once('close', () => socket.destroy());
      setTimeout(() => socket.destroy(), 1000).unref();
    }).catch(() => false);
    if (open) return;
  }
  throw new Error(`nothing listens on port ${port}`);
}
