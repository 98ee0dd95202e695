// A database of its own for a test file, in the run's throwaway cluster
// (postgres-global-setup.ts); dropped by `drop()`.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { migrations } from '../../src/storage/postgres/migrations.js';

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

/** Runs `use` with a client connected to `url`, ended afterwards. */
export async function withClient<T>(url: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

/** Runs `use` on a database of its own, with a client connected to it; both are gone afterwards. */
export async function withTestDatabase<T>(use: (database: TestDatabase, client: pg.Client) => Promise<T>): Promise<T> {
  const database = await createTestDatabase();
  try {
    return await withClient(database.url, (client) => use(database, client));
  } finally {
    await database.drop();
  }
}

/** Applies the first `version` migrations, recorded as the store records them: a database as an older server left it. */
export async function migrateTo(client: pg.ClientBase, version: number): Promise<void> {
  await client.query('CREATE TABLE schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
  for (const [index, sql] of migrations.slice(0, version).entries()) {
    await client.query(sql);
    await client.query('INSERT INTO schema_migrations (version) VALUES ($1)', [index + 1]);
  }
}
