import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    // Test files are mostly waiting on SQLite and child processes: two workers on two cores.
    maxWorkers: 2,
  },
});
