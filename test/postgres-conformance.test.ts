// The conformance suite against an instance on PostgreSQL: the same contract, over
// HTTP, as test/conformance.test.ts holds the SQLite server to.
import { afterAll, describe, expect, it } from 'vitest';
import { formatReport } from '../src/conformance/report.js';
import { runConformance } from '../src/conformance/run.js';
import { specOperations, specPath } from '../src/spec.js';
import { openPostgresStore } from '../src/storage/postgres/postgres-store.js';
import { serveStore } from './helpers/conformance-target.js';
import { createTestDatabase, type TestDatabase } from './helpers/postgres-database.js';

describe('the conformance suite against an instance on PostgreSQL', { timeout: 120_000 }, () => {
  let database: TestDatabase | undefined;
  afterAll(() => database?.drop());

  it('passes, covering every operation of the spec', async () => {
    database = await createTestDatabase();
    const target = await serveStore(await openPostgresStore({ url: database.url, poolSize: 8 }));
    try {
      const report = await runConformance({ baseUrl: target.url, specPath, seed: 20261125, validCases: 4, workers: 4 });
      expect(formatReport(report)).toMatch(/\n\d+ passed, 0 failed$/);
      const covered = new Set(report.cases.map((c) => c.operationId));
      // Event streams never end: the suite leaves them out (see spec-model.ts).
      for (const { operationId, path } of specOperations()) if (!path.endsWith('/events')) expect(covered).toContain(operationId);
      expect(new Set(report.cases.map((c) => c.kind))).toEqual(new Set(['valid', 'invalid', 'hostile', 'stateful', 'health']));
    } finally {
      await target.close();
    }
  });
});
