import { randomBytes } from 'node:crypto'
import path from 'node:path'
import { Redis } from 'ioredis'
import mqtt from 'mqtt'
import { pino } from 'pino'
import { Registry } from 'prom-client'
import { v4 as uuidv4 } from 'uuid'
import { afterEach, describe, expect, it } from 'vitest'
import { MqttReporter } from '../../../agent/report/mqtt-reporter.js'
import { openDatabase } from '../../../agent/store/db.js'
import { loadCloudConfig } from '../../../cloud/config.js'
import { createPool } from '../../../cloud/db/pool.js'
import { KnownGates, postgresGateIds } from '../../../cloud/fleet/admission.js'
import {
  type FleetAlert,
  FleetMonitor,
  type FleetMonitorOptions,
  type GateFleetState,
  newer,
} from '../../../cloud/fleet/monitor.js'
import { LocalSeqLedger, RedisSeqLedger } from '../../../cloud/fleet/seqs.js'
import { RedisSilenceClock } from '../../../cloud/fleet/silence.js'
import { postgresHistory, RedisFleetStore } from '../../../cloud/fleet/stores.js'
import { addGate } from '../../../cloud/gates/store.js'
import { buildApp } from '../../../cloud/http/app.js'
import { AlertEngine, type AlertEvent } from '../../../cloud/monitor/alerts.js'
import { maintainPartitions } from '../../../cloud/partitions/manager.js'
import { startEmbeddedBroker } from '../../../demo/embedded.js'
import type { GateMetrics } from '../../../shared/fleet.js'
import { FLEET_MAX_PAYLOAD_BYTES } from '../../../shared/mqtt-limits.js'
import {
  freePort,
  MQTT_URL,
  reporterDeps,
  sampleGateMetrics,
  silentLog,
  tempDir,
} from '../../support/helpers.js'
import { tempDatabase } from '../../support/pg-helpers.js'
import { eventually } from '../../support/process-helpers.js'

const metrics = sampleGateMetrics()

/** A monitor on the test broker with its own share group; `over` sets what a test is about. */
const newMonitor = (over: Partial<FleetMonitorOptions> = {}) =>
  new FleetMonitor({
    url: MQTT_URL,
    group: `g${randomBytes(3).toString('hex')}`,
    silentAfterMs: 60_000,
    maxTemperatureC: 80,
    log: silentLog,
    registry: new Registry(),
    onAlert: () => {},
    ...over,
  })

/** One node's view of gate x, online (what the merging and the store tests start from). */
const fleetView = (over: Partial<GateFleetState>): GateFleetState => ({
  gateId: 'x',
  state: 'online',
  reason: null,
  session: 1,
  lastSeq: 1,
  lastSeenAt: 0,
  version: '1',
  bootId: null,
  startedAt: null,
  metrics: null,
  seqGaps: 0,
  lastEvent: null,
  ...over,
})

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

/** A client publishing as a made-up gate; at the end its retained status is cleared and it disconnects. */
async function gatePublisher(prefix: string) {
  const gateId = `${prefix}-${randomBytes(3).toString('hex')}`
  const pub = await mqtt.connectAsync(MQTT_URL)
  cleanups.push(async () => {
    await pub.publishAsync(`gates/${gateId}/status`, '', { retain: true })
    await pub.endAsync()
  })
  return { gateId, pub }
}

async function monitor(silentAfterMs = 60_000) {
  const alerts: FleetAlert[] = []
  const m = newMonitor({ silentAfterMs, onAlert: (a) => alerts.push(a) })
  await m.start()
  cleanups.push(() => m.stop())
  await new Promise((r) => setTimeout(r, 300)) // subscribed
  return { m, alerts }
}

describe('fleet monitor on the real Mosquitto', () => {
  it('tracks a real gate: online, metrics, the will when its link drops, and back online in a new session', async () => {
    const { m, alerts } = await monitor()
    const t = tempDir()
    const db = openDatabase(path.join(t.dir, 'agent.db'))
    const gateId = `f-${randomBytes(3).toString('hex')}`
    const reporter = new MqttReporter(reporterDeps(db, { gateId, intervalMs: 200, metrics: () => metrics }))
    cleanups.push(async () => {
      await reporter.stop()
      const c = await mqtt.connectAsync(MQTT_URL)
      await c.publishAsync(`gates/${gateId}/status`, '', { retain: true })
      await c.endAsync()
      db.close()
      t.cleanup()
    })
    reporter.start()
    await eventually(() => m.get(gateId)?.metrics !== null && m.get(gateId) !== null, 8_000, 20)
    expect(m.get(gateId)).toMatchObject({ state: 'online', session: expect.any(Number), version: '0.1.0' })
    const first = m.get(gateId)?.session as number
    ;(reporter as unknown as { client: mqtt.MqttClient }).client.stream.destroy()
    await eventually(() => m.get(gateId)?.state === 'offline', 8_000, 20)
    expect(m.get(gateId)?.reason).toBe('will')
    expect(alerts).toContainEqual(expect.objectContaining({ kind: 'gate_offline', gateId }))
    await eventually(
      () => m.get(gateId)?.state === 'online' && (m.get(gateId)?.session ?? 0) > first,
      8_000,
      20,
    )
    expect(m.get(gateId)?.seqGaps).toBe(0)
  })

  it('notices lost messages, ignores a stale will of an older session, flags silence, and counts garbage', async () => {
    const { m, alerts } = await monitor(3_000)
    const { gateId, pub } = await gatePublisher('f')
    const bootId = uuidv4()
    const head = (session: number, seq: number) => ({ v: 1, ts: Date.now(), gateId, bootId, session, seq })
    const status = (session: number, state: string, reason?: string) =>
      JSON.stringify({
        ...head(session, 0),
        state,
        version: '1',
        startedAt: 'x',
        ...(reason ? { reason } : {}),
      })
    await pub.publishAsync(`gates/${gateId}/status`, status(3, 'online'), { qos: 1, retain: true })
    await pub.publishAsync(`gates/${gateId}/metrics`, JSON.stringify({ ...head(3, 1), metrics }), { qos: 1 })
    await pub.publishAsync(`gates/${gateId}/metrics`, JSON.stringify({ ...head(3, 4), metrics }), { qos: 1 })
    // judged at the next report once 2 s have passed (time for a message still on its way)
    await new Promise((r) => setTimeout(r, 2_100))
    expect(alerts.some((a) => a.kind === 'seq_gap')).toBe(false)
    await pub.publishAsync(`gates/${gateId}/metrics`, JSON.stringify({ ...head(3, 5), metrics }), { qos: 1 })
    await eventually(() => alerts.some((a) => a.kind === 'seq_gap'), 8_000, 20)
    expect(m.get(gateId)?.seqGaps).toBe(2)
    expect(alerts.find((a) => a.kind === 'seq_gap')?.detail).toEqual({ session: 3, from: 0, to: 4 })
    // the will of session 2 arrives late: the gate is already in session 3
    await pub.publishAsync(`gates/${gateId}/status`, status(2, 'offline', 'will'), { qos: 1 })
    await pub.publishAsync(`gates/${gateId}/metrics`, 'garbage', { qos: 1 })
    await pub.publishAsync(
      `gates/${gateId}/metrics`,
      JSON.stringify({ ...head(3, 6), metrics: { cpu: 'high' } }),
      {
        qos: 1,
      },
    )
    await pub.publishAsync(`gates/${gateId}/events`, JSON.stringify({ ...head(3, 5), gateId: 'other' }), {
      qos: 1,
    })
    await eventually(() => m.stats.garbage >= 3, 8_000, 20)
    expect(m.get(gateId)?.state).toBe('online')
    // and then nothing: silent beyond the limit
    expect(alerts.some((a) => a.kind === 'gate_silent')).toBe(false)
    await eventually(() => m.get(gateId)?.state === 'stale', 8_000, 20)
    expect(alerts).toContainEqual(expect.objectContaining({ kind: 'gate_silent', gateId }))
    // its will (session 3), then metrics of session 4 whose online status this node missed: online
    await pub.publishAsync(`gates/${gateId}/status`, status(3, 'offline', 'will'), { qos: 1 })
    await eventually(() => m.get(gateId)?.state === 'offline', 8_000, 20)
    await pub.publishAsync(`gates/${gateId}/metrics`, JSON.stringify({ ...head(4, 1), metrics }), { qos: 1 })
    await eventually(() => m.get(gateId)?.state === 'online', 8_000, 20)
    expect(m.get(gateId)?.session).toBe(4)
  })
})

describe('offline by silence, held to 1.5 keep-alives by the cloud itself', () => {
  /** A gate of our own on the real broker: its birth announces keepaliveS 1 and metrics every `everyS`. */
  async function announcingGate(everyS: number) {
    const { gateId, pub } = await gatePublisher('s')
    const bootId = uuidv4()
    let seq = 0
    const head = () => ({ v: 1, ts: Date.now(), gateId, bootId, session: 1, seq: seq++ })
    const status = (state: 'online' | 'offline', extra: Record<string, unknown>) =>
      pub.publishAsync(
        `gates/${gateId}/status`,
        JSON.stringify({ ...head(), state, version: '1', startedAt: 'x', ...extra }),
        { qos: 1, retain: true },
      )
    const report = async () => {
      await pub.publishAsync(`gates/${gateId}/metrics`, JSON.stringify({ ...head(), metrics }), { qos: 1 })
      return Date.now()
    }
    /** report every `everyS` for `ms`; the time of the last report */
    const live = async (ms: number) => {
      let last = Date.now()
      for (const end = Date.now() + ms; Date.now() < end; ) {
        last = await report()
        await new Promise((r) => setTimeout(r, everyS * 1000))
      }
      return last
    }
    await status('online', { keepaliveS: 1, metricsIntervalS: everyS })
    return { gateId, status, report, live }
  }

  it('a gate silent for 1.5 of its announced keep-alives is offline at once (no waiting for the broker), online again when it speaks', async () => {
    const { m, alerts } = await monitor()
    const gate = await announcingGate(0.2)
    const offlines = () => alerts.filter((a) => a.kind === 'gate_offline' && a.gateId === gate.gateId).length
    const last = await gate.live(1_500)
    expect(m.get(gate.gateId)?.state).toBe('online')
    expect(offlines()).toBe(0)
    // nothing more: offline 1.35 s after the last report (1.5 x 1 s, less the monitor's allowance)
    await eventually(() => m.get(gate.gateId)?.state === 'offline', 5_000, 10)
    const after = Date.now() - last
    expect(m.get(gate.gateId)?.reason).toBe('silent')
    expect(after).toBeGreaterThanOrEqual(1_300)
    expect(after).toBeLessThan(2_500)
    expect(offlines()).toBe(1)
    // it was a slow link, not a dead one: the same session speaks again
    await gate.report()
    await eventually(() => m.get(gate.gateId)?.state === 'online', 5_000, 10)
    expect(m.get(gate.gateId)?.reason).toBeNull()
    // silent again, and this time the broker's will follows: one alert for the one outage
    await eventually(() => m.get(gate.gateId)?.state === 'offline', 5_000, 10)
    expect(offlines()).toBe(2)
    await gate.status('offline', { reason: 'will' })
    await eventually(() => m.get(gate.gateId)?.reason === 'will', 5_000, 10)
    await new Promise((r) => setTimeout(r, 300))
    expect(offlines()).toBe(2)
  })

  it('a gate whose birth the monitor missed (a broker queue limit) is held to the keep-alive its metrics carry', async () => {
    const { m, alerts } = await monitor()
    const { gateId, pub } = await gatePublisher('s')
    const head = { v: 1, gateId, bootId: uuidv4(), session: 1, keepaliveS: 1, metricsIntervalS: 0.2 }
    for (let seq = 1; seq <= 3; seq++)
      await pub.publishAsync(
        `gates/${gateId}/metrics`,
        JSON.stringify({ ...head, ts: Date.now(), seq, metrics }),
        {
          qos: 1,
        },
      )
    const last = Date.now()
    await eventually(() => m.get(gateId)?.state === 'offline', 5_000, 10)
    expect(m.get(gateId)?.reason).toBe('silent')
    expect(Date.now() - last).toBeLessThan(2_500) // not the 60 s of a gate that announced nothing
    expect(alerts).toContainEqual(expect.objectContaining({ kind: 'gate_offline', gateId }))
  })

  it('two nodes that each hear only half of a gate keep it online, and exactly one of them calls it offline', async () => {
    const redis = new Redis(process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379')
    const key = `t${randomBytes(4).toString('hex')}:fleet`
    const group = `g${randomBytes(3).toString('hex')}`
    const alerts: FleetAlert[] = []
    const node = () =>
      newMonitor({
        group,
        store: new RedisFleetStore(redis, key),
        silence: new RedisSilenceClock(redis, `${key}:due`),
        seqs: new RedisSeqLedger(redis, `{${key}}:seq`),
        onAlert: (a) => alerts.push(a),
      })
    const a = node()
    const b = node()
    await a.start()
    await b.start()
    await new Promise((r) => setTimeout(r, 400))
    const gate = await announcingGate(0.8)
    cleanups.push(async () => {
      await a.stop()
      await b.stop()
      await redis.del(key, `${key}:due`, `{${key}}:seq:meta`, `{${key}}:seq:bits:${gate.gateId}`)
      redis.disconnect()
    })
    // a report every 0.8 s: the shared subscription gives each node one every 1.6 s, longer than
    // the 1.35 s limit, so a node judging by what it hears alone would call a live gate offline;
    // and each node sees every other seq, which alone would be lost messages
    await gate.live(8_000)
    expect(alerts.filter((x) => x.gateId === gate.gateId)).toEqual([])
    const heardA = a.get(gate.gateId)?.lastSeq ?? 0
    const heardB = b.get(gate.gateId)?.lastSeq ?? 0
    expect(Math.min(heardA, heardB)).toBeGreaterThan(0) // both nodes had their share
    await eventually(async () => {
      const [fa, fb] = [await a.fleet(), await b.fleet()].map((f) => f.find((g) => g.gateId === gate.gateId))
      return fa?.state === 'offline' && fb?.state === 'offline'
    }, 8_000)
    await new Promise((r) => setTimeout(r, 600)) // a second claimer would have spoken by now
    expect(alerts.filter((x) => x.gateId === gate.gateId).map((x) => x.kind)).toEqual(['gate_offline'])
    expect((await b.fleet()).find((g) => g.gateId === gate.gateId)?.reason).toBe('silent')
  })

  it.each(['Redis (nodes sharing it)', 'memory (one node)'])(
    'a seq counts as lost only when no node heard it within the grace; each gap once (%s)',
    async (where) => {
      const redis = new Redis(process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379')
      const prefix = `{t${randomBytes(4).toString('hex')}}:seq`
      cleanups.push(async () => {
        await redis.del(`${prefix}:meta`, `${prefix}:bits:g1`)
        redis.disconnect()
      })
      const local = new LocalSeqLedger(1_000)
      const [a, b] = where.startsWith('Redis')
        ? [new RedisSeqLedger(redis, prefix, 1_000), new RedisSeqLedger(redis, prefix, 1_000)]
        : [local, local]
      const at = (session: number, ...seqs: number[]) => new Map([['g1', { session, seqs }]])
      // the nodes hear alternate seqs; seq 6 never arrives anywhere; seq 3 reaches b late (in the grace)
      expect(await a.record(at(1, 0, 2, 4), 0)).toEqual([])
      expect(await b.record(at(1, 1, 5, 7), 100)).toEqual([])
      expect(await b.record(at(1, 3), 900)).toEqual([])
      // 1 s after 4 was first heard, 0..4 are judged: all there (3 arrived late, in the grace)
      expect(await a.record(at(1, 8), 1_200)).toEqual([])
      // then 5..8, the highest heard at that judgement: 6 never came
      expect(await b.record(at(1, 9), 2_300)).toEqual([{ gateId: 'g1', session: 1, lost: 1, from: 5, to: 8 }])
      // nobody hears 10 and 11
      expect(await a.record(at(1, 12), 2_400)).toEqual([])
      expect(await b.record(at(1, 13), 3_500)).toEqual([])
      expect(await a.record(at(1, 14), 4_600)).toEqual([
        { gateId: 'g1', session: 1, lost: 2, from: 10, to: 13 },
      ])
      expect(await b.record(at(1, 15), 5_700)).toEqual([]) // each gap once
      // a new session starts over, from the first seq heard of it; an older session is ignored
      expect(await a.record(at(2, 0), 6_000)).toEqual([])
      expect(await b.record(at(1, 20), 7_000)).toEqual([])
      expect(await b.record(at(2, 1), 7_100)).toEqual([])
      expect(await a.record(at(2, 3), 8_200)).toEqual([]) // 0..1 judged
      expect(await a.record(at(2, 4), 9_300)).toEqual([{ gateId: 'g1', session: 2, lost: 1, from: 2, to: 3 }])
      // a session that starts high (a cloud that joins a long-running gate) costs a bitmap of its
      // own seqs only; a seq far beyond the highest (a broken gate) is not believed
      const t0 = performance.now()
      expect(await a.record(at(3, 2_000_000_000), 10_000)).toEqual([])
      expect(await b.record(at(3, 2_000_000_002, 2_147_483_647), 10_100)).toEqual([])
      expect(await a.record(at(3, 2_000_000_003), 11_200)).toEqual([])
      expect(await b.record(at(3, 2_000_000_004), 12_300)).toEqual([
        { gateId: 'g1', session: 3, lost: 1, from: 2_000_000_001, to: 2_000_000_003 },
      ])
      expect(performance.now() - t0).toBeLessThan(1_000)
      if (where.startsWith('Redis')) expect(await redis.strlen(`${prefix}:bits:g1`)).toBeLessThan(16)
    },
  )

  it("drops the views of nodes that stopped a day before the gate's newest view", async () => {
    const redis = new Redis(process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379')
    const key = `t${randomBytes(4).toString('hex')}:fleet`
    cleanups.push(async () => {
      await redis.del(key)
      redis.disconnect()
    })
    const view = (lastSeenAt: number, session: number) => fleetView({ session, lastSeq: 1, lastSeenAt })
    const now = Date.now()
    // a node that ran two days ago, and the node running now (each run of a node writes its own field)
    await new RedisFleetStore(redis, key).save(view(now - 2 * 86_400_000, 5))
    const current = new RedisFleetStore(redis, key)
    await current.save(view(now, 6))
    expect(await redis.hlen(key)).toBe(2)
    expect((await current.all()).map((g) => g.session)).toEqual([6])
    expect(await redis.hlen(key)).toBe(1)
  })

  it('merges views: a silence beats what was heard before it, and loses to anything heard after', () => {
    const base = fleetView({ session: 4, lastSeq: 9, lastSeenAt: 10_000 })
    const silent = { ...base, state: 'offline' as const, reason: 'silent', lastSeq: 7, lastSeenAt: 10_000 }
    expect(newer(silent, base)).toBe(true) // node B declared it from the fleet-wide last-heard time
    expect(newer(base, silent)).toBe(false)
    const spoke = { ...base, lastSeq: 10, lastSeenAt: 25_000 }
    expect(newer(spoke, silent)).toBe(true)
    expect(newer(silent, spoke)).toBe(false)
    const will = { ...base, state: 'offline' as const, reason: 'will', lastSeq: 0 }
    expect(newer(will, spoke)).toBe(true) // the end of a session beats anything of it
    expect(newer(silent, will)).toBe(false)
    expect(newer({ ...base, session: 5, lastSeq: 0 }, will)).toBe(true) // a new session beats all
  })
})

describe('/v1/fleet and fleet alerts', () => {
  it('lists every gate with its state and metrics for ops, and routes fleet alerts through the alert engine', async () => {
    const db = await tempDatabase()
    const OPS = 'ops-token-for-fleet-tests-012345'
    const pool = createPool(loadCloudConfig({ DATABASE_URL: db.url }))
    const recorded: AlertEvent[] = []
    const engine = new AlertEngine([], {
      sinks: [],
      actions: {},
      record: async (e) => void recorded.push(e),
      log: silentLog,
      registry: new Registry(),
    })
    const m = newMonitor({
      onAlert: (a) =>
        void engine.raise({ rule: `fleet.${a.kind}`, severity: a.severity, summary: a.summary }),
    })
    await m.start()
    const app = await buildApp({
      config: loadCloudConfig({ DATABASE_URL: db.url, OPS_TOKEN: OPS }),
      pool,
      log: silentLog,
      fleet: m,
    })
    const gateId = `f-${randomBytes(3).toString('hex')}`
    const pub = await mqtt.connectAsync(MQTT_URL)
    try {
      await new Promise((r) => setTimeout(r, 300))
      const head = { v: 1, ts: Date.now(), gateId, bootId: uuidv4(), session: 1 }
      await pub.publishAsync(
        `gates/${gateId}/status`,
        JSON.stringify({ ...head, seq: 0, state: 'online', version: '1', startedAt: 'x' }),
        { qos: 1 },
      )
      await pub.publishAsync(
        `gates/${gateId}/metrics`,
        JSON.stringify({ ...head, seq: 1, metrics: { ...metrics, temperature_c: 85 } }),
        { qos: 1 },
      )
      await eventually(() => m.get(gateId)?.metrics?.temperature_c === 85, 8_000, 20)
      const ops = (url: string) => app.inject({ url, headers: { authorization: `Bearer ${OPS}` } })
      const list = (await ops('/v1/fleet')).json()
      expect(list.gates.find((g: { gateId: string }) => g.gateId === gateId)).toMatchObject({
        state: 'online',
        session: 1,
      })
      expect((await ops(`/v1/fleet/${gateId}`)).json()).toMatchObject({ metrics: { temperature_c: 85 } })
      expect((await ops('/v1/fleet/nobody')).statusCode).toBe(404)
      expect((await app.inject({ url: '/v1/fleet' })).statusCode).toBe(401)
      await eventually(() => recorded.some((e) => e.rule === 'fleet.high_temperature'), 8_000, 20)
      expect(recorded.find((e) => e.rule === 'fleet.high_temperature')).toMatchObject({
        severity: 'warning',
        metric: 'fleet',
      })
    } finally {
      await pub.publishAsync(`gates/${gateId}/status`, '', { retain: true })
      await pub.endAsync()
      await app.close()
      await m.stop()
      await pool.end()
      await db.drop()
    }
  })
})

describe('commands from the cloud', () => {
  it('signs a command, the gate executes it and its answer comes back over HTTP; a gate that does not answer is a 504', async () => {
    const SECRET = 'fleet-command-secret-0123456789'
    const OPS = 'ops-token-for-fleet-tests-012345'
    const db = await tempDatabase()
    const pool = createPool(loadCloudConfig({ DATABASE_URL: db.url }))
    const m = newMonitor()
    await m.start()
    const app = await buildApp({
      config: loadCloudConfig({ DATABASE_URL: db.url, OPS_TOKEN: OPS, FLEET_COMMAND_SECRET: SECRET }),
      pool,
      log: silentLog,
      fleet: m,
    })
    const t = tempDir()
    const agentDb = openDatabase(path.join(t.dir, 'agent.db'))
    const gateId = `c-${randomBytes(3).toString('hex')}`
    const calls: string[] = []
    const none = async () => null
    const reporter = new MqttReporter(
      reporterDeps(agentDb, {
        gateId,
        intervalMs: 1_000,
        commandSecret: SECRET,
        metrics: () => metrics,
        commands: {
          resync_roster: none,
          sync_now: async () => {
            calls.push('sync_now')
            if (calls.length === 2) await new Promise((r) => setTimeout(r, 600)) // a slow one
            return { state: 'idle' }
          },
          restart_scan: none,
          set_log_level: none,
          checkout: none,
        },
      }),
    )
    reporter.start()
    const post = (gate: string, body: unknown) =>
      app.inject({
        method: 'POST',
        url: `/v1/fleet/${gate}/commands`,
        headers: { authorization: `Bearer ${OPS}`, 'content-type': 'application/json' },
        payload: JSON.stringify(body),
      })
    try {
      await eventually(() => m.get(gateId)?.state === 'online', 8_000, 20)
      const res = await post(gateId, { cmd: 'sync_now' })
      expect(res.statusCode).toBe(200)
      expect(res.json()).toMatchObject({ ok: true, result: { state: 'idle' }, gateId })
      expect(calls).toEqual(['sync_now'])
      const silent = await post('no-such-gate', { cmd: 'rebirth', timeoutMs: 300 })
      expect(silent.statusCode).toBe(504)
      expect((await post(gateId, { cmd: 'format_disk' })).statusCode).toBe(400)
      // two commands to one gate at once: the quick one finishing does not cut the slow one off
      const [slow, quick] = await Promise.all([
        post(gateId, { cmd: 'sync_now', timeoutMs: 3_000 }),
        new Promise((r) => setTimeout(r, 100)).then(() => post(gateId, { cmd: 'rebirth', timeoutMs: 3_000 })),
      ])
      expect(quick.statusCode).toBe(200)
      expect(slow.statusCode).toBe(200)
      // a wildcard is no gate id: refused, the broker session untouched
      expect((await post('%2B', { cmd: 'rebirth', timeoutMs: 300 })).statusCode).toBe(400)
      expect((await post(gateId, { cmd: 'rebirth' })).statusCode).toBe(200)
    } finally {
      await reporter.stop()
      const c = await mqtt.connectAsync(MQTT_URL)
      await c.publishAsync(`gates/${gateId}/status`, '', { retain: true })
      await c.endAsync()
      agentDb.close()
      t.cleanup()
      await app.close()
      await m.stop()
      await pool.end()
      await db.drop()
    }
  })
})

describe('fleet state shared in Redis, history in Postgres', () => {
  it('two nodes split the metrics yet each lists the whole fleet, and the history lands in its day partition', async () => {
    const db = await tempDatabase()
    const pool = createPool(loadCloudConfig({ DATABASE_URL: db.url }))
    const sql = await pool.connect()
    await maintainPartitions(
      sql,
      { table: 'gate_metrics', interval: 'day', premake: 1, retentionDays: 30, dropDetached: true },
      new Date(),
    )
    sql.release()
    const redis = new Redis(process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379')
    const key = `t${randomBytes(4).toString('hex')}:fleet`
    const group = `g${randomBytes(3).toString('hex')}`
    const node = () =>
      newMonitor({ group, store: new RedisFleetStore(redis, key), history: postgresHistory(pool) })
    const a = node()
    const b = node()
    await a.start()
    await b.start()
    const pub = await mqtt.connectAsync(MQTT_URL)
    const gates = Array.from({ length: 6 }, (_, i) => `h${i}-${randomBytes(2).toString('hex')}`)
    try {
      await new Promise((r) => setTimeout(r, 400))
      for (const gateId of gates) {
        const head = { v: 1, ts: Date.now(), gateId, bootId: uuidv4(), session: 1 }
        await pub.publishAsync(
          `gates/${gateId}/status`,
          JSON.stringify({ ...head, seq: 0, state: 'online', version: '1', startedAt: 'x' }),
          { qos: 1 },
        )
        for (const seq of [1, 2])
          await pub.publishAsync(`gates/${gateId}/metrics`, JSON.stringify({ ...head, seq, metrics }), {
            qos: 1,
          })
      }
      const complete = async (m: FleetMonitor) => {
        const f = (await m.fleet()).filter((g) => gates.includes(g.gateId))
        return f.length === gates.length && f.every((g) => g.metrics !== null && g.lastSeq === 2)
      }
      let ok = false
      for (let i = 0; i < 200 && !ok; i++) {
        ok = (await complete(a)) && (await complete(b))
        if (!ok) await new Promise((r) => setTimeout(r, 25))
      }
      expect(ok).toBe(true)
      // the shared subscription split the metrics between the two nodes
      const heardA = a.list().filter((g) => gates.includes(g.gateId) && g.metrics !== null).length
      const heardB = b.list().filter((g) => gates.includes(g.gateId) && g.metrics !== null).length
      expect(heardA + heardB).toBeGreaterThanOrEqual(gates.length)
      await a.flushHistory()
      await b.flushHistory()
      const rows = await pool.query(
        `SELECT tableoid::regclass::text AS part, count(*)::int AS n FROM gate_metrics WHERE gate_id = ANY($1) GROUP BY 1`,
        [gates],
      )
      expect(rows.rows).toEqual([{ part: expect.stringMatching(/^gate_metrics_p\d{8}$/), n: 12 }])
    } finally {
      await pub.endAsync()
      await a.stop()
      await b.stop()
      await redis.del(key)
      redis.disconnect()
      await pool.end()
      await db.drop()
    }
  })
})

describe('fleet detections from the metrics', () => {
  it('raises backlog growth, stale roster, clock skew and no adverts once each', () => {
    let now = 10_000_000
    const alerts: FleetAlert[] = []
    const m = newMonitor({
      onAlert: (a) => alerts.push(a),
      now: () => now,
      detect: { backlogReports: 2, backlogAgeS: 600, rosterStaleS: 900, maxSkewMs: 120_000, noAdvertsS: 60 },
    })
    const gateId = 'd-1'
    const bootId = uuidv4()
    let seq = 0
    const send = (over: Partial<GateMetrics>, gateTs = now) =>
      m.handle(
        `gates/${gateId}/metrics`,
        Buffer.from(
          JSON.stringify({
            v: 1,
            ts: gateTs,
            gateId,
            bootId,
            session: 1,
            seq: ++seq,
            metrics: { ...metrics, ...over },
          }),
        ),
      )
    const kinds = () => alerts.map((a) => a.kind)
    send({ buffer_pending: 10, buffer_oldest_pending_age_s: 700 })
    send({ buffer_pending: 20, buffer_oldest_pending_age_s: 710 })
    send({ buffer_pending: 30, buffer_oldest_pending_age_s: 720 })
    send({ buffer_pending: 40, buffer_oldest_pending_age_s: 730 })
    expect(kinds()).toEqual(['backlog_growth'])
    send({ last_sync_age_s: 1000 })
    send({ last_sync_age_s: 1010 })
    expect(kinds()).toEqual(['backlog_growth', 'roster_stale'])
    send({}, now + 600_000) // the gate's clock is ten minutes ahead
    send({}, now + 600_000)
    expect(kinds()).toEqual(['backlog_growth', 'roster_stale', 'clock_skew'])
    send({ adverts_per_s: 0 })
    now += 30_000
    send({ adverts_per_s: 0 })
    expect(kinds()).not.toContain('no_adverts')
    now += 40_000
    send({ adverts_per_s: 0 })
    now += 10_000
    send({ adverts_per_s: 0 })
    expect(kinds().filter((k) => k === 'no_adverts')).toHaveLength(1)
    expect(alerts.every((a) => a.gateId === gateId)).toBe(true)
  })
})

/** A logger whose warnings the test reads (what an operator sees in the journal). */
function capturingLog() {
  const lines: Array<{ msg: string } & Record<string, unknown>> = []
  const log = pino({ level: 'warn' }, { write: (s: string) => void lines.push(JSON.parse(s)) })
  return { log, lines }
}

describe('sessions are bounded, and one bad row cannot stop the metrics history', () => {
  /** A metrics message of `gateId` (what handle() gets from the broker). */
  const metricsMessage = (
    gateId: string,
    session: number,
    seq: number,
    ts: number,
    over: Partial<GateMetrics> = {},
  ) =>
    Buffer.from(
      JSON.stringify({ v: 1, ts, gateId, bootId: uuidv4(), session, seq, metrics: { ...metrics, ...over } }),
    )

  it('writes the history of 2038-01-20, when every session is past 2^31', async () => {
    const db = await tempDatabase()
    const pool = createPool(loadCloudConfig({ DATABASE_URL: db.url }))
    try {
      const at = Date.UTC(2038, 0, 20)
      const m = newMonitor({ now: () => at, history: postgresHistory(pool) })
      const session = Math.floor(at / 1000) // a gate's session is at least its clock in seconds
      expect(session).toBeGreaterThan(2 ** 31)
      m.handle('gates/y2038-a/metrics', metricsMessage('y2038-a', session, 1, at))
      m.handle('gates/y2038-b/metrics', metricsMessage('y2038-b', session + 3, 1, at))
      await m.flushHistory()
      const rows = await pool.query(
        'SELECT gate_id, session::text FROM gate_metrics WHERE gate_id LIKE $1 ORDER BY gate_id',
        ['y2038-%'],
      )
      expect(rows.rows).toEqual([
        { gate_id: 'y2038-a', session: String(session) },
        { gate_id: 'y2038-b', session: String(session + 3) },
      ])
      expect(m.stats).toMatchObject({ historyRows: 2, historyRejected: 0 })
    } finally {
      await pool.end()
      await db.drop()
    }
  })

  it('ignores a session far ahead of the clock and drops a row the database refuses; every other row is written, each problem logged once', async () => {
    const db = await tempDatabase()
    const pool = createPool(loadCloudConfig({ DATABASE_URL: db.url }))
    const { log, lines } = capturingLog()
    try {
      const m = newMonitor({ log, history: postgresHistory(pool) })
      const now = Date.now()
      const nowS = Math.floor(now / 1000)
      let seq = 0
      const send = (gateId: string, session: number, over: Partial<GateMetrics> = {}) =>
        m.handle(`gates/${gateId}/metrics`, metricsMessage(gateId, session, ++seq, now, over))
      send('bad-good-1', nowS)
      send('bad-future', 2 ** 31) // twelve years ahead today: not believed
      send('bad-nul', nowS, { adapter_state: 'on\u0000' }) // Postgres' jsonb refuses \u0000
      send('bad-good-2', nowS)
      await m.flushHistory()
      // a flood of both, between good rows
      for (let i = 0; i < 50; i++) {
        send('bad-future', 2 ** 31 + i)
        send('bad-nul', nowS, { adapter_state: 'on\u0000' })
        send(`bad-good-${3 + (i % 3)}`, nowS)
      }
      await m.flushHistory()
      send('bad-good-1', nowS)
      await m.flushHistory()
      const rows = await pool.query<{ gate_id: string; n: number }>(
        'SELECT gate_id, count(*)::int AS n FROM gate_metrics GROUP BY 1 ORDER BY 1',
      )
      expect(rows.rows).toEqual([
        { gate_id: 'bad-good-1', n: 2 },
        { gate_id: 'bad-good-2', n: 1 },
        { gate_id: 'bad-good-3', n: 17 },
        { gate_id: 'bad-good-4', n: 17 },
        { gate_id: 'bad-good-5', n: 16 },
      ])
      expect(m.stats).toMatchObject({ historyRows: 53, historyRejected: 51, sessionsRejected: 51 })
      expect(m.get('bad-future')).toBeNull() // nor in the fleet view
      expect(lines.filter((l) => /session is far ahead/.test(l.msg))).toHaveLength(1)
      expect(lines.filter((l) => /refused by the database/.test(l.msg))).toHaveLength(1)
    } finally {
      await pool.end()
      await db.drop()
    }
  })
})

describe('a session far ahead of the clock cannot hide a live gate', () => {
  it('neither a retained offline status with a huge session nor such a view left in Redis hide the gate once it reports', async () => {
    const redis = new Redis(process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379')
    const key = `t${randomBytes(4).toString('hex')}:fleet`
    const { gateId, pub } = await gatePublisher('hide')
    const huge = 2 ** 40
    // what a node without the bound wrote to Redis when it believed the forged status
    const poisoned = `${gateId}@node-before-the-fix`
    await redis.hset(
      key,
      poisoned,
      JSON.stringify(
        fleetView({ gateId, state: 'offline', reason: 'will', session: huge, lastSeenAt: Date.now() }),
      ),
    )
    await pub.publishAsync(
      `gates/${gateId}/status`,
      JSON.stringify({
        v: 1,
        ts: Date.now(),
        gateId,
        bootId: uuidv4(),
        session: huge,
        seq: 0,
        state: 'offline',
        reason: 'will',
        version: '1',
        startedAt: 'x',
      }),
      { qos: 1, retain: true },
    )
    const m = newMonitor({ store: new RedisFleetStore(redis, key) })
    await m.start()
    const t = tempDir()
    const db = openDatabase(path.join(t.dir, 'agent.db'))
    const reporter = new MqttReporter(reporterDeps(db, { gateId, intervalMs: 200 }))
    cleanups.push(async () => {
      await reporter.stop()
      await m.stop()
      db.close()
      t.cleanup()
      await redis.del(key)
      redis.disconnect()
    })
    const inFleet = async () => (await m.fleet()).find((g) => g.gateId === gateId)
    await eventually(() => m.stats.sessionsRejected >= 1, 8_000, 20) // the retained status came, not believed
    reporter.start()
    await eventually(async () => (await inFleet())?.state === 'online', 8_000, 20)
    const session = (await inFleet())?.session as number
    expect(session).toBeGreaterThanOrEqual(Math.floor(Date.now() / 1000) - 60)
    expect(session).toBeLessThan(huge)
    expect(await redis.hexists(key, poisoned)).toBe(0)
    // another node starting now reads the same fleet from Redis
    const other = newMonitor({ store: new RedisFleetStore(redis, key) })
    expect((await other.fleet()).find((g) => g.gateId === gateId)).toMatchObject({ state: 'online', session })
  })

  it.each(['Redis (nodes sharing it)', 'memory (one node)'])(
    'a ledger track of a session far ahead of the clock is started over, so lost messages are found again (%s)',
    async (where) => {
      const redis = new Redis(process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379')
      const prefix = `{t${randomBytes(4).toString('hex')}}:seq`
      cleanups.push(async () => {
        await redis.del(`${prefix}:meta`, `${prefix}:bits:g1`)
        redis.disconnect()
      })
      const ledger = where.startsWith('Redis')
        ? new RedisSeqLedger(redis, prefix, 1_000)
        : new LocalSeqLedger(1_000)
      const now = Date.now()
      const session = Math.floor(now / 1000)
      const at = (s: number, ...seqs: number[]) => new Map([['g1', { session: s, seqs }]])
      if (where.startsWith('Redis'))
        // what a node without the bound recorded
        await redis.hset(`${prefix}:meta`, 'g1', `${2 ** 40} 0 5 5 ${now} 0`)
      else await ledger.record(at(2 ** 40, 5), now)
      expect(await ledger.record(at(session, 0, 2), now)).toEqual([])
      expect(await ledger.record(at(session, 3), now + 1_100)).toEqual([
        { gateId: 'g1', session, lost: 1, from: 0, to: 2 },
      ])
    },
  )
})

describe('gates the cloud does not know, and floods of alerts', () => {
  it('keeps 2,000 made-up gates out of /v1/fleet and Redis, counted apart; a gate added meanwhile is taken; forged events raise a bounded number of alerts', async () => {
    const db = await tempDatabase()
    const OPS = 'ops-token-for-fleet-tests-012345'
    const pool = createPool(loadCloudConfig({ DATABASE_URL: db.url }))
    const redis = new Redis(process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379')
    const key = `t${randomBytes(4).toString('hex')}:fleet`
    const prefix = randomBytes(3).toString('hex')
    const real = `known-${prefix}`
    await addGate(pool, real)
    const alerts: FleetAlert[] = []
    const m = newMonitor({
      knownGates: new KnownGates({ load: postgresGateIds(pool), log: silentLog, minReloadMs: 500 }),
      store: new RedisFleetStore(redis, key),
      alertRate: { burst: 5, perHour: 60 },
      onAlert: (a) => alerts.push(a),
    })
    await m.start()
    const app = await buildApp({
      config: loadCloudConfig({ DATABASE_URL: db.url, OPS_TOKEN: OPS }),
      pool,
      log: silentLog,
      fleet: m,
    })
    const pub = await mqtt.connectAsync(MQTT_URL)
    const ops = async (url: string) =>
      (await app.inject({ url, headers: { authorization: `Bearer ${OPS}` } })).json()
    const head = (gateId: string, seq: number) => ({
      v: 1,
      ts: Date.now(),
      gateId,
      bootId: uuidv4(),
      session: Math.floor(Date.now() / 1000),
      seq,
    })
    const event = (gateId: string, seq: number) =>
      JSON.stringify({ ...head(gateId, seq), id: uuidv4(), at: Date.now(), kind: 'disk_low', detail: {} })
    const status = (gateId: string) =>
      JSON.stringify({ ...head(gateId, 0), state: 'online', version: '1', startedAt: 'x' })
    try {
      await new Promise((r) => setTimeout(r, 300))
      await pub.publishAsync(`gates/${real}/status`, status(real), { qos: 1 })
      await eventually(() => m.get(real)?.state === 'online', 8_000, 20)
      // 2,000 forged events, each on the topic of a gate that does not exist
      const before = m.stats.messages
      for (let i = 0; i < 2_000; i += 200)
        await Promise.all(
          Array.from({ length: 200 }, (_, k) => {
            const ghost = `ghost-${prefix}-${i + k}`
            return pub.publishAsync(`gates/${ghost}/events`, event(ghost, 1), { qos: 1 })
          }),
        )
      await eventually(() => m.stats.messages - before >= 2_000, 15_000, 50)
      const fleet = await ops('/v1/fleet')
      expect(fleet.gates.map((g: GateFleetState) => g.gateId)).toEqual([real])
      expect(fleet.unknownGates.recent.length).toBeLessThanOrEqual(1_000) // bounded
      expect(fleet.unknownGates.recent[0]).toMatchObject({
        gateId: expect.stringMatching(`^ghost-${prefix}-`),
      })
      expect(fleet.messages.unknownGateMessages).toBeGreaterThanOrEqual(2_000)
      expect(alerts.filter((a) => a.gateId !== real)).toEqual([])
      expect((await redis.hkeys(key)).every((f) => f.startsWith(`${real}@`))).toBe(true)
      // a gate registered while the cloud runs: taken once the table is read again
      const late = `late-${prefix}`
      await addGate(pool, late)
      await eventually(
        async () => {
          await pub.publishAsync(`gates/${late}/status`, status(late), { qos: 1 })
          return m.get(late)?.state === 'online'
        },
        8_000,
        200,
      )
      // a flood of forged events on a real gate's topic: the first 5 raise alerts, the rest are suppressed
      for (let seq = 1; seq <= 100; seq++)
        await pub.publishAsync(`gates/${real}/events`, event(real, seq), { qos: 1 })
      const raised = () => alerts.filter((a) => a.gateId === real && a.kind === 'gate_event').length
      await eventually(() => raised() + m.stats.alertsSuppressed >= 100, 8_000, 20)
      expect(raised()).toBeGreaterThanOrEqual(5)
      expect(raised()).toBeLessThanOrEqual(6) // one more a minute
      expect(m.stats.alertsSuppressed).toBe(100 - raised())
      // and the flood of one kind does not silence another
      await pub.publishAsync(
        `gates/${real}/metrics`,
        JSON.stringify({ ...head(real, 200), metrics: { ...metrics, temperature_c: 90 } }),
        { qos: 1 },
      )
      await eventually(
        () => alerts.some((a) => a.gateId === real && a.kind === 'high_temperature'),
        8_000,
        20,
      )
    } finally {
      await pub.endAsync()
      await app.close()
      await m.stop()
      await redis.del(key)
      redis.disconnect()
      await pool.end()
      await db.drop()
    }
  })
})

describe('message size limits', () => {
  it('the monitor does not read a payload over 64 KiB (the real Mosquitto here has no limit)', async () => {
    const { m } = await monitor()
    const { gateId, pub } = await gatePublisher('big')
    const head = { v: 1, gateId, bootId: uuidv4(), session: Math.floor(Date.now() / 1000) }
    const valid = (seq: number) => JSON.stringify({ ...head, ts: Date.now(), seq, metrics })
    const garbage = m.stats.garbage
    // valid JSON of a real metrics message, padded to 1 MB: JSON.parse would take it
    const padded = Buffer.from(valid(1) + ' '.repeat(1_000_000))
    expect(padded.length).toBeGreaterThan(FLEET_MAX_PAYLOAD_BYTES)
    await pub.publishAsync(`gates/${gateId}/metrics`, padded, { qos: 1 })
    await eventually(() => m.stats.garbage > garbage || m.get(gateId) !== null, 8_000, 20)
    expect(m.get(gateId)).toBeNull()
    expect(m.stats.garbage).toBe(garbage + 1)
    await pub.publishAsync(`gates/${gateId}/metrics`, valid(2), { qos: 1 })
    await eventually(() => m.get(gateId)?.lastSeq === 2, 8_000, 20)
  })

  it('the embedded broker (aedes) forwards no payload over 64 KiB and cuts off a 30 MB packet at its header', async () => {
    const port = await freePort()
    const accounts = {
      cloud: { username: 'gate-cloud', password: 'pw-cloud-0123' },
      gates: { 'gate-1': 'pw-gate-1-0123' },
    }
    const broker = await startEmbeddedBroker(port, accounts, silentLog)
    const url = `mqtt://127.0.0.1:${port}`
    const gate = () =>
      mqtt.connectAsync(url, {
        username: 'gate-1',
        password: accounts.gates['gate-1'],
        clientId: `gate-gate-1-${randomBytes(4).toString('hex')}`,
        reconnectPeriod: 0,
      })
    const closed = (c: mqtt.MqttClient) =>
      new Promise<boolean>((r) => {
        c.once('close', () => r(true))
        setTimeout(() => r(false), 5_000).unref()
      })
    const cloud = await mqtt.connectAsync(url, { ...accounts.cloud, reconnectPeriod: 0 })
    try {
      const got: number[] = []
      cloud.on('message', (_t, p) => got.push(p.length))
      await cloud.subscribeAsync('gates/+/metrics', { qos: 1 })
      const g = await gate()
      await g.publishAsync('gates/gate-1/metrics', Buffer.alloc(FLEET_MAX_PAYLOAD_BYTES, 0x20), { qos: 1 })
      await eventually(() => got.length === 1, 5_000, 20)
      const refused = closed(g)
      g.publish('gates/gate-1/metrics', Buffer.alloc(FLEET_MAX_PAYLOAD_BYTES + 1, 0x20), { qos: 1 })
      expect(await refused).toBe(true)
      // the header of a 30 MB PUBLISH and its first 64 kB: the broker must not wait for the rest
      const h = await gate()
      const cut = closed(h)
      const length = [
        0x80 | (30_000_000 & 0x7f),
        0x80 | ((30_000_000 >> 7) & 0x7f),
        0x80 | ((30_000_000 >> 14) & 0x7f),
        30_000_000 >> 21,
      ]
      h.stream.write(Buffer.concat([Buffer.from([0x30, ...length]), Buffer.alloc(65_536)]))
      expect(await cut).toBe(true)
      await new Promise((r) => setTimeout(r, 200))
      expect(got).toEqual([FLEET_MAX_PAYLOAD_BYTES])
      // and the broker still serves the others
      const again = await gate()
      await again.publishAsync('gates/gate-1/metrics', 'ok', { qos: 1 })
      await eventually(() => got.length === 2, 5_000, 20)
      await again.endAsync()
    } finally {
      await cloud.endAsync()
      await broker.stop()
    }
  })
})
