// The conformance suite against an instance on PostgreSQL: the same contract, over
// HTTP, as test/conformance.test.ts holds the SQLite server to.
import { afterAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { formatReport } from '../src/conformance/report.js';
import { runConformance } from '../src/conformance/run.js';
import { systemClock } from '../src/domain/clock.js';
import { createMetrics } from '../src/ops/metrics.js';
import { specOperations, specPath } from '../src/spec.js';
import { openPostgresStore } from '../src/storage/postgres/postgres-store.js';
import { createSweeper } from '../src/sweeper.js';
import { createTestDatabase, type TestDatabase } from './helpers/postgres-database.js';

describe('the conformance suite against an instance on PostgreSQL', { timeout: 120_000 }, () => {
  let database: TestDatabase | undefined;
  afterAll(() => database?.drop());

  it('passes, covering every operation of the spec', async () => {
    database = await createTestDatabase();
    const store = await openPostgresStore({ url: database.url, poolSize: 8 });
    const sweeper = createSweeper({ store, clock: systemClock, retentionMs: 60_000, intervalMs: 60_000, batchSize: 100 });
    const app = buildApp({ store, clock: systemClock, sessionDefaults: {}, retentionMs: 60_000, sweeper }, { metrics: createMetrics() });
    try {
      await app.listen({ host: '127.0.0.1', port: 0 });
      const address = app.server.address();
      const baseUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
      const report = await runConformance({ baseUrl, specPath, seed: 20261125, validCases: 4, workers: 4 });
      expect(formatReport(report)).toMatch(/\n\d+ passed, 0 failed$/);
      const covered = new Set(report.cases.map((c) => c.operationId));
      // Event streams never end: the suite leaves them out (see spec-model.ts).
      for (const { operationId, path } of specOperations()) if (!path.endsWith('/events')) expect(covered).toContain(operationId);
      expect(new Set(report.cases.map((c) => c.kind))).toEqual(new Set(['valid', 'invalid', 'hostile', 'stateful', 'health']));
    } finally {
      await app.close();
    }
  });
});
