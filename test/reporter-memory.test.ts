import { randomBytes } from 'node:crypto'
import path from 'node:path'
import v8 from 'node:v8'
import vm from 'node:vm'
import { v4 as uuidv4 } from 'uuid'
import { expect, it } from 'vitest'
import { systemClock } from '../agent/clock.js'
import { MqttReporter, type ReporterCommands } from '../agent/report/mqtt-reporter.js'
import { openDatabase } from '../agent/store/db.js'
import { sampleGateMetrics, silentLog, tempDir } from './helpers.js'
import { eventually } from './process-helpers.js'

// A file of its own: mqtt-packet's number cache is per process, and another client of this
// process (a test's subscriber) would build it first.
const MQTT_URL = process.env['MQTT_URL'] ?? 'mqtt://127.0.0.1:1883'

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
  const none = async () => ({})
  const commands: ReporterCommands = {
    resync_roster: none,
    sync_now: none,
    restart_scan: none,
    set_log_level: none,
  }
  const reporter = new MqttReporter({
    url: MQTT_URL,
    gateId: `t-${randomBytes(4).toString('hex')}`,
    bootId: uuidv4(),
    version: '0.1.0',
    startedAt: new Date().toISOString(),
    db,
    clock: systemClock,
    log: silentLog,
    intervalMs: 100,
    commandSecret: 'command-secret-for-tests-0123456789',
    metrics: () => sampleGateMetrics({ temperature_c: null }),
    commands,
  })
  try {
    const before = heapUsed()
    reporter.start()
    await eventually(() => expect(reporter.state).toMatch(/^connected/))
    await new Promise((r) => setTimeout(r, 500)) // a few metrics messages out
    const grown = heapUsed() - before
    // with mqtt-packet's number cache (mqtt.js' default writeCache) this is ~7 MB
    expect(grown).toBeLessThan(3 * 1024 * 1024)
  } finally {
    await reporter.stop()
    db.close()
    t.cleanup()
  }
})
