import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage } from 'node:http'
import https from 'node:https'
import path from 'node:path'
import mqtt from 'mqtt'
import type pg from 'pg'
import { pino } from 'pino'
import { Registry } from 'prom-client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadCloudConfig } from '../../../cloud/config.js'
import { createPool } from '../../../cloud/db/pool.js'
import { MqttSink, WebhookSink } from '../../../cloud/monitor/alert-sinks.js'
import { AlertEngine, type AlertEvent, type AlertRule, SEED_RULES } from '../../../cloud/monitor/alerts.js'
import {
  Autoscaler,
  autoscaleDefaults,
  hpaDesired,
  KubernetesTarget,
  RecommendTarget,
} from '../../../cloud/monitor/autoscaler.js'
import { PerfMonitor, type PerfSnapshot } from '../../../cloud/monitor/perf.js'
import { loadRules, startRecovery } from '../../../cloud/monitor/recovery.js'
import { PlanAdvisor } from '../../../cloud/monitor/suggestions.js'
import { isGateError } from '../../../shared/errors.js'
import { silentLog, tempDir } from '../../support/helpers.js'
import { tempDatabase } from '../../support/pg-helpers.js'

const MQTT_URL = process.env['MQTT_URL'] ?? 'mqtt://127.0.0.1:1883'

describe('autoscaler: the HPA algorithm', () => {
  it('computes ceil(current x metric / target) with a 10 % tolerance, within min 2 and max 10', () => {
    const p = autoscaleDefaults // target 70
    expect(hpaDesired(4, 70, p)).toBe(4)
    expect(hpaDesired(4, 76, p)).toBe(4) // 8.6 % over: within the tolerance
    expect(hpaDesired(4, 80, p)).toBe(5) // ceil(4 x 80/70 = 4.57)
    expect(hpaDesired(4, 140, p)).toBe(8)
    expect(hpaDesired(8, 200, p)).toBe(10) // capped
    expect(hpaDesired(4, 10, p)).toBe(2) // floored
    expect(hpaDesired(3, 30, p)).toBe(2)
    // a minimum above the maximum would pin the deployment at the maximum whatever the load: refused
    expect(() => loadCloudConfig({ AUTOSCALE_MIN: '8', AUTOSCALE_MAX: '3' })).toThrow(
      /AUTOSCALE_MIN must not be above AUTOSCALE_MAX/,
    )
    // and the deployment examples' placeholders are no secrets: refused, every one named
    expect(() =>
      loadCloudConfig({
        OPS_TOKEN: 'CHANGE-ME-at-least-16-characters',
        FLEET_COMMAND_SECRET: 'change-me-at-least-16-characters',
        MQTT_PASSWORD: 'change-me',
      }),
    ).toThrow(/opsToken: is the example's placeholder[\s\S]*mqttPassword: is the[\s\S]*commandSecret: is the/)
  })

  it('scales up at once but down only after the stabilisation window (no flapping)', async () => {
    let now = 0
    let replicas = 4
    const target = {
      kind: 'kubernetes' as const,
      current: async () => replicas,
      scale: async (n: number) => {
        replicas = n
      },
    }
    const a = new Autoscaler(autoscaleDefaults, target, silentLog, new Registry(), () => now)
    expect((await a.evaluate(140)).desired).toBe(8)
    expect(replicas).toBe(8)
    // load drops: the formula says 2, the window still remembers 8
    now += 30_000
    expect(await a.evaluate(15)).toMatchObject({ recommended: 2, desired: 8 })
    now += 30_000
    expect(await a.evaluate(150)).toMatchObject({ desired: 10 })
    for (let i = 0; i < 10; i++) {
      now += 30_000
      await a.evaluate(15)
    }
    expect(replicas).toBe(10) // a burst two minutes ago keeps the nodes
    for (let i = 0; i < 12; i++) {
      now += 30_000
      await a.evaluate(15)
    }
    expect(replicas).toBe(2) // five quiet minutes: down to the minimum
    // recommend mode never changes anything
    const r = new Autoscaler(autoscaleDefaults, new RecommendTarget(3), silentLog, new Registry(), () => now)
    expect(await r.evaluate(200)).toMatchObject({ current: 3, desired: 9 })
    expect(r.mode).toBe('recommend')
  })
})

const snap = (over: { avgMs?: number; slowQueries?: number; memoryUsed?: number }): PerfSnapshot =>
  ({
    windowSeconds: 300,
    generatedAt: '',
    requests: {
      count: 10,
      errors: 0,
      rate: 0,
      errorRate: 0,
      avgMs: over.avgMs ?? 10,
      p50Ms: 0,
      p95Ms: 0,
      p99Ms: 0,
      maxMs: 0,
    },
    routes: [],
    slowRequests: 0,
    db: [],
    dbOverall: {
      count: 0,
      errors: 0,
      rate: 0,
      errorRate: 0,
      avgMs: 0,
      p50Ms: 0,
      p95Ms: 0,
      p99Ms: 0,
      maxMs: 0,
    },
    slowQueries: over.slowQueries ?? 0,
    cache: {
      l1: { hits: 0, misses: 0, stale: 0, hitRate: null },
      l2: { hits: 0, misses: 0, stale: 0, hitRate: null },
      overallHitRate: null,
    },
    system: {
      now:
        over.memoryUsed === undefined
          ? null
          : ({ memoryUsed: over.memoryUsed } as PerfSnapshot['system']['now']),
      cpuPercentAvg: 0,
      memoryUsedMax: 0,
      eventLoopLagP99MsMax: 0,
      eluAvg: 0,
    },
  }) as PerfSnapshot

describe('alert engine', () => {
  it('fires after the duration, once, holds through the hysteresis band, resolves, and runs the action', async () => {
    let now = 0
    const recorded: AlertEvent[] = []
    const delivered: AlertEvent[] = []
    let scaled = 0
    // the seed's first rule: average response time over 2 s for 60 s, resolving under 1.5 s
    const rule = SEED_RULES.find((r) => r.name === 'SlowResponses') as AlertRule
    const e = new AlertEngine([rule], {
      sinks: [{ name: 'test', deliver: async (x) => void delivered.push(x) }],
      actions: { AUTO_SCALE: async () => `scaled ${++scaled}` },
      record: async (x) => void recorded.push(x),
      log: silentLog,
      registry: new Registry(),
      now: () => now,
    })
    expect(await e.evaluate(snap({ avgMs: 2500 }))).toEqual([]) // pending
    now += 30_000
    expect(await e.evaluate(snap({ avgMs: 2500 }))).toEqual([])
    now += 31_000
    const fired = await e.evaluate(snap({ avgMs: 2600 }))
    expect(fired).toEqual([
      expect.objectContaining({ rule: 'SlowResponses', state: 'firing', actionResult: 'scaled 1' }),
    ])
    now += 10_000
    expect(await e.evaluate(snap({ avgMs: 2600 }))).toEqual([]) // still firing: not again
    expect(await e.evaluate(snap({ avgMs: 1800 }))).toEqual([]) // under the threshold, above resolveAt
    expect(e.firing()).toEqual([expect.objectContaining({ rule: 'SlowResponses' })])
    expect(await e.evaluate(snap({ avgMs: 1200 }))).toEqual([expect.objectContaining({ state: 'resolved' })])
    // a blip shorter than the duration never fires
    await e.evaluate(snap({ avgMs: 5000 }))
    now += 10_000
    await e.evaluate(snap({ avgMs: 100 }))
    now += 60_000
    expect(await e.evaluate(snap({ avgMs: 5000 }))).toEqual([])
    expect(scaled).toBe(1)
    expect(recorded.map((x) => x.state)).toEqual(['firing', 'resolved'])
    expect(delivered.map((x) => x.state)).toEqual(['firing', 'resolved'])
  })

  it('delivers to an Alertmanager-compatible webhook and to an MQTT topic', async () => {
    const bodies: unknown[] = []
    const server = createServer((req: IncomingMessage, res) => {
      let b = ''
      req.on('data', (c) => {
        b += c
      })
      req.on('end', () => {
        bodies.push({ url: req.url, body: JSON.parse(b) })
        res.writeHead(200).end()
      })
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const port = (server.address() as { port: number }).port
    const sub = await mqtt.connectAsync(MQTT_URL)
    const topic = `test/alerts/${process.pid}/${Date.now()}`
    const got: string[] = []
    sub.on('message', (_t, m) => got.push(m.toString()))
    await sub.subscribeAsync(topic, { qos: 1 })
    const pub = await mqtt.connectAsync(MQTT_URL)
    try {
      const e = new AlertEngine(
        [
          {
            name: 'SlowQueries',
            metric: 'db.slowQueries',
            op: '>',
            threshold: 10,
            forSeconds: 0,
            severity: 'critical',
          },
        ],
        {
          sinks: [
            new WebhookSink(`http://127.0.0.1:${port}/api/v2/alerts`, 'node-1'),
            new MqttSink(async (t, p) => void (await pub.publishAsync(t, p, { qos: 1 })), topic, 'node-1'),
          ],
          actions: {},
          record: async () => {},
          log: silentLog,
          registry: new Registry(),
        },
      )
      await e.evaluate(snap({ slowQueries: 12 }))
      await e.evaluate(snap({ slowQueries: 0 }))
      const deadline = Date.now() + 3_000
      while (got.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
      expect(bodies).toHaveLength(2)
      const [firing, resolved] = bodies as Array<{ url: string; body: Array<Record<string, unknown>> }>
      expect(firing?.url).toBe('/api/v2/alerts')
      expect(firing?.body[0]).toMatchObject({
        labels: { alertname: 'SlowQueries', severity: 'critical', service: 'gate-cloud', node: 'node-1' },
        annotations: { summary: 'db.slowQueries > 10' },
      })
      expect(firing?.body[0]).not.toHaveProperty('endsAt')
      expect(resolved?.body[0]).toHaveProperty('endsAt')
      expect(got.map((g) => JSON.parse(g).state)).toEqual(['firing', 'resolved'])
    } finally {
      server.close()
      await sub.endAsync()
      await pub.endAsync()
    }
  })
})

describe('alert webhook with credentials in its URL', () => {
  it('sends user:password@ as an Authorization header, and never logs them', async () => {
    const got: Array<{ url?: string; authorization?: string }> = []
    const server = createServer((req: IncomingMessage, res) => {
      got.push({ url: req.url, authorization: req.headers.authorization })
      req.resume().on('end', () => res.writeHead(200).end())
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const port = (server.address() as { port: number }).port
    const lines: string[] = []
    const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(l) })
    try {
      const e = new AlertEngine(
        [
          {
            name: 'Slow',
            metric: 'db.slowQueries',
            op: '>',
            threshold: 10,
            forSeconds: 0,
            severity: 'critical',
          },
        ],
        {
          sinks: [new WebhookSink(`http://alerts:s3cr%40t-pw@127.0.0.1:${port}/api/v2/alerts`, 'node-1')],
          actions: {},
          record: async () => {},
          log,
          registry: new Registry(),
        },
      )
      await e.evaluate(snap({ slowQueries: 12 }))
      expect(got).toEqual([
        {
          url: '/api/v2/alerts',
          authorization: `Basic ${Buffer.from('alerts:s3cr@t-pw').toString('base64')}`,
        },
      ])
      expect(lines.length).toBeGreaterThan(0)
      expect(lines.filter((l) => /s3cr|alerts:/.test(l))).toEqual([])
    } finally {
      server.close()
    }
  })
})

describe('recovery actions on a real Postgres', () => {
  let db: Awaited<ReturnType<typeof tempDatabase>>
  let pool: pg.Pool
  const t = tempDir()
  beforeAll(async () => {
    db = await tempDatabase()
    pool = createPool(loadCloudConfig({ DATABASE_URL: db.url }))
  })
  afterAll(async () => {
    await pool.end()
    await db.drop()
    t.cleanup()
  })

  it('refuses a bad rules file with every problem named', () => {
    const f = path.join(t.dir, 'bad.json')
    writeFileSync(
      f,
      JSON.stringify([{ name: 'x y', metric: 'nope', op: '>', threshold: 'high', severity: 'loud' }]),
    )
    try {
      loadRules(f)
      expect.unreachable()
    } catch (err) {
      expect(isGateError(err) && err.code).toBe('E_CONFIG_INVALID')
      expect((err as Error).message).toMatch(/0\.name[\s\S]*0\.metric[\s\S]*0\.threshold[\s\S]*0\.severity/)
    }
    expect(loadRules(undefined).map((r) => r.name)).toEqual(['SlowResponses', 'SlowQueries', 'MemoryHigh'])
  })

  it('RESTART_SERVICE restarts once, records it, and refuses to restart again within the interval', async () => {
    const rules = path.join(t.dir, 'rules.json')
    writeFileSync(
      rules,
      JSON.stringify([
        {
          name: 'AlwaysRestart',
          metric: 'http.slowRequests',
          op: '>',
          threshold: -1,
          severity: 'critical',
          action: 'RESTART_SERVICE',
        },
        {
          name: 'Optimize',
          metric: 'http.slowRequests',
          op: '>',
          threshold: -1,
          severity: 'critical',
          action: 'OPTIMIZE_QUERIES',
        },
      ]),
    )
    const registry = new Registry()
    const perf = new PerfMonitor({
      slowRequestMs: 1000,
      slowQueryMs: 500,
      windowSeconds: 300,
      log: silentLog,
      registry,
    })
    const restarts: string[] = []
    const make = (minUptime: number) =>
      startRecovery({
        config: loadCloudConfig({
          DATABASE_URL: db.url,
          NODE_NAME: 'node-t',
          ALERT_RULES_FILE: rules,
          RESTART_MIN_UPTIME_MS: String(minUptime),
        }),
        pool,
        perf,
        advisor: new PlanAdvisor(pool),
        registry: new Registry(),
        log: silentLog,
        requestRestart: (reason) => restarts.push(reason),
      })
    // too young to restart
    const young = await make(3_600_000)
    const e0 = await young.engine.evaluate(perf.snapshot())
    expect(e0.find((x) => x.rule === 'AlwaysRestart')?.actionResult).toMatch(/^refused: up/)
    expect(e0.find((x) => x.rule === 'Optimize')?.actionResult).toMatch(/^analyzed 5 tables/)
    await young.stop()
    const first = await make(0)
    const e1 = await first.engine.evaluate(perf.snapshot())
    expect(e1.find((x) => x.rule === 'AlwaysRestart')?.actionResult).toBe('restarting')
    await new Promise((r) => setTimeout(r, 1_200))
    expect(restarts).toEqual(['alert AlwaysRestart'])
    await first.stop()
    // "the next process": the record in alert_events stops a loop
    const second = await make(0)
    const e2 = await second.engine.evaluate(perf.snapshot())
    expect(e2.find((x) => x.rule === 'AlwaysRestart')?.actionResult).toMatch(
      /^refused: this node restarted itself/,
    )
    await second.stop()
    const rows = await pool.query(
      `SELECT rule, action, action_result FROM alert_events WHERE node = 'node-t' ORDER BY id`,
    )
    expect(
      rows.rows.filter((r) => r.action === 'RESTART_SERVICE').map((r) => r.action_result.split(':')[0]),
    ).toEqual(['refused', 'restarting', 'refused'])
  }, 20_000)
})

describe('autoscaler on the Kubernetes API (a local HTTPS stand-in for the scale subresource)', () => {
  it('reads and patches deployments/NAME/scale with the service account token, trusting only its CA', async () => {
    const t = tempDir()
    try {
      const key = path.join(t.dir, 'key.pem')
      const crt = path.join(t.dir, 'ca.crt')
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'rsa:2048',
          '-nodes',
          '-days',
          '1',
          '-subj',
          '/CN=127.0.0.1',
          '-addext',
          'subjectAltName=IP:127.0.0.1',
          '-keyout',
          key,
          '-out',
          crt,
        ],
        { stdio: 'ignore' },
      )
      writeFileSync(path.join(t.dir, 'token'), 'sa-token-123\n')
      writeFileSync(path.join(t.dir, 'namespace'), 'events\n')
      let replicas = 3
      const calls: string[] = []
      const server = https.createServer({ key: readFileSync(key), cert: readFileSync(crt) }, (req, res) => {
        calls.push(
          `${req.method} ${req.url} ${req.headers.authorization} ${req.headers['content-type'] ?? ''}`,
        )
        let body = ''
        req.on('data', (c) => {
          body += c
        })
        req.on('end', () => {
          if (req.method === 'PATCH') replicas = JSON.parse(body).spec.replicas
          res.writeHead(200, { 'content-type': 'application/json' })
          res.end(JSON.stringify({ kind: 'Scale', spec: { replicas } }))
        })
      })
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
      const port = (server.address() as { port: number }).port
      try {
        const target = new KubernetesTarget('gate-cloud', t.dir, {
          KUBERNETES_SERVICE_HOST: '127.0.0.1',
          KUBERNETES_SERVICE_PORT: String(port),
        })
        const a = new Autoscaler(autoscaleDefaults, target, silentLog, new Registry())
        expect(await a.evaluate(140)).toMatchObject({ current: 3, desired: 6 })
        expect(replicas).toBe(6)
        expect(calls).toEqual([
          'GET /apis/apps/v1/namespaces/events/deployments/gate-cloud/scale Bearer sa-token-123 ',
          'PATCH /apis/apps/v1/namespaces/events/deployments/gate-cloud/scale Bearer sa-token-123 application/merge-patch+json',
        ])
        expect(() => new KubernetesTarget('Bad_Name', t.dir)).toThrow(/bad deployment name/)
      } finally {
        server.close()
      }
    } finally {
      t.cleanup()
    }
  })
})
