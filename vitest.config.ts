import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  // The package's own client, from source (the built export is checked by test/client.e2e.test.ts).
  resolve: { alias: { 'sessions-api/client': fileURLToPath(new URL('./src/client/index.ts', import.meta.url)) } },
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/setup/shared-meta-schema.ts'],
    // One throwaway PostgreSQL cluster for the run (the PostgreSQL store's tests); dist/ built if stale.
    globalSetup: ['test/helpers/postgres-global-setup.ts', 'test/setup/built-dist.ts'],
    testTimeout: 20_000,
    // Test files are mostly waiting on SQLite and child processes: two workers on two cores.
    maxWorkers: 2,
  },
});
