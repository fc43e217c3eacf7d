import { configDefaults, defineConfig } from 'vitest/config'

// npm run test:chaos: the reliability and security suite. It stops and restarts the machine's
// Postgres, Redis and Mosquitto, so its files run one after the other, never beside `npm test`.
export default defineConfig({
  test: {
    // the chaos files, and the security suite that `npm test` runs too (its results join the table)
    include: ['test/chaos/**/*.test.ts', 'test/cloud/http/security.test.ts'],
    // the SIGKILL soak runs on its own (npm run test:soak, vitest.soak.config.ts), not in CI
    exclude: [...configDefaults.exclude, 'test/chaos/soak.test.ts'],
    testTimeout: 400_000,
    hookTimeout: 120_000,
    pool: 'forks',
    fileParallelism: false,
    globalSetup: ['test/chaos/report.ts'],
  },
})
