// A database of its own for a test file, in the run's throwaway cluster
// (postgres-global-setup.ts); dropped by `drop()`.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

/** The cluster's admin URL; throws, saying how to install PostgreSQL, when there is none. */
export function postgresAdminUrl(): string {
  const missing = inject('postgresMissing');
  if (missing) throw new Error(missing);
  return inject('postgresAdminUrl');
}

async function asAdmin(statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: postgresAdminUrl() });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `test_${randomUUID().replaceAll('-', '')}`;
  await asAdmin(`CREATE DATABASE ${name}`);
  const url = postgresAdminUrl().replace(/\/postgres$/, `/${name}`);
  return { url, drop: () => asAdmin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}
