import { configDefaults, defineConfig } from 'vitest/config'

// `npm test` runs the three projects; `npm run test:unit` (or :integration, :e2e) runs one.
// The chaos suite restarts the machine's servers: npm run test:chaos runs it on its own
// (vitest.chaos.config.ts), and the soak too (vitest.soak.config.ts).

/**
 * The unit project: no Postgres, Redis or MQTT, no child process, no TCP port, no browser; SQLite
 * files in a temporary directory, worker threads and a Unix socket there are fine. It runs without
 * the servers, in seconds. A test file that needs any of those belongs in integration (the default
 * for a file not listed here).
 */
const UNIT = [
  'test/agent/access/access-step.test.ts',
  'test/agent/ble/noble-source.test.ts',
  'test/agent/ble/replay-source.test.ts',
  'test/agent/ble/sim/sim-source.test.ts',
  'test/agent/config/config.test.ts',
  'test/agent/config/in-use.test.ts',
  'test/agent/control/control.test.ts',
  'test/agent/decode/decode.test.ts',
  'test/agent/lifecycle/heap.test.ts',
  'test/agent/lifecycle/stop-guard.test.ts',
  'test/agent/pipeline/proximity.test.ts',
  'test/agent/pipeline/dedup.test.ts',
  'test/agent/pipeline/validator.test.ts',
  'test/agent/store/outbox-drain.test.ts',
  'test/agent/store/recent-decisions.test.ts',
  'test/agent/store/store-thread.test.ts',
  'test/agent/store/store.test.ts',
  'test/cloud/ingest/batch-check.test.ts',
  'test/demo/log-lines.test.ts',
  'test/shared/access/engine.test.ts',
  'test/shared/access/occupancy.test.ts',
  'test/shared/shutdown.test.ts',
]

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    projects: [
      { extends: true, test: { name: 'unit', include: UNIT } },
      {
        extends: true,
        test: {
          // every other test file outside e2e/ and chaos/: the real servers and processes of one side
          name: 'integration',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, 'test/chaos/**', 'test/e2e/**', ...UNIT],
        },
      },
      // whole programs together: the cloud, gates, the demo, the deployment files, the dashboard
      { extends: true, test: { name: 'e2e', include: ['test/e2e/**/*.test.ts'] } },
    ],
  },
})
