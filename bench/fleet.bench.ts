/**
 * bench:fleet: 10,000 simulated gates (MQTT clients with realistic payloads, one report per 10 s,
 * a retained status and a last will each) against the local Mosquitto and one `gate-cloud serve`
 * node. Reports: every gate tracked, the monitor's CPU and memory in steady state (target: under
 * half a core), and how fast a gate whose network silently dies (no FIN: a blackholing proxy the
 * benchmark controls) is seen offline (target: 1.5 keep-alive intervals plus the will delay).
 * Baseline in the same run, with the same gates: the broker alone with a plain subscriber that
 * parses every message and does nothing else.
 *
 *   npm run bench:fleet   (BENCH_FLEET_GATES, BENCH_FLEET_STEADY_S, BENCH_FLEET_KEEPALIVE_S)
 */
import { type ChildProcess, execFileSync, fork } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import net from 'node:net'
import { fileURLToPath } from 'node:url'
import mqtt from 'mqtt'
import pg from 'pg'
import { migrateUp } from '../cloud/db/migrate.js'
import { maintainPartitions } from '../cloud/partitions/manager.js'
import { FLEET_SCHEMA_VERSION, fleetTopics, type GateMetrics } from '../shared/fleet.js'
import { cpuSeconds, fmt, printTable, rssBytes, scratchDatabase, startService } from './harness.js'

const MQTT_URL = process.env['MQTT_URL'] ?? 'mqtt://127.0.0.1:1883'
const REDIS_DB_URL = process.env['BENCH_REDIS_URL'] ?? 'redis://127.0.0.1:6379/7'
const GATES = Number(process.env['BENCH_FLEET_GATES'] ?? 10_000)
const WORKERS = 2
const INTERVAL_MS = 10_000
const KEEPALIVE_S = Number(process.env['BENCH_FLEET_KEEPALIVE_S'] ?? 10)
const WILL_DELAY_S = 0 // MQTT 3.1.1, as the agent connects: the will goes out when the broker gives up
const STEADY_S = Number(process.env['BENCH_FLEET_STEADY_S'] ?? 60)
const VICTIMS = 100
const OPS_TOKEN = `bench-${randomBytes(8).toString('hex')}`

type ToWorker = { type: 'cut' } | { type: 'stop' }
type FromWorker =
  | { type: 'connected'; n: number }
  | { type: 'ready' }
  | { type: 'cut'; at: Record<string, number>; lastIn: Record<string, number> }
  | { type: 'stopped'; published: number }

interface WorkerInit {
  prefix: string
  from: number
  count: number
  victims: number
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length ? (s[Math.floor((s.length - 1) / 2)] as number) : Number.NaN
}

// ------------------------------------------------------------------------------------------------
// worker: a share of the simulated fleet
// ------------------------------------------------------------------------------------------------

/**
 * A TCP proxy for the gates whose network dies: forwards both ways until `cut`, then stops
 * forwarding and keeps both sockets open (no FIN, no RST), as a pulled cable or a dead Wi-Fi does.
 */
async function blackholeProxy(
  target: URL,
): Promise<{ port: number; cut: () => void; lastIn: Map<string, number> }> {
  const pairs: Array<[net.Socket, net.Socket]> = []
  /** per gate (from its CONNECT packet's client id): when its last bytes went to the broker */
  const lastIn = new Map<string, number>()
  let cut = false
  const server = net.createServer((client) => {
    if (cut) {
      client.destroy()
      return
    }
    const upstream = net.connect(Number(target.port || 1883), target.hostname)
    client.on('error', () => {})
    upstream.on('error', () => {})
    let gateId: string | null = null
    client.on('data', (chunk: Buffer) => {
      if (cut) return
      gateId ??= /bench-([a-z0-9]+-\d{5})/.exec(chunk.toString('latin1'))?.[1] ?? null
      if (gateId) lastIn.set(gateId, Date.now())
    })
    client.pipe(upstream)
    upstream.pipe(client)
    pairs.push([client, upstream])
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const a = server.address()
  return {
    port: typeof a === 'object' && a ? a.port : 0,
    lastIn,
    cut: () => {
      cut = true
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream)
        upstream.unpipe(client)
        upstream.pause()
        client.pause()
        // the gate side may give up on its own; the broker side stays open and silent
        client.on('close', () => {})
      }
    },
  }
}

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

async function worker(init: WorkerInit): Promise<void> {
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
    const gateId = `${init.prefix}-${String(i).padStart(5, '0')}`
    const topics = fleetTopics(gateId)
    const bootId = randomUUID()
    const session = 1
    let seq = 0
    const isVictim = k < init.victims
    if (isVictim) victims.push(gateId)
    const status = (state: 'online' | 'offline', reason?: 'will') =>
      JSON.stringify({
        v: FLEET_SCHEMA_VERSION,
        ts: Date.now(),
        gateId,
        bootId,
        session,
        seq: state === 'online' ? seq++ : seq,
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
            v: FLEET_SCHEMA_VERSION,
            ts: Date.now(),
            gateId,
            bootId,
            session,
            seq: seq++,
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

// ------------------------------------------------------------------------------------------------
// subscriber: the baseline consumer (parses every message, keeps a count)
// ------------------------------------------------------------------------------------------------

async function subscriber(): Promise<void> {
  const c = await mqtt.connectAsync(MQTT_URL, { clientId: `bench-sub-${process.pid}`, protocolVersion: 5 })
  let messages = 0
  let bad = 0
  c.on('message', (_t, payload) => {
    messages++
    try {
      JSON.parse(payload.toString('utf8'))
    } catch {
      bad++
    }
  })
  await c.subscribeAsync({
    'gates/+/status': { qos: 1 },
    'gates/+/metrics': { qos: 0 },
    'gates/+/events': { qos: 1 },
  })
  process.send?.({ type: 'subscribed' })
  process.on('message', (m: { type: string }) => {
    if (m.type === 'count') process.send?.({ type: 'count', messages, bad })
  })
}

// ------------------------------------------------------------------------------------------------
// the orchestrator
// ------------------------------------------------------------------------------------------------

function mosquittoPid(): number {
  try {
    return Number(execFileSync('pidof', ['mosquitto'], { encoding: 'utf8' }).trim().split(/\s+/)[0])
  } catch {
    return 0
  }
}

/**
 * CPU used by processes over `seconds`, in cores (1.0 = one core busy all the time): the median of
 * three equal windows (this machine is noisy), for each process.
 */
async function cores(pids: number[], seconds: number): Promise<number[]> {
  const windows: number[][] = []
  for (let w = 0; w < 3; w++) {
    const t0 = performance.now()
    const a = pids.map((p) => (p ? cpuSeconds(p) : 0))
    await sleep((seconds * 1000) / 3)
    const wall = (performance.now() - t0) / 1000
    windows.push(pids.map((p, k) => (p ? (cpuSeconds(p) - (a[k] as number)) / wall : Number.NaN)))
  }
  return pids.map((_, k) => median(windows.map((w) => w[k] as number)))
}

function once<T extends { type: string }>(child: ChildProcess, type: T['type']): Promise<T> {
  return new Promise((resolve) => {
    const on = (m: T) => {
      if (m.type !== type) return
      child.off('message', on)
      resolve(m)
    }
    child.on('message', on)
  })
}

interface FleetAnswer {
  counts: { online: number; stale: number; offline: number }
  gates: Array<{ gateId: string; state: string; lastSeenAt: number | null }>
  messages: { messages: number; garbage: number }
}

async function main(): Promise<void> {
  const self = fileURLToPath(import.meta.url)
  const prefix = `bf${randomBytes(3).toString('hex')}`
  const brokerPid = mosquittoPid()
  console.log(
    `bench:fleet: ${fmt(GATES)} gates (${WORKERS} simulator processes), a report each per ${INTERVAL_MS / 1000} s, keep-alive ${KEEPALIVE_S} s, steady windows of ${STEADY_S} s`,
  )
  const scratch = await scratchDatabase('gc_fleet_bench')
  const sql = new pg.Client({ connectionString: scratch.url })
  sql.on('error', () => {})
  await sql.connect()
  await migrateUp(sql)
  await maintainPartitions(
    sql,
    { interval: 'day', premake: 1, retentionDays: null, dropDetached: true, table: 'gate_metrics' },
    new Date(),
  )
  const workers: ChildProcess[] = []
  let service: Awaited<ReturnType<typeof startService>> | null = null
  const rows: string[][] = [
    ['measure', 'broker + plain subscriber (baseline)', 'broker + gate-cloud fleet monitor'],
  ]
  try {
    // the fleet comes up
    const t0 = performance.now()
    const per = Math.ceil(GATES / WORKERS)
    for (let w = 0; w < WORKERS; w++) {
      const init: WorkerInit = {
        prefix,
        from: w * per,
        count: Math.min(per, GATES - w * per),
        victims: w === 0 ? VICTIMS : 0,
      }
      workers.push(fork(self, ['worker', JSON.stringify(init)], { stdio: 'inherit' }))
    }
    await Promise.all(workers.map((w) => once(w, 'ready')))
    console.log(`  ${fmt(GATES)} gates connected in ${fmt((performance.now() - t0) / 1000, 1)} s`)
    await sleep(INTERVAL_MS) // every gate has reported once

    // baseline: the broker and a subscriber that parses each message
    const sub = fork(self, ['subscriber'], { stdio: 'inherit' })
    await once(sub, 'subscribed')
    await sleep(2_000)
    const subBefore = await (async () => {
      sub.send({ type: 'count' })
      return (await once<{ type: 'count'; messages: number }>(sub, 'count')).messages
    })()
    const [subCores, brokerCoresA] = await cores([sub.pid ?? 0, brokerPid], STEADY_S)
    sub.send({ type: 'count' })
    const subAfter = (await once<{ type: 'count'; messages: number }>(sub, 'count')).messages
    const subRss = rssBytes(sub.pid ?? 0)
    sub.kill('SIGTERM')

    // one cloud node: the fleet monitor (state in Redis, history in Postgres, alerts)
    const tService = performance.now()
    service = await startService({
      DATABASE_URL: scratch.url,
      REDIS_URL: REDIS_DB_URL,
      MQTT_URL,
      OPS_TOKEN,
      FLEET_SHARE_GROUP: prefix,
      FLEET_SILENT_AFTER_MS: String(3 * INTERVAL_MS),
      PARTITION_INTERVAL: 'month',
    })
    const auth = { headers: { authorization: `Bearer ${OPS_TOKEN}` } }
    const fleet = async () => (await (await fetch(`${service?.url}/v1/fleet`, auth)).json()) as FleetAnswer
    const ours = (f: FleetAnswer) => f.gates.filter((g) => g.gateId.startsWith(`${prefix}-`))
    let tracked = 0
    for (let i = 0; i < 120 && tracked < GATES; i++) {
      await sleep(1_000)
      tracked = ours(await fleet()).filter((g) => g.state === 'online').length
    }
    const trackedAfterS = (performance.now() - tService) / 1000
    await sleep(INTERVAL_MS) // every gate has reported to this node once
    const before = (await fleet()).messages.messages
    const [monCores, brokerCoresB] = await cores([service.pid, brokerPid], STEADY_S)
    const monRss = rssBytes(service.pid)
    const f = await fleet()
    const after = f.messages.messages
    const now = Date.now()
    const fresh = ours(f).filter(
      (g) => g.state === 'online' && g.lastSeenAt !== null && now - g.lastSeenAt < 2 * INTERVAL_MS,
    ).length

    // gates whose network dies silently: offline by the broker's keep-alive and the will
    // a plain client sees when the broker gives up on each gate (its will on the wire)
    const willAt = new Map<string, number>()
    const watcher = await mqtt.connectAsync(MQTT_URL, { clientId: `bench-will-${prefix}` })
    watcher.on('message', (_topic, payload) => {
      if (payload.length === 0) return
      const s = JSON.parse(payload.toString('utf8')) as { gateId: string; state: string; reason?: string }
      if (s.state === 'offline' && s.reason === 'will' && !willAt.has(s.gateId))
        willAt.set(s.gateId, Date.now())
    })
    await watcher.subscribeAsync(
      Array.from({ length: VICTIMS }, (_, k) => `gates/${prefix}-${String(k).padStart(5, '0')}/status`),
      { qos: 1 },
    )
    await sleep(500) // the retained "online" statuses arrive first
    const w0 = workers[0] as ChildProcess
    w0.send({ type: 'cut' } satisfies ToWorker)
    const cutMsg = await once<{ type: 'cut'; at: Record<string, number>; lastIn: Record<string, number> }>(
      w0,
      'cut',
    )
    const cutAt = cutMsg.at
    const detected = new Map<string, number>()
    const detectedBy = new Map<string, string | null>()
    const limitS = 1.5 * KEEPALIVE_S + WILL_DELAY_S
    const until = Date.now() + (limitS + 20) * 1000
    const cuts = Object.keys(cutAt).length
    // until every cut gate is offline in the monitor, and its will (for reference) has come
    while ((detected.size < cuts || willAt.size < cuts) && Date.now() < until) {
      await Promise.all(
        Object.keys(cutAt)
          .filter((g) => !detected.has(g))
          .map(async (g) => {
            const r = await fetch(`${service?.url}/v1/fleet/${g}`, auth)
            const s = (await r.json()) as { state: string; reason: string | null }
            if (s.state === 'offline') {
              detected.set(g, Date.now() - (cutAt[g] as number))
              detectedBy.set(g, s.reason)
            }
          }),
      )
      await sleep(200)
    }
    await watcher.endAsync()
    const delays = [...detected.values()].map((ms) => ms / 1000)
    const maxDelay = delays.length ? Math.max(...delays) : Number.NaN
    const brokerDelays = [...willAt].map(([g, t]) => (t - (cutAt[g] as number)) / 1000)
    // the keep-alive clock runs from the last packet the broker received from the gate
    const keepAliveDelays = [...willAt].flatMap(([g, t]) => {
      const last = cutMsg.lastIn[g]
      return last === undefined ? [] : [(t - last) / 1000]
    })
    const fromLastPacket = [...detected].flatMap(([g, d]) => {
      const last = cutMsg.lastIn[g]
      return last === undefined ? [] : [((cutAt[g] as number) + d - last) / 1000]
    })
    // how the monitor knew: its own silence rule (1.5 announced keep-alives) or the broker's will
    const bySilence = [...detectedBy.values()].filter((r) => r === 'silent').length
    const byWill = [...detectedBy.values()].filter((r) => r === 'will').length
    // how far ahead of the will the monitor was (to the poll's 200 ms resolution)
    const aheadOfWill = [...detected].flatMap(([g, d]) => {
      const w = willAt.get(g)
      return w === undefined ? [] : [(w - ((cutAt[g] as number) + d)) / 1000]
    })

    rows.push(
      ['gates tracked (online, heard within 2 intervals)', '-', `${fmt(fresh)} / ${fmt(GATES)}`],
      ['all gates tracked after start, s', '-', fmt(trackedAfterS, 1)],
      ['messages/s received', fmt((subAfter - subBefore) / STEADY_S, 0), fmt((after - before) / STEADY_S, 0)],
      ['consumer CPU, cores (median of 3 windows)', fmt(subCores as number, 3), fmt(monCores as number, 3)],
      ['consumer RSS, MB', fmt(subRss / 1e6, 0), fmt(monRss / 1e6, 0)],
      ['broker CPU, cores', fmt(brokerCoresA as number, 3), fmt(brokerCoresB as number, 3)],
      [
        `silent link loss (cut) to offline in the monitor, s (${VICTIMS} gates)`,
        '-',
        `median ${fmt(median(delays), 1)}, max ${fmt(maxDelay, 1)} (${delays.length}/${VICTIMS} seen)`,
      ],
      [
        `gate's last packet to offline in the monitor, s (limit ${limitS} s)`,
        '-',
        `median ${fmt(median(fromLastPacket), 1)}, max ${fmt(Math.max(...fromLastPacket), 1)}`,
      ],
      ["  offline by the monitor's silence rule / by the will", '-', `${bySilence} / ${byWill}`],
      [
        "  for reference: gate's last packet to the broker's will, s",
        '-',
        `median ${fmt(median(keepAliveDelays), 1)}, max ${fmt(Math.max(...keepAliveDelays), 1)} (${keepAliveDelays.length} wills)`,
      ],
      [
        '  for reference: cut to the will, s',
        '-',
        `median ${fmt(median(brokerDelays), 1)}, max ${fmt(Math.max(...brokerDelays), 1)}`,
      ],
      [
        '  the monitor ahead of the will, s',
        '-',
        `median ${fmt(median(aheadOfWill), 1)}, min ${fmt(Math.min(...aheadOfWill), 1)}`,
      ],
    )
    console.log('')
    printTable(rows)
    console.log('')
    const cpuOk = (monCores as number) < 0.5
    const worst = Math.max(...fromLastPacket)
    const detectOk = delays.length === VICTIMS && worst <= limitS
    console.log(
      `targets: every gate tracked ${fresh === GATES ? 'met' : 'MISSED'}; monitor under half a core ${cpuOk ? 'met' : 'MISSED'} (${fmt(monCores as number, 3)} cores, ${fmt((monCores as number) / (subCores as number), 1)}x the plain subscriber); offline within 1.5 keep-alive + will delay ${detectOk ? 'met' : 'MISSED'} (max ${fmt(worst, 1)} s from the gate's last packet against ${limitS} s; ${bySilence} of ${detected.size} by the monitor's silence rule; the broker's will max ${fmt(Math.max(...keepAliveDelays), 1)} s after the last packet)`,
    )
  } finally {
    await service?.stop()
    await Promise.all(
      workers.map(async (w) => {
        if (w.exitCode !== null) return
        const stopped = once(w, 'stopped')
        w.send({ type: 'stop' } satisfies ToWorker)
        await Promise.race([stopped, sleep(20_000)])
        w.kill('SIGKILL')
      }),
    )
    // the fleet's retained statuses, and its state in the bench's Redis database
    const c = await mqtt.connectAsync(MQTT_URL)
    for (let i = 0; i < GATES; i += 500) {
      await Promise.all(
        Array.from({ length: Math.min(500, GATES - i) }, (_, k) =>
          c.publishAsync(`gates/${prefix}-${String(i + k).padStart(5, '0')}/status`, '', {
            retain: true,
            qos: 1,
          }),
        ),
      )
    }
    await c.endAsync()
    const { Redis } = await import('ioredis')
    const r = new Redis(REDIS_DB_URL)
    await r.flushdb()
    r.disconnect()
    await sql.end()
    await scratch.drop()
  }
}

const role = process.argv[2]
if (role === 'worker') await worker(JSON.parse(process.argv[3] ?? '{}') as WorkerInit)
else if (role === 'subscriber') await subscriber()
else await main()
