import { randomBytes } from 'node:crypto'
import path from 'node:path'
import v8 from 'node:v8'
import vm from 'node:vm'
import { expect, it } from 'vitest'
import { MqttReporter } from '../../../agent/report/mqtt-reporter.js'
import { openDatabase } from '../../../agent/store/db.js'
import { reporterDeps, sampleGateMetrics, tempDir } from '../../support/helpers.js'
import { eventually } from '../../support/process-helpers.js'

// A file of its own: mqtt-packet's number cache is per process, and another client of this
// process (a test's subscriber) would build it first.

it('reporting over MQTT costs the gate little heap (no pre-built buffer for each of 65,536 numbers)', async () => {
  v8.setFlagsFromString('--expose-gc')
  const gc = vm.runInNewContext('gc') as () => void
  const heapUsed = () => {
    gc()
    gc()
    return process.memoryUsage().heapUsed
  }
  const t = tempDir()
  const db = openDatabase(path.join(t.dir, 'agent.db'))
  const reporter = new MqttReporter(
    reporterDeps(db, {
      gateId: `t-${randomBytes(4).toString('hex')}`,
      intervalMs: 100,
      metrics: () => sampleGateMetrics({ temperature_c: null }),
    }),
  )
  try {
    const before = heapUsed()
    reporter.start()
    await eventually(() => expect(reporter.state).toMatch(/^connected/))
    await new Promise((r) => setTimeout(r, 500)) // a few metrics messages out
    const grown = heapUsed() - before
    // with mqtt-packet's number cache (mqtt.js' default writeCache) this was 8.3 MB
    expect(grown).toBeLessThan(3 * 1024 * 1024)
  } finally {
    await reporter.stop()
    db.close()
    t.cleanup()
  }
})
