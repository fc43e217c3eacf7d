import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import mqtt from 'mqtt'
import { v4 as uuidv4 } from 'uuid'
import { afterEach, describe, expect, it } from 'vitest'
import { GateAgent } from '../../../agent/agent.js'
import { PushSource } from '../../../agent/ble/push-source.js'
import { systemClock } from '../../../agent/clock.js'
import { agentConfigSchema } from '../../../agent/config/schema.js'
import { EventWatch } from '../../../agent/report/gate-metrics.js'
import { MqttReporter, type ReporterCommands } from '../../../agent/report/mqtt-reporter.js'
import { openDatabase } from '../../../agent/store/db.js'
import {
  commandResponseSchema,
  eventPayloadSchema,
  fleetTopics,
  type GateMetrics,
  metricsPayloadSchema,
  signCommand,
  statusPayloadSchema,
} from '../../../shared/fleet.js'
import {
  freePort,
  MQTT_URL,
  reporterDeps,
  sampleGateMetrics,
  silentLog,
  tempDir,
} from '../../support/helpers.js'
import { eventually } from '../../support/process-helpers.js'

const SECRET = 'command-secret-for-tests-0123456789'
const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

async function setup(url = MQTT_URL) {
  const t = tempDir()
  const db = openDatabase(path.join(t.dir, 'agent.db'))
  const gateId = `t-${randomBytes(4).toString('hex')}`
  const calls: string[] = []
  const called = (name: string, result: unknown) => {
    calls.push(name)
    return result
  }
  const commands: ReporterCommands = {
    resync_roster: async () => called('resync_roster', { pulled: 0 }),
    sync_now: async () => called('sync_now', { state: 'idle' }),
    restart_scan: async () => called('restart_scan', { restarted: true }),
    set_log_level: async (p) => called(`set_log_level:${String(p['level'])}`, { level: p['level'] }),
    checkout: async (p) => called(`checkout:${String(p['token'])}`, { checkedOut: p['token'] }),
  }
  const reporter = new MqttReporter(
    reporterDeps(db, {
      url,
      gateId,
      intervalMs: 150,
      commandSecret: SECRET,
      metrics: () => sampleGateMetrics({ temperature_c: null }),
      commands,
    }),
  )
  cleanups.push(() => {
    db.close()
    t.cleanup()
  })
  cleanups.push(async () => {
    await reporter.stop()
    // leave no retained status of a test gate on the broker (the stop published "offline")
    const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 1_000 })
    await Promise.race([
      new Promise<void>((resolve) => {
        c.once('connect', () => {
          c.publish(`gates/${gateId}/status`, '', { retain: true, qos: 1 }, () => resolve())
        })
        c.once('error', () => resolve())
      }),
      new Promise((r) => setTimeout(r, 1_500)),
    ])
    c.end(true)
  })
  return { reporter, db, gateId, calls, topics: fleetTopics(gateId) }
}

async function watch(gateId: string, url = MQTT_URL) {
  const got: Array<{ topic: string; body: Record<string, unknown>; retain: boolean }> = []
  const sub = await mqtt.connectAsync(url)
  sub.on('message', (topic, payload, packet) => {
    try {
      got.push({ topic, body: JSON.parse(payload.toString()), retain: packet.retain })
    } catch {
      // the commands this test sends on purpose as garbage, and cleared retained messages
    }
  })
  await sub.subscribeAsync(`gates/${gateId}/#`, { qos: 1 })
  cleanups.push(async () => {
    await sub.publishAsync(`gates/${gateId}/status`, '', { retain: true }) // clear the retained status
    await sub.endAsync()
  })
  return { got, sub }
}

describe('MQTT reporter on a real Mosquitto', () => {
  it('publishes a retained online status, metrics with a session and sequence, and events', async () => {
    const { reporter, gateId, topics } = await setup()
    const { got } = await watch(gateId)
    reporter.start()
    await eventually(() => got.filter((m) => m.topic === topics.metrics).length >= 3, 8_000, 20)
    const status = statusPayloadSchema.parse(got.find((m) => m.topic === topics.status)?.body)
    expect(status).toMatchObject({ state: 'online', gateId, version: '0.1.0' })
    // sessions count up from the wall clock (s): a recreated database does not start again at 1
    expect(status.session).toBeGreaterThanOrEqual(Math.floor(Date.now() / 1000) - 60)
    // how often the gate is heard from, so the cloud can hold it to 1.5 keep-alives
    expect(status).toMatchObject({ keepaliveS: 30, metricsIntervalS: 0.15 })
    const ms = got.filter((m) => m.topic === topics.metrics).map((m) => metricsPayloadSchema.parse(m.body))
    expect(ms.every((m) => m.session === status.session)).toBe(true)
    const seqs = ms.map((m) => m.seq)
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b))
    expect(new Set(seqs).size).toBe(seqs.length)
    reporter.event('disk_low', { freeBytes: 1234 })
    await eventually(() => got.some((m) => m.topic === topics.events), 8_000, 20)
    expect(eventPayloadSchema.parse(got.find((m) => m.topic === topics.events)?.body)).toMatchObject({
      kind: 'disk_low',
      detail: { freeBytes: 1234 },
    })
    // events raised together (one check can raise several): every one is sent, none waits for the next
    reporter.event('backlog_growing', { pending: 1 })
    reporter.event('clock_unsynchronised', {})
    reporter.event('adapter_lost', { state: 'poweredOff' })
    await eventually(() => got.filter((m) => m.topic === topics.events).length === 4, 8_000, 20)
    // another client taking the client id a gate would have had (gate-<id>) does not knock it off
    const impostor = await mqtt.connectAsync(MQTT_URL, { clientId: `gate-${gateId}`, reconnectPeriod: 0 })
    await impostor.endAsync()
    await new Promise((r) => setTimeout(r, 300))
    expect(got.some((m) => m.topic === topics.status && m.body['state'] === 'offline')).toBe(false)
    expect(reporter.state).toMatch(/^connected/)
    // a late subscriber (the cloud restarting) still learns the gate is online: the status is retained
    const late = await watch(gateId)
    await eventually(() => late.got.some((m) => m.topic === topics.status), 8_000, 20)
    expect(late.got.find((m) => m.topic === topics.status)).toMatchObject({
      retain: true,
      body: { state: 'online' },
    })
  })

  it('the broker publishes the will when the connection is lost, and the next session says online again', async () => {
    const { reporter, gateId, topics } = await setup()
    const { got } = await watch(gateId)
    reporter.start()
    await eventually(
      () => got.some((m) => m.topic === topics.status && m.body['state'] === 'online'),
      8_000,
      20,
    )
    // the network drops without a DISCONNECT: the broker sends the will
    ;(reporter as unknown as { client: mqtt.MqttClient }).client.stream.destroy()
    await eventually(
      () => got.some((m) => m.topic === topics.status && m.body['state'] === 'offline'),
      8_000,
      20,
    )
    const will = got.find((m) => m.topic === topics.status && m.body['state'] === 'offline')?.body
    const first = got.find((m) => m.topic === topics.status && m.body['state'] === 'online')?.body['session']
    expect(will).toMatchObject({ reason: 'will', session: first })
    await eventually(
      () =>
        got.some(
          (m) =>
            m.topic === topics.status &&
            m.body['state'] === 'online' &&
            (m.body['session'] as number) > (first as number),
        ),
      8_000,
      20,
    )
    // a clean stop is not a lost connection
    await reporter.stop()
    await eventually(() => got.some((m) => m.body['reason'] === 'stopped'), 8_000, 20)
  })

  it('executes signed commands once, answers each on the response topic, and refuses the rest without crashing', async () => {
    const { reporter, gateId, calls, topics } = await setup()
    const { got, sub } = await watch(gateId)
    reporter.start()
    await eventually(() => got.some((m) => m.topic === topics.status), 8_000, 20)
    const cmd = (over: Record<string, unknown> = {}) =>
      signCommand(
        { v: 1, id: uuidv4(), ts: Date.now(), gateId, cmd: 'sync_now', params: {}, ...over } as Parameters<
          typeof signCommand
        >[0],
        SECRET,
      )
    const good = cmd()
    const level = cmd({ cmd: 'set_log_level', params: { level: 'debug' } })
    await sub.publishAsync(topics.cmd, JSON.stringify(good), { qos: 1 })
    await sub.publishAsync(topics.cmd, JSON.stringify(level), { qos: 1 })
    await sub.publishAsync(topics.cmd, JSON.stringify(good), { qos: 1 }) // replayed
    await sub.publishAsync(topics.cmd, JSON.stringify({ ...cmd(), sig: 'f'.repeat(64) }), { qos: 1 }) // forged
    await sub.publishAsync(topics.cmd, JSON.stringify(cmd({ ts: Date.now() - 3_600_000 })), { qos: 1 }) // stale
    await sub.publishAsync(topics.cmd, JSON.stringify(cmd({ gateId: 'someone-else' })), { qos: 1 })
    await sub.publishAsync(topics.cmd, 'not json at all', { qos: 1 })
    await sub.publishAsync(topics.cmd, JSON.stringify({ id: uuidv4(), cmd: 'format_disk' }), { qos: 1 })
    await eventually(() => got.filter((m) => m.topic === topics.cmdResponse).length >= 7, 8_000, 20)
    const answers = got
      .filter((m) => m.topic === topics.cmdResponse)
      .map((m) => commandResponseSchema.parse(m.body))
    expect(
      answers
        .filter((a) => a.ok)
        .map((a) => a.id)
        .sort(),
    ).toEqual([good.id, level.id].sort())
    expect(answers.filter((a) => !a.ok).map((a) => a.error)).toEqual(
      expect.arrayContaining([
        'already executed (replay)',
        'bad signature',
        'stale or future command (replay?)',
        expect.stringMatching(/^malformed/),
      ]),
    )
    expect(calls).toEqual(['sync_now', 'set_log_level:debug'])
    expect(reporter.stats.garbage).toBe(1)
    // still alive and reporting
    const before = got.length
    await eventually(() => got.length > before, 8_000, 20)
  })

  it('keeps events in SQLite while the broker is away and sends them when it comes', async () => {
    const port = await freePort()
    const url = `mqtt://127.0.0.1:${port}`
    const { reporter, db, gateId, topics } = await setup(url)
    reporter.start()
    reporter.event('adapter_lost', { state: 'poweredOff' })
    reporter.event('adapter_back', {})
    expect((db.prepare('SELECT count(*) AS n FROM fleet_events').get() as { n: number }).n).toBe(2)
    let broker: ChildProcess | null = spawn('mosquitto', ['-p', String(port)], { stdio: 'ignore' })
    cleanups.push(() => {
      broker?.kill('SIGKILL')
      broker = null
    })
    await new Promise((r) => setTimeout(r, 300))
    const { got } = await watch(gateId, url)
    await eventually(() => got.filter((m) => m.topic === topics.events).length === 2, 15_000, 20)
    expect(got.filter((m) => m.topic === topics.events).map((m) => m.body['kind'])).toEqual([
      'adapter_lost',
      'adapter_back',
    ])
    expect((db.prepare('SELECT count(*) AS n FROM fleet_events').get() as { n: number }).n).toBe(0)
  }, 30_000)
})

describe('the agent reports over MQTT', () => {
  it('runs the reporter with its status, real metrics and commands, and says offline when it stops', async () => {
    const t = tempDir()
    const gateId = `agent-${randomBytes(3).toString('hex')}`
    const { got, sub } = await watch(gateId)
    const source = new PushSource()
    const agent = new GateAgent({
      config: agentConfigSchema.parse({
        gateId,
        dataDir: t.dir,
        source: { kind: 'sim' },
        mqtt: { url: MQTT_URL, commandSecret: SECRET, metricsIntervalMs: 1_000 },
      }),
      clock: systemClock,
      log: silentLog,
      makeSource: () => source,
    })
    const topics = fleetTopics(gateId)
    try {
      await agent.start()
      const mfg = Buffer.concat([Buffer.from('ffffca11', 'hex'), Buffer.from('00000000deadbeef', 'hex')])
      for (let i = 0; i < 3; i++)
        source.push({
          address: 'c0:00:00:00:00:09',
          rssi: -50,
          manufacturerData: mfg,
          ts: systemClock.mono(),
        })
      await eventually(
        () =>
          got.some(
            (m) =>
              m.topic === topics.metrics && (m.body['metrics'] as GateMetrics).decisions_deny_total === 1,
          ),
        8_000,
        20,
      )
      expect(agent.status().mqtt.state).toMatch(/^connected \(session \d+\)$/)
      const m = got.filter((x) => x.topic === topics.metrics).pop()?.body as { metrics: GateMetrics }
      expect(m.metrics).toMatchObject({ adapter_state: 'poweredOn', buffer_pending: 1 })
      expect(m.metrics.rss_bytes).toBeGreaterThan(0)
      const c = signCommand(
        { v: 1, id: uuidv4(), ts: Date.now(), gateId, cmd: 'set_log_level', params: { level: 'debug' } },
        SECRET,
      )
      await sub.publishAsync(topics.cmd, JSON.stringify(c), { qos: 1 })
      await eventually(
        () => got.some((x) => x.topic === topics.cmdResponse && x.body['id'] === c.id),
        8_000,
        20,
      )
      expect(got.find((x) => x.topic === topics.cmdResponse && x.body['id'] === c.id)?.body).toMatchObject({
        ok: true,
        result: { level: 'debug' },
      })
    } finally {
      await agent.stop()
      t.cleanup()
    }
    await eventually(
      () => got.some((x) => x.topic === topics.status && x.body['reason'] === 'stopped'),
      8_000,
      20,
    )
  }, 20_000)
})

describe('gate events from successive metrics', () => {
  it('raises adapter lost and back, disk low, backlog growing, roster stale and an unsynchronised clock once each', () => {
    const w = new EventWatch({
      diskLowBytes: 5,
      backlogAgeS: 600,
      rosterStaleS: 900,
      maxClockOffsetMs: 2_000,
    })
    const m = (over: Partial<GateMetrics>): GateMetrics => sampleGateMetrics({ temperature_c: null, ...over })
    expect(w.check(m({}), 10)).toEqual([])
    expect(w.check(m({ adapter_state: 'poweredOff' }), 10).map((e) => e.kind)).toEqual(['adapter_lost'])
    expect(w.check(m({ adapter_state: 'poweredOff' }), 10)).toEqual([])
    expect(w.check(m({}), 10).map((e) => e.kind)).toEqual(['adapter_back'])
    expect(w.check(m({ disk_free_bytes: 1 }), 10).map((e) => e.kind)).toEqual(['disk_low'])
    expect(w.check(m({ disk_free_bytes: 1 }), 10)).toEqual([])
    expect(
      w.check(m({ buffer_pending: 50, buffer_oldest_pending_age_s: 700 }), 10).map((e) => e.kind),
    ).toEqual(['backlog_growing'])
    expect(w.check(m({ buffer_pending: 80, buffer_oldest_pending_age_s: 760 }), 10)).toEqual([])
    expect(w.check(m({}), 1000).map((e) => e.kind)).toEqual(['roster_stale'])
    expect(w.check(m({}), 1000)).toEqual([])
    expect(w.check(m({ clock_offset_ms: -3_500 }), 10).map((e) => e.kind)).toEqual(['clock_unsynchronised'])
    expect(w.check(m({ clock_offset_ms: -3_600 }), 10)).toEqual([])
  })
})
