import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  // The package's own client, from source (the built export is checked by test/client.e2e.test.ts).
  resolve: { alias: { 'sessions-api/client': fileURLToPath(new URL('./src/client/index.ts', import.meta.url)) } },
  test: {
    include: ['test/**/*.test.ts'],
    // One throwaway PostgreSQL cluster for the run (the PostgreSQL store's tests); dist/ built if stale.
    globalSetup: ['test/helpers/postgres-global-setup.ts', 'test/setup/built-dist.ts'],
    testTimeout: 20_000,
    // Setup hooks start apps and servers as tests do: as long (R43 saw a 10 s default run out under load).
    hookTimeout: 20_000,
    // Test files are mostly waiting on SQLite, child processes and timers: three workers on
    // two cores kept the cores busier (full run 288 → 268 s; two left them idle a quarter of it).
    maxWorkers: 3,
    // A worker's test files share its loaded modules: each file importing the app, Fastify,
    // Ajv and the spec anew took 59 s of the run's CPU (import 47 s, setup 12 s; vitest 297
    // → 211 s on this machine). Tests restore what they change (fake timers, clocks) and
    // keep their state in what they create, not in modules.
    isolate: false,
  },
});
