import { defineConfig } from 'vitest/config'

// npm run test:soak: the SIGKILL soak (test/chaos/soak.test.ts, CHAOS_KILLS kills, 100 by default;
// about 10 minutes). Not in CI. It kills only its own gate: the machine's servers keep running.
export default defineConfig({
  test: {
    include: ['test/chaos/soak.test.ts'],
    testTimeout: 3_600_000,
    hookTimeout: 120_000,
    pool: 'forks',
    globalSetup: ['test/chaos/report.ts'],
  },
})
