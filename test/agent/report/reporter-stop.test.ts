import net from 'node:net'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { MqttReporter } from '../../../agent/report/mqtt-reporter.js'
import { openDatabase } from '../../../agent/store/db.js'
import { fleetTopics } from '../../../shared/fleet.js'
import { freePort, reporterDeps, tempDir } from '../../support/helpers.js'
import { eventually } from '../../support/process-helpers.js'

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

/** An MQTT broker (aedes) that never acknowledges the gate's events: a stalled or overloaded broker. */
async function brokerHoldingEvents(gateId: string) {
  const { Aedes } = await import('aedes')
  const held: string[] = []
  const connected = new Set<string>()
  const statuses: string[] = []
  const broker = await Aedes.createBroker({
    authorizePublish: (_client, packet, done) => {
      if (packet.topic === fleetTopics(gateId).events) {
        held.push(packet.payload.toString())
        return // no PUBACK, ever
      }
      if (packet.topic === fleetTopics(gateId).status) statuses.push(packet.payload.toString())
      done(null)
    },
  })
  broker.on('client', (c) => connected.add(c.id))
  broker.on('clientDisconnect', (c) => connected.delete(c.id))
  const server = net.createServer(broker.handle)
  const port = await freePort()
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()))
  cleanups.push(async () => {
    await new Promise<void>((r) => broker.close(() => r()))
    await new Promise<void>((r) => server.close(() => r()))
  })
  return { url: `mqtt://127.0.0.1:${port}`, held, connected, statuses }
}

describe('MQTT reporter: stopping while the broker holds an acknowledgement', () => {
  it('disconnects within its bound (a clean DISCONNECT: no will) and keeps the unacknowledged event', async () => {
    const t = tempDir()
    const db = openDatabase(path.join(t.dir, 'agent.db'))
    cleanups.push(() => {
      db.close()
      t.cleanup()
    })
    const gateId = 'stop-held'
    const b = await brokerHoldingEvents(gateId)
    const reporter = new MqttReporter(reporterDeps(db, { url: b.url, gateId }))
    reporter.start()
    cleanups.push(() => reporter.stop())
    await eventually(() => b.connected.size === 1, 10_000, 20)
    reporter.event('disk_low', { freeBytes: 1 })
    await eventually(() => b.held.length === 1, 10_000, 20)

    const t0 = performance.now()
    await reporter.stop()
    // the connection is gone: before, mqtt.js waited for the PUBACK for ever (and ignored the forced
    // end that followed), so the connection, and the stopping agent's process, never ended
    await eventually(() => b.connected.size === 0, 5_000, 20)
    expect(performance.now() - t0).toBeLessThan(5_000)
    // a clean stop: the retained status says stopped, and the broker did not publish the will over it
    await new Promise((r) => setTimeout(r, 200))
    expect(b.statuses.map((s) => (JSON.parse(s) as { reason?: string }).reason).at(-1)).toBe('stopped')
    // the event the broker never acknowledged is still on the gate, sent at the next start
    expect(db.prepare('SELECT kind FROM fleet_events').pluck().all()).toEqual(['disk_low'])
  })
})
