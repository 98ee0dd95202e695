// vitest globalSetup: one throwaway PostgreSQL cluster for the whole run (about 1.2 s to
// start here), stopped and deleted at the end, also when tests fail. Test files get its
// URL with inject('postgresAdminUrl') and make a database of their own (postgres-database.ts).
// Without PostgreSQL installed the SQLite tests still run; every PostgreSQL test fails
// with the reason (inject('postgresMissing')).
import type { TestProject } from 'vitest/node';
import { type PostgresCluster, startPostgresCluster } from './postgres-cluster.js';

declare module 'vitest' {
  export interface ProvidedContext {
    postgresAdminUrl: string;
    postgresMissing: string;
  }
}

let cluster: PostgresCluster | undefined;

export async function setup(project: TestProject): Promise<void> {
  try {
    cluster = await startPostgresCluster();
    project.provide('postgresAdminUrl', cluster.adminUrl);
    project.provide('postgresMissing', '');
  } catch (error) {
    const message = (error as Error).message;
    console.error(`\n!!! ${message}\n`);
    project.provide('postgresAdminUrl', '');
    project.provide('postgresMissing', message);
  }
}

export async function teardown(): Promise<void> {
  cluster?.destroy();
}
