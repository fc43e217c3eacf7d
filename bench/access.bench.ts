/**
 * bench:access: how fast the access model's shared state moves, with the whole agent (two gates in
 * this process, on push sources), the venue's Mosquitto and one `gate-cloud serve` node.
 *
 * - Anti-passback across gates (target: within 1 s on the venue path): from an entry made durable
 *   at one gate of a zone to the other gate's ledger knowing it. Baseline in the same run: a bare
 *   MQTT message of the same size between two clients on the same broker, QoS 1.
 * - Occupancy at the cloud (target: within 2 s of the sync that changed it): from the entry made
 *   durable at the gate to the cloud's occupancy query counting it. Baseline in the same run: the
 *   check-in record itself stored in Postgres by the ordinary sync.
 *
 *   npm run bench:access   (BENCH_ACCESS_PASSAGES, default 200; BENCH_ACCESS_CLOUD, default 40)
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import mqtt from 'mqtt'
import pino from 'pino'
import { GateAgent } from '../agent/agent.js'
import { PushSource } from '../agent/ble/push-source.js'
import { systemClock } from '../agent/clock.js'
import { agentConfigSchema } from '../agent/config/schema.js'
import { putPolicy } from '../cloud/access/policies.js'
import { loadCloudConfig } from '../cloud/config.js'
import { createPool } from '../cloud/db/pool.js'
import { addGate } from '../cloud/gates/store.js'
import { importParticipants } from '../cloud/participants/import.js'
import type { DecisionEvent } from '../shared/control.js'
import type { PassagePayload } from '../shared/fleet.js'
import { fmt, printTable, startService } from './harness.js'
import { migratedScratch } from './support/scratch.js'
import { percentile } from './support/stats.js'

const MQTT_URL = process.env['BENCH_MQTT_URL'] ?? 'mqtt://127.0.0.1:1883'
const PASSAGES = Number(process.env['BENCH_ACCESS_PASSAGES'] ?? 200)
const CLOUD_SAMPLES = Number(process.env['BENCH_ACCESS_CLOUD'] ?? 40)
const silent = pino({ level: 'silent' })
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const tokenOf = (i: number) => (0xacce0000 + i).toString(16).padStart(16, '0')

/** A badge at a gate: three loud adverts, one arrival. */
function walkUp(source: PushSource, token: string): void {
  const mfg = Buffer.concat([Buffer.from('ffffca11', 'hex'), Buffer.from(token, 'hex')])
  for (let i = 0; i < 3; i++)
    source.push({ address: 'c0:00:00:00:00:01', rssi: -50, manufacturerData: mfg, ts: systemClock.mono() })
}

/** Wait for `cond`, polling every `stepMs`; the time it became true (performance.now()), or NaN. */
async function until(cond: () => boolean | Promise<boolean>, timeoutMs: number, stepMs = 5): Promise<number> {
  const end = performance.now() + timeoutMs
  while (performance.now() < end) {
    if (await cond()) return performance.now()
    await sleep(stepMs)
  }
  return Number.NaN
}

/** The baseline of the venue path: a message like a passage between two bare clients, QoS 1. */
async function bareMqtt(samples: number, payload: string): Promise<number[]> {
  const topic = `bench/${randomBytes(4).toString('hex')}/passages`
  const pub = await mqtt.connectAsync(MQTT_URL, { clean: true })
  const sub = await mqtt.connectAsync(MQTT_URL, { clean: true })
  await sub.subscribeAsync(topic, { qos: 1 })
  const out: number[] = []
  let sentAt = 0
  let got: (() => void) | null = null
  sub.on('message', () => got?.())
  for (let i = 0; i < samples; i++) {
    const arrived = new Promise<void>((r) => {
      got = r
    })
    sentAt = performance.now()
    await pub.publishAsync(topic, payload, { qos: 1 })
    await arrived
    out.push(performance.now() - sentAt)
    await sleep(5)
  }
  await pub.endAsync()
  await sub.endAsync()
  return out
}

async function main(): Promise<void> {
  const run = randomBytes(3).toString('hex')
  const [north, south] = [`north-${run}`, `south-${run}`]
  const scratch = await migratedScratch('baccess')
  const opsToken = `bench-${randomBytes(8).toString('hex')}`
  const service = await startService({ DATABASE_URL: scratch.url, OPS_TOKEN: opsToken })
  const pool = createPool(loadCloudConfig({ DATABASE_URL: scratch.url }))
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-access-'))
  const people = PASSAGES + CLOUD_SAMPLES
  const agents: GateAgent[] = []
  try {
    await importParticipants(
      pool,
      Array.from({ length: people }, (_, i) => ({
        token: tokenOf(i),
        participantId: `p-${i}`,
        status: 'active' as const,
      })),
      { eventId: 'bench' },
    )
    await putPolicy(pool, 'bench', {
      timeZone: 'UTC',
      zones: [{ id: 'hall', name: 'Hall', capacity: 1_000_000 }],
      lanes: [
        { gate: north, to: 'hall' },
        { gate: south, to: 'hall' },
      ],
      rules: [{ id: 'all', name: 'Everyone', zone: 'hall', antiPassback: true }],
    })
    const gates: Array<{ agent: GateAgent; source: PushSource }> = []
    for (const id of [north, south]) {
      const source = new PushSource()
      const agent = new GateAgent({
        config: agentConfigSchema.parse({
          gateId: id,
          dataDir: path.join(dir, id),
          source: { kind: 'sim' },
          proximity: { absenceMs: 300 },
          cloud: { url: service.url, gateKey: await addGate(pool, id, { eventId: 'bench' }) },
          mqtt: { url: MQTT_URL },
        }),
        clock: systemClock,
        log: silent,
        makeSource: () => source,
      })
      await agent.start()
      agents.push(agent)
      gates.push({ agent, source })
    }
    const [a, b] = gates as [(typeof gates)[0], (typeof gates)[0]]
    // both gates ready: the roster, the policy and an allotment in
    const ready = await until(
      () =>
        gates.every(
          (g) =>
            g.agent.status().roster.active === people &&
            (g.agent.status().access?.zones.find((z) => z.zone === 'hall')?.allotment ?? 0) > 0,
        ),
      60_000,
      100,
    )
    if (Number.isNaN(ready)) throw new Error('the gates did not get their roster, policy and allotment')
    await sleep(1_000) // both subscribed to the passages

    // when each participant's entry was made durable at the first gate, and heard at the second
    const durableAt = new Map<string, number>()
    a.agent.pipelineForTests?.on('decision', (d: DecisionEvent) => {
      if (d.decision === 'admit' && d.participantId !== null)
        durableAt.set(d.participantId, performance.now())
    })
    const heardAt = new Map<string, number>()
    const stepB = b.agent.accessForTests
    if (stepB === null) throw new Error('no access step at the second gate')
    const learn = stepB.learn.bind(stepB)
    stepB.learn = (p: PassagePayload) => {
      const known = learn(p)
      if (known) heardAt.set(p.participantId, performance.now())
      return known
    }

    // 1. anti-passback across the two gates, against a bare MQTT message of the same size
    const sample: PassagePayload = {
      v: 1,
      id: '0192b1c0-0000-7000-8000-000000000001',
      gateId: north,
      participantId: 'p-123',
      zoneIn: 'hall',
      zoneOut: null,
      ts: Date.now(),
      policyVersion: 1,
    }
    const bare = await bareMqtt(PASSAGES, JSON.stringify(sample))
    const passage: number[] = []
    for (let i = 0; i < PASSAGES; i++) {
      const pid = `p-${i}`
      walkUp(a.source, tokenOf(i))
      const heard = await until(() => heardAt.has(pid) && durableAt.has(pid), 5_000, 1)
      if (!Number.isNaN(heard)) passage.push((heardAt.get(pid) as number) - (durableAt.get(pid) as number))
      await sleep(20)
    }

    // 2. occupancy at the cloud, against the check-in record itself reaching Postgres
    const occupancyNow = async () => {
      const res = await fetch(`${service.url}/v1/query/events/bench/occupancy`, {
        headers: { authorization: `Bearer ${opsToken}` },
      })
      const body = (await res.json()) as { zones: Array<{ zone: string; occupancy: number }> }
      return body.zones.find((z) => z.zone === 'hall')?.occupancy ?? 0
    }
    await until(async () => (await occupancyNow()) === PASSAGES, 10_000, 50)
    const stored: number[] = []
    const counted: number[] = []
    for (let k = 0; k < CLOUD_SAMPLES; k++) {
      const i = PASSAGES + k
      const pid = `p-${i}`
      walkUp(a.source, tokenOf(i))
      const made = await until(() => durableAt.has(pid), 5_000, 1)
      let recordAt = Number.NaN
      let occupancyAt = Number.NaN
      await until(
        async () => {
          if (Number.isNaN(recordAt)) {
            const r = await pool.query('SELECT 1 FROM attendance_records WHERE participant_id = $1', [pid])
            if (r.rows.length > 0) recordAt = performance.now()
          }
          if (Number.isNaN(occupancyAt) && (await occupancyNow()) >= PASSAGES + k + 1)
            occupancyAt = performance.now()
          return !Number.isNaN(recordAt) && !Number.isNaN(occupancyAt)
        },
        10_000,
        5,
      )
      const at = durableAt.get(pid) ?? made
      stored.push(recordAt - at)
      counted.push(occupancyAt - at)
      await sleep(300)
    }

    const row = (what: string, xs: number[], target: string) => [
      what,
      String(xs.filter(Number.isFinite).length),
      fmt(percentile(xs, 50), 1),
      fmt(percentile(xs, 95), 1),
      fmt(Math.max(...xs), 1),
      target,
    ]
    console.log(
      `\nbench:access: ${PASSAGES} passages across two gates, ${CLOUD_SAMPLES} entries to the cloud (ms)\n`,
    )
    printTable([
      ['path', 'samples', 'median', 'p95', 'max', 'target'],
      [
        'baseline: bare MQTT message, QoS 1',
        String(bare.length),
        fmt(percentile(bare, 50), 1),
        fmt(percentile(bare, 95), 1),
        fmt(Math.max(...bare), 1),
        '',
      ],
      row('entry durable at one gate -> known at the other', passage, 'within 1,000'),
      row('baseline: entry durable -> record stored in Postgres', stored, ''),
      row('entry durable -> counted in the cloud occupancy', counted, 'within 2,000'),
    ])
    const missing = PASSAGES - passage.length
    if (missing > 0) console.log(`\n${missing} passages were never heard at the second gate`)
  } finally {
    for (const agent of agents) await agent.stop()
    await pool.end()
    await service.stop()
    await scratch.sql.end()
    await scratch.drop()
    rmSync(dir, { recursive: true, force: true })
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err)
    process.exit(1)
  },
)
