// The throwaway PostgreSQL cluster the PostgreSQL tests run on (test/helpers/postgres-cluster.ts).
import { execFileSync } from 'node:child_process';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { createTestDatabase } from './helpers/postgres-database.js';

describe('the test PostgreSQL cluster', () => {
  it('serves a database of its own on loopback, run by a user that is not root (PostgreSQL refuses root)', async () => {
    const database = await createTestDatabase();
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      // PostgreSQL refuses to run as root: that it answers is the proof of the user.
      const { rows } = await client.query<{ version: string; db: string }>(
        "SELECT current_setting('server_version_num') AS version, current_database() AS db",
      );
      expect(Number(rows[0]!.version)).toBeGreaterThanOrEqual(150000);
      expect(database.url).toMatch(/^postgres:\/\/postgres@127\.0\.0\.1:\d+\//);
      expect(database.url.endsWith(`/${rows[0]!.db}`)).toBe(true);
    } finally {
      await client.end();
      await database.drop();
    }
  });

  it('says how to install PostgreSQL when initdb is missing', () => {
    // In a child: POSTGRES_BIN is read when the helper module loads.
    const script = "import('./test/helpers/postgres-cluster.ts').then((m) => m.startPostgresCluster()).catch((e) => { console.log(e.name + ': ' + e.message); })";
    const output = execFileSync(process.execPath, ['--import', 'tsx', '-e', script], {
      encoding: 'utf8',
      env: { ...process.env, POSTGRES_BIN: '/nonexistent/postgresql/bin' },
    });
    expect(output).toContain('PostgresMissing');
    expect(output).toContain('apt-get install -y postgresql');
  });
});
