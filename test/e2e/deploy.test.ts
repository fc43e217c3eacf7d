import { execFile, execFileSync, spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseAllDocuments } from 'yaml'
import { CLOUD_ENV } from '../../cloud/config.js'
import { FLEET_MAX_PAYLOAD_BYTES } from '../../shared/mqtt-limits.js'
import { freePort, tempDir } from '../support/helpers.js'
import { tempDatabase } from '../support/pg-helpers.js'
import { cleanEnv, eventually } from '../support/process-helpers.js'

const DEPLOY = path.resolve(import.meta.dirname, '..', '..', 'deploy')
const has = (cmd: string) => {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/**
 * The broker configuration of deploy/mosquitto, run by the real Mosquitto: only the listener's port
 * and the file locations are changed for the test (the compose file mounts them at /mosquitto).
 */
describe('deploy/mosquitto: per-gate accounts and the ACL, on a real Mosquitto', () => {
  const tmp = tempDir()
  let port = 0
  let broker: ReturnType<typeof spawn> | null = null
  let brokerLog = ''
  const pw = { 'gate-1': 'pw-gate-1-secret', 'gate-2': 'pw-gate-2-secret', 'gate-cloud': 'pw-cloud-secret' }
  const connect = (user: string, password?: string) =>
    mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
      username: user,
      password: password ?? pw[user as keyof typeof pw],
      reconnectPeriod: 0,
      connectTimeout: 3_000,
    })

  beforeAll(async () => {
    port = await freePort()
    const conf = readFileSync(path.join(DEPLOY, 'mosquitto', 'mosquitto.conf'), 'utf8')
      .replace('/mosquitto/config/passwd', path.join(tmp.dir, 'passwd'))
      .replace('/mosquitto/config/acl', path.join(DEPLOY, 'mosquitto', 'acl'))
      .replace('/mosquitto/data/', `${path.join(tmp.dir, 'data')}/`)
      .replace(/^listener 1883$/m, `listener ${port} 127.0.0.1`)
    expect(conf).toContain(`listener ${port} 127.0.0.1`)
    mkdirSync(path.join(tmp.dir, 'data'))
    writeFileSync(path.join(tmp.dir, 'mosquitto.conf'), conf)
    for (const [user, password] of Object.entries(pw)) {
      execFileSync(path.join(DEPLOY, 'mosquitto', 'add-account.sh'), [path.join(tmp.dir, 'passwd'), user], {
        env: { ...process.env, PASSWORD: password, ...(user === 'gate-cloud' ? { CLOUD: '1' } : {}) },
      })
    }
    expect(readFileSync(path.join(tmp.dir, 'passwd'), 'utf8')).not.toContain('pw-gate-1-secret') // hashes only
    // started as root, Mosquitto drops to its own user, which must read the files (as in the container)
    if (process.getuid?.() === 0) execFileSync('chown', ['-R', 'mosquitto', tmp.dir])
    broker = spawn('mosquitto', ['-c', path.join(tmp.dir, 'mosquitto.conf')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    broker.stdout?.on('data', (b: Buffer) => {
      brokerLog += b.toString()
    })
    broker.stderr?.on('data', (b: Buffer) => {
      brokerLog += b.toString()
    })
    await eventually(async () => {
      try {
        const c = await connect('gate-cloud')
        await c.endAsync()
        return true
      } catch {
        return false
      }
    }, 10_000)
  }, 30_000)
  afterAll(() => {
    broker?.kill('SIGTERM')
    tmp.cleanup()
  })

  it('add-account.sh never puts the password on a command line', () => {
    // a mosquitto_passwd that records the arguments it was given
    const bin = path.join(tmp.dir, 'bin')
    mkdirSync(bin, { recursive: true })
    writeFileSync(
      path.join(bin, 'mosquitto_passwd'),
      `#!/bin/sh\necho "$@" >> ${path.join(tmp.dir, 'argv')}\n`,
      {
        mode: 0o755,
      },
    )
    execFileSync(
      path.join(DEPLOY, 'mosquitto', 'add-account.sh'),
      [path.join(tmp.dir, 'passwd-argv'), 'gate-7'],
      {
        env: { ...process.env, PATH: `${bin}:${process.env['PATH']}`, PASSWORD: 'pw-on-argv-secret' },
      },
    )
    const argv = readFileSync(path.join(tmp.dir, 'argv'), 'utf8')
    expect(argv).toMatch(/^-U /)
    expect(argv).not.toContain('pw-on-argv-secret')
  })

  it('refuses anonymous clients, wrong passwords and made-up accounts', async () => {
    await expect(
      mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, connectTimeout: 3_000 }),
    ).rejects.toThrow(/Not authorized|Connection refused/)
    await expect(connect('gate-1', 'wrong')).rejects.toThrow()
    await expect(connect('gate-9', 'anything')).rejects.toThrow()
    expect(brokerLog).not.toContain('pw-gate-1-secret')
  })

  it('lets a gate publish only its own topics and read only its own commands; the cloud sees the fleet', async () => {
    const cloud = await connect('gate-cloud')
    const seen: string[] = []
    cloud.on('message', (t) => seen.push(t))
    await cloud.subscribeAsync(['gates/+/status', '$share/gate-cloud/gates/+/metrics', 'gates/+/cmd'])
    const g1 = await connect('gate-1')
    const g2 = await connect('gate-2')
    const g1Got: string[] = []
    const g2Got: string[] = []
    g1.on('message', (t) => g1Got.push(t))
    g2.on('message', (t) => g2Got.push(t))
    await g1.subscribeAsync('gates/gate-1/cmd')
    await g2.subscribeAsync('gates/gate-1/cmd').catch(() => {}) // another gate's commands

    await g1.publishAsync('gates/gate-1/status', 'online', { qos: 1 })
    await g1.publishAsync('gates/gate-1/metrics', '{}', { qos: 1 })
    await g1.publishAsync('gates/gate-2/status', 'forged', { qos: 1 }) // another gate's status
    await g1.publishAsync('gates/gate-1/cmd', 'forged', { qos: 1 }) // a command to itself
    await cloud.publishAsync('gates/gate-1/cmd', 'from the cloud', { qos: 1 })
    await eventually(() => g1Got.length === 1 && seen.includes('gates/gate-1/metrics'), 5_000)
    await new Promise((r) => setTimeout(r, 300))
    expect(seen.sort()).toEqual(['gates/gate-1/cmd', 'gates/gate-1/metrics', 'gates/gate-1/status'])
    expect(g1Got).toEqual(['gates/gate-1/cmd'])
    expect(g2Got).toEqual([])
    for (const c of [g1, g2, cloud]) await c.endAsync()
  })

  it('forwards no payload over 64 KiB (the sender stays connected) and disconnects a client that sends a packet over 128 KiB', async () => {
    const cloud = await connect('gate-cloud')
    const got: number[] = []
    cloud.on('message', (_t, p) => got.push(p.length))
    await cloud.subscribeAsync('gates/+/metrics', { qos: 1 })
    const g1 = await connect('gate-1')
    // the largest fleet message is about 1.1 kB; the limit itself passes
    await g1.publishAsync('gates/gate-1/metrics', Buffer.alloc(FLEET_MAX_PAYLOAD_BYTES, 0x20), { qos: 1 })
    await g1.publishAsync('gates/gate-1/metrics', Buffer.alloc(FLEET_MAX_PAYLOAD_BYTES + 1, 0x20), { qos: 1 })
    await g1.publishAsync('gates/gate-1/metrics', Buffer.alloc(1_100, 0x20), { qos: 1 })
    await eventually(() => got.length >= 2, 5_000)
    expect(got).toEqual([FLEET_MAX_PAYLOAD_BYTES, 1_100])
    expect(g1.connected).toBe(true)
    const closed = new Promise<boolean>((r) => {
      g1.once('close', () => r(true))
      setTimeout(() => r(false), 5_000).unref()
    })
    g1.publish('gates/gate-1/metrics', Buffer.alloc(1_000_000, 0x20), { qos: 0 })
    expect(await closed).toBe(true)
    await new Promise((r) => setTimeout(r, 300))
    expect(got).toHaveLength(2)
    await g1.endAsync(true)
    await cloud.endAsync()
  })
})

describe('deploy/systemd: the agent unit', () => {
  const unit = readFileSync(path.join(DEPLOY, 'systemd', 'gate-agent.service'), 'utf8')

  it('runs as its own user with the BLE capabilities, the watchdog, restarts and hardening', () => {
    for (const line of [
      'Type=notify',
      'User=gate',
      'AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN',
      'CapabilityBoundingSet=CAP_NET_RAW CAP_NET_ADMIN',
      'NoNewPrivileges=yes',
      'Restart=always',
      'WatchdogSec=30',
      'Nice=-10',
      'ExecStartPost=-+/usr/bin/chrt --rr --reset-on-fork --pid 5 $MAINPID',
      'ProtectSystem=strict',
      'ProtectHome=yes',
      'PrivateTmp=yes',
    ])
      expect(unit).toContain(line)
  })

  it.runIf(has('systemd-analyze'))('passes systemd-analyze verify without a warning', async () => {
    const r = await new Promise<{ code: number; out: string }>((resolve) =>
      execFile(
        'systemd-analyze',
        ['verify', path.join(DEPLOY, 'systemd', 'gate-agent.service')],
        (err, stdout, stderr) => resolve({ code: err ? 1 : 0, out: stdout + stderr }),
      ),
    )
    expect(r.out.split('\n').filter((l) => l.includes('gate-agent.service'))).toEqual([])
    expect(r.code).toBe(0)
  })

  it('has an install script for Raspberry Pi OS that installs this unit', () => {
    const script = path.join(DEPLOY, 'pi', 'install.sh')
    expect(existsSync(script)).toBe(true)
    expect(readFileSync(script, 'utf8')).toContain('deploy/systemd/gate-agent.service')
    // and gatectl on the PATH, with the configuration and data directory the unit gives the agent
    expect(readFileSync(script, 'utf8')).toContain('install -m 0755 deploy/pi/gatectl /usr/local/bin/gatectl')
    const unit = readFileSync(path.join(DEPLOY, 'systemd', 'gate-agent.service'), 'utf8')
    const wrapper = readFileSync(path.join(DEPLOY, 'pi', 'gatectl'), 'utf8')
    for (const v of ['GATE_CONFIG', 'GATE_DATA_DIR']) {
      const value = new RegExp(`^Environment=${v}=(.+)$`, 'm').exec(unit)?.[1]
      expect(value, v).toBeDefined()
      expect(wrapper).toContain(`: "\${${v}:=${value}}"`)
    }
  })

  it("runs the installed gatectl wrapper's environment: the unit's configuration unless told otherwise", () => {
    const wrapper = path.join(DEPLOY, 'pi', 'gatectl')
    // the wrapper's environment, without running node at /usr/bin/node: `exec` replaced by `env`
    const script = readFileSync(wrapper, 'utf8').replace(/^exec .*$/m, 'env')
    const run = (env: Record<string, string>) =>
      spawnSync('sh', ['-c', script], { env: { PATH: process.env['PATH'] ?? '', ...env } }).stdout.toString()
    expect(run({})).toContain('GATE_CONFIG=/etc/gate-agent/agent.json')
    expect(run({})).toContain('GATE_DATA_DIR=/var/lib/gate-agent')
    expect(run({ GATE_DATA_DIR: '/tmp/elsewhere' })).toContain('GATE_DATA_DIR=/tmp/elsewhere')
  })
})

const readYaml = (rel: string): unknown[] =>
  parseAllDocuments(readFileSync(path.join(DEPLOY, rel), 'utf8'), { merge: true }).map((d) => {
    if (d.errors.length > 0) throw new Error(`${rel}: ${d.errors[0]?.message}`)
    return d.toJS() as unknown
  })
// biome-ignore lint/suspicious/noExplicitAny: walking parsed manifests
type Any = any
const cloudEnv = new Set(CLOUD_ENV.map((e) => e.env))

describe('deploy/k8s: the manifests hang together', () => {
  const docs = [
    'gate-cloud.yaml',
    'configmap.yaml',
    'examples/secret.example.yaml',
    'migrate-job.yaml',
  ].flatMap((f) => readYaml(`k8s/${f}`)) as Any[]
  const byKind = (k: string) => docs.filter((d) => d.kind === k)
  const one = (k: string) => {
    const all = byKind(k)
    expect(all, k).toHaveLength(1)
    return all[0]
  }

  it('has the Deployment, Service, HPA, PodDisruptionBudget, ConfigMap, Secret and migration Job', () => {
    const deployment = one('Deployment')
    const pod = deployment.spec.template
    const labels = pod.metadata.labels
    expect(deployment.spec.selector.matchLabels).toEqual(labels)
    expect(one('Service').spec.selector).toEqual(labels)
    expect(one('PodDisruptionBudget').spec.selector.matchLabels).toEqual(labels)
    expect(one('HorizontalPodAutoscaler').spec.scaleTargetRef).toMatchObject({
      kind: 'Deployment',
      name: deployment.metadata.name,
    })
    const job = one('Job')
    const app = pod.spec.containers[0]
    expect(job.spec.template.spec.containers[0].image).toBe(app.image)
    expect(job.spec.template.spec.containers[0].args).toEqual(['migrate'])

    // every reference resolves: the ConfigMap, every Secret key
    const cm = one('ConfigMap')
    expect(app.envFrom[0].configMapRef.name).toBe(cm.metadata.name)
    const secret = one('Secret')
    const refs = [app, job.spec.template.spec.containers[0]].flatMap((c: Any) =>
      (c.env ?? []).map((e: Any) => e.valueFrom?.secretKeyRef).filter(Boolean),
    )
    expect(refs.length).toBeGreaterThan(3)
    for (const r of refs) {
      expect(r.name).toBe(secret.metadata.name)
      expect(Object.keys(secret.stringData)).toContain(r.key)
    }
    // every variable set is one gate-cloud reads (a typo would be silently ignored otherwise)
    const set = [...Object.keys(cm.data), ...app.env.map((e: Any) => e.name)]
    for (const name of set) expect(cloudEnv, name).toContain(name)
  })
})

describe('deploy/compose: the cloud on one host', () => {
  const compose = readYaml('compose/compose.yaml')[0] as Any

  it('runs Postgres, Redis, Mosquitto with the checked-in config, a migration, two nodes and the router', () => {
    const s = compose.services
    for (const name of ['postgres', 'redis', 'mosquitto', 'migrate', 'cloud-1', 'cloud-2', 'router'])
      expect(Object.keys(s)).toContain(name)
    for (const v of s.mosquitto.volumes as string[]) {
      const [src] = v.split(':')
      if (src?.startsWith('../')) expect(existsSync(path.join(DEPLOY, 'compose', src)), src).toBe(true)
    }
    expect(s.router.command.join(' ')).toContain('http://cloud-1:8080,http://cloud-2:8080')
    for (const node of ['cloud-1', 'cloud-2']) {
      expect(s[node].depends_on.migrate.condition).toBe('service_completed_successfully')
      for (const name of Object.keys(s[node].environment)) expect(cloudEnv, name).toContain(name)
    }
    const dockerfile = path.join(DEPLOY, 'docker', 'Dockerfile')
    expect(existsSync(dockerfile)).toBe(true)
    for (const m of readFileSync(dockerfile, 'utf8').matchAll(/^COPY (?!--from)(\S+)/gm)) {
      expect(existsSync(path.join(DEPLOY, '..', m[1] as string)), m[1]).toBe(true)
    }
  })
})

/** The metric names a PromQL expression reads (labels, functions and keywords left out). */
function metricNames(expr: string): string[] {
  const functions = new Set([
    'sum',
    'max',
    'min',
    'avg',
    'rate',
    'irate',
    'increase',
    'histogram_quantile',
    'clamp_min',
    'clamp_max',
    'by',
    'without',
    'and',
    'or',
    'unless',
    'on',
    'up',
  ])
  const bare = expr
    .replace(/\{[^}]*\}/g, '')
    .replace(/\b(by|without)\s*\([^)]*\)/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/(?<![A-Za-z0-9_])\d[\d.]*(e[+-]?\d+)?/g, '') // numbers: 1e6, 0.99
  return [...bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)].map((m) => m[0]).filter((t) => !functions.has(t))
}

describe('deploy/prometheus and deploy/grafana read metrics gate-cloud exports', () => {
  let exposition = ''
  beforeAll(async () => {
    const db = await tempDatabase()
    const port = await freePort()
    const serve = spawn(process.execPath, [path.join(DEPLOY, '..', 'bin', 'gate-cloud.js'), 'serve'], {
      env: cleanEnv({
        DATABASE_URL: db.url,
        PORT: String(port),
        LOG_LEVEL: 'error',
        REDIS_URL: process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379',
        MQTT_URL: process.env['MQTT_URL'] ?? 'mqtt://127.0.0.1:1883',
        FLEET_SHARE_GROUP: `deploy${process.pid}`,
      }),
      stdio: 'ignore',
    })
    try {
      await eventually(
        async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => null))?.ok,
        30_000,
      )
      exposition = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
    } finally {
      serve.kill('SIGTERM')
      await new Promise((r) => serve.once('exit', r))
      await db.drop()
    }
  }, 60_000)

  const exported = () => {
    const names = new Set<string>()
    for (const m of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      names.add(m[1] as string)
      if (m[2] === 'histogram') for (const x of ['_bucket', '_count', '_sum']) names.add(`${m[1]}${x}`)
    }
    return names
  }

  it('every alert rule is valid YAML and reads exported metrics', () => {
    const rules = (readYaml('prometheus/alerts.yaml')[0] as Any).groups.flatMap((g: Any) => g.rules)
    expect(rules.length).toBeGreaterThan(5)
    const names = exported()
    for (const r of rules) {
      expect(r.alert).toMatch(/^[A-Z][A-Za-z]+$/)
      expect(['critical', 'warning', 'info']).toContain(r.labels.severity)
      for (const n of metricNames(r.expr)) expect(names, `${r.alert}: ${n}`).toContain(n)
    }
  })

  it('every Grafana panel reads exported metrics', () => {
    const dash = JSON.parse(readFileSync(path.join(DEPLOY, 'grafana', 'gate-cloud.json'), 'utf8')) as Any
    const names = exported()
    const exprs = dash.panels.flatMap((p: Any) => p.targets.map((t: Any) => t.expr as string))
    expect(exprs.length).toBeGreaterThan(8)
    for (const e of exprs) for (const n of metricNames(e)) expect(names, `${e}: ${n}`).toContain(n)
  })
})
