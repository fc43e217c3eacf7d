/** A worker's share of the simulated fleet: each gate an MQTT client as the agent is one. */
import { randomUUID } from 'node:crypto'
import mqtt from 'mqtt'
import { FLEET_SCHEMA_VERSION, fleetTopics, type GateMetrics } from '../../shared/fleet.js'
import { blackholeProxy } from './blackhole-proxy.js'
import {
  type FromWorker,
  gateIdOf,
  INTERVAL_MS,
  KEEPALIVE_S,
  MQTT_URL,
  sleep,
  type ToWorker,
  type WorkerInit,
} from './settings.js'

/** Gate i's metrics at time t: realistic figures that move a little. */
function metricsFor(i: number, t: number): GateMetrics {
  const wave = Math.sin(t / 60_000 + i)
  return {
    cpu_percent: 4 + 3 * Math.abs(wave),
    load1: 0.2 + Math.abs(wave) / 4,
    mem_used_bytes: 210_000_000 + (i % 50) * 1_000_000,
    mem_total_bytes: 1_000_000_000,
    rss_bytes: 70_000_000 + (i % 10) * 1_000_000,
    temperature_c: 48 + 6 * Math.abs(wave),
    disk_free_bytes: 12_000_000_000,
    uptime_s: Math.round(t / 1000) % 86_400,
    adverts_per_s: Math.max(0, 40 + 30 * wave),
    decisions_admit_total: Math.round(t / 2000) % 100_000,
    decisions_deny_total: Math.round(t / 40_000) % 10_000,
    l1_hit_ratio: 0.93,
    buffer_pending: Math.max(0, Math.round(5 * wave)),
    buffer_oldest_pending_age_s: wave > 0 ? 2 : null,
    last_sync_age_s: 1 + (i % 5),
    clock_offset_ms: (i % 7) - 3,
    adapter_state: 'poweredOn',
    scan_restarts_total: 0,
    disk_write_bytes_total: 1_000_000 + i,
    roster_version: 42,
  }
}

/**
 * The worker process: connects its gates (their victims through the blackholing proxy), each with a
 * retained status and a last will, and reports every INTERVAL_MS; cuts the victims' link or stops on
 * the orchestrator's word.
 */
export async function worker(init: WorkerInit): Promise<void> {
  const send = (m: FromWorker) => process.send?.(m)
  const broker = new URL(MQTT_URL)
  const proxy = init.victims > 0 ? await blackholeProxy(broker) : null
  const clients: mqtt.MqttClient[] = []
  const timers: NodeJS.Timeout[] = []
  const victims: string[] = []
  let published = 0
  let connected = 0
  const startedAt = new Date().toISOString()
  for (let k = 0; k < init.count; k++) {
    const i = init.from + k
    const gateId = gateIdOf(init.prefix, i)
    const topics = fleetTopics(gateId)
    const bootId = randomUUID()
    const session = 1
    let seq = 0
    const isVictim = k < init.victims
    if (isVictim) victims.push(gateId)
    // what every message of the gate's starts with, `n` its sequence number
    const head = (n: number) => ({ v: FLEET_SCHEMA_VERSION, ts: Date.now(), gateId, bootId, session, seq: n })
    const status = (state: 'online' | 'offline', reason?: 'will') =>
      JSON.stringify({
        ...head(state === 'online' ? seq++ : seq),
        state,
        version: '0.1.0',
        startedAt,
        ...(reason ? { reason } : {}),
        // as the agent's birth: how often this gate is heard from
        ...(state === 'online' ? { keepaliveS: KEEPALIVE_S, metricsIntervalS: INTERVAL_MS / 1000 } : {}),
      })
    const c = mqtt.connect(isVictim && proxy ? `mqtt://127.0.0.1:${proxy.port}` : MQTT_URL, {
      clientId: `bench-${gateId}`,
      keepalive: KEEPALIVE_S,
      clean: true,
      reconnectPeriod: isVictim ? 0 : 2_000,
      connectTimeout: 30_000,
      queueQoSZero: false,
      will: { topic: topics.status, payload: Buffer.from(status('offline', 'will')), qos: 1, retain: true },
    })
    c.on('error', () => {})
    c.once('connect', () => {
      connected++
      c.publish(topics.status, status('online'), { qos: 1, retain: true })
      const report = () => {
        if (!c.connected) return
        c.publish(
          topics.metrics,
          JSON.stringify({
            ...head(seq++),
            keepaliveS: KEEPALIVE_S,
            metricsIntervalS: INTERVAL_MS / 1000,
            metrics: metricsFor(i, Date.now()),
          }),
          { qos: 0 },
        )
        published++
      }
      // each gate at its own phase, as a real fleet booted at different times
      const first = setTimeout(() => {
        report()
        timers.push(setInterval(report, INTERVAL_MS))
      }, Math.random() * INTERVAL_MS)
      timers.push(first)
    })
    clients.push(c)
    // ramp: about 1,000 new connections a second per worker
    if (k % 100 === 99) await sleep(100)
  }
  while (connected < init.count) {
    send({ type: 'connected', n: connected })
    await sleep(500)
  }
  send({ type: 'connected', n: connected })
  send({ type: 'ready' })
  process.on('message', (m: ToWorker) => {
    if (m.type === 'cut' && proxy) {
      const at = Date.now()
      proxy.cut()
      send({
        type: 'cut',
        at: Object.fromEntries(victims.map((g) => [g, at])),
        lastIn: Object.fromEntries(proxy.lastIn),
      })
    } else if (m.type === 'stop') {
      for (const t of timers) clearInterval(t)
      Promise.all(clients.map((c) => c.endAsync(true).catch(() => {}))).then(() => {
        send({ type: 'stopped', published })
        process.exit(0)
      })
    }
  })
}
