// A throwaway PostgreSQL cluster for tests: initdb in a temporary directory, pg_ctl start
// on a free loopback port (unix sockets in that directory), as the `postgres` user when
// running as root (PostgreSQL refuses root). Fast, unsafe settings (fsync off): only
// for this cluster, which is deleted at the end.
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const POSTGRES_BIN = process.env.POSTGRES_BIN ?? '/usr/lib/postgresql/15/bin';
const SUPERUSER = 'postgres';

export interface PostgresCluster {
  /** postgres://… of the cluster's `postgres` database (superuser, no password on loopback). */
  adminUrl: string;
  /** A URL for the database `name` of this cluster. */
  urlOf(name: string): string;
  port: number;
  directory: string;
  /** pg_ctl stop (fast) / start: to test a database lost while running. */
  stop(): void;
  start(): void;
  /** Stops the server and deletes its directory. */
  destroy(): void;
}

export class PostgresMissing extends Error {
  override name = 'PostgresMissing';
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** Runs `path` as the `postgres` user when we are root (PostgreSQL and PgBouncer refuse root), directly otherwise. */
export function runAsPostgresUser(path: string, args: string[]): string {
  const asRoot = process.getuid?.() === 0;
  const [command, argv] = asRoot ? ['runuser', ['-u', SUPERUSER, '--', path, ...args]] : [path, args];
  return execFileSync(command, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A folder the `postgres` user owns (when we are root), deleted by the caller. */
export function folderForPostgresUser(prefix: string): string {
  const directory = mkdtempSync(join(tmpdir(), prefix));
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync('id', ['-u', SUPERUSER], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', SUPERUSER], { encoding: 'utf8' }).trim());
    chownSync(directory, uid, gid);
  }
  return directory;
}

const runPg = (binary: string, args: string[]) => runAsPostgresUser(join(POSTGRES_BIN, binary), args);

export async function startPostgresCluster(): Promise<PostgresCluster> {
  if (!existsSync(join(POSTGRES_BIN, 'initdb'))) {
    throw new PostgresMissing(
      `PostgreSQL 15 is not installed (no ${join(POSTGRES_BIN, 'initdb')}): the PostgreSQL tests need it. ` +
        'Install it with: apt-get install -y postgresql (or set POSTGRES_BIN to the folder holding initdb and pg_ctl)',
    );
  }
  const directory = folderForPostgresUser('sessions-api-pg-');
  const data = join(directory, 'data');
  const port = await freePort();
  let started = false;
  const cluster: PostgresCluster = {
    adminUrl: `postgres://${SUPERUSER}@127.0.0.1:${port}/postgres`,
    urlOf: (name) => `postgres://${SUPERUSER}@127.0.0.1:${port}/${name}`,
    port,
    directory,
    stop() {
      if (!started) return;
      runPg('pg_ctl', ['stop', '-D', data, '-m', 'immediate', '-w']);
      started = false;
    },
    start() {
      if (started) return;
      runPg('pg_ctl', ['start', '-D', data, '-w', '-t', '30', '-l', join(directory, 'server.log')]);
      started = true;
    },
    destroy() {
      try {
        cluster.stop();
      } finally {
        rmSync(directory, { recursive: true, force: true });
      }
    },
  };
  try {
    runPg('initdb', ['-D', data, '-U', SUPERUSER, '-A', 'trust', '--no-sync', '--no-locale', '-E', 'UTF8', '--no-instructions']);
    const settings = [
      `port = ${port}`,
      "listen_addresses = '127.0.0.1'",
      `unix_socket_directories = '${directory}'`,
      'max_connections = 200',
      'shared_buffers = 32MB',
      // A throwaway test cluster: durability is not what is under test here.
      'fsync = off',
      'synchronous_commit = off',
      'full_page_writes = off',
    ];
    writeFileSync(join(data, 'postgresql.auto.conf'), `${settings.join('\n')}\n`);
    if (process.getuid?.() === 0) execFileSync('chown', [SUPERUSER, join(data, 'postgresql.auto.conf')]);
    cluster.start();
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr;
    cluster.destroy();
    throw new Error(`cannot start the test PostgreSQL cluster: ${stderr || (error as Error).message}`);
  }
  return cluster;
}
