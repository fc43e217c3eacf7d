import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process'
import { existsSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import mqtt from 'mqtt'
import { afterAll, describe, expect, it } from 'vitest'
import { portOpen } from '../chaos/harness.js'
import { freePort, tempDir } from '../support/helpers.js'
import { connect, tempDatabase } from '../support/pg-helpers.js'
import { cleanEnv, cloudCli, eventually } from '../support/process-helpers.js'

const DEMO_BIN = path.resolve(import.meta.dirname, '..', '..', 'bin', 'gate-demo.js')

interface Up {
  child: ChildProcess
  out: () => string
  exited: Promise<number | string>
}

/** `npm start` (gate-demo) with no DATABASE_URL, MQTT_URL or REDIS_URL: everything embedded. */
function startUp(
  dataDir: string,
  ports: { http: number; mqtt: number },
  servers: Record<string, string> = {},
): Up {
  const env = cleanEnv({ MQTT_PORT: String(ports.mqtt) })
  for (const k of ['DATABASE_URL', 'REDIS_URL', 'MQTT_URL', 'OPS_TOKEN', 'PORT']) delete env[k]
  Object.assign(env, servers)
  const child = spawn(
    process.execPath,
    // the crowd leaves by the exit 15 s after it came in (90 s by default): the test sees both soon
    [DEMO_BIN, '--data-dir', dataDir, '--port', String(ports.http), '--participants', '300', '--stay', '15'],
    { env, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let out = ''
  child.stdout?.on('data', (b: Buffer) => {
    out += b.toString()
  })
  child.stderr?.on('data', (b: Buffer) => {
    out += b.toString()
  })
  const exited = new Promise<number | string>((r) => child.on('exit', (code, sig) => r(code ?? sig ?? -1)))
  return { child, out: () => out, exited }
}

const processesOn = (dataDir: string): string[] => {
  try {
    return execFileSync('pgrep', ['-af', dataDir], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.includes('gate-') && !l.includes('pgrep'))
  } catch {
    return [] // pgrep: nothing matched
  }
}

/**
 * Log in to the Postgres at `url` as user `uid` of this machine (a raw startup message, as any
 * client sends): 'ok' when the server lets it in, else the error (EACCES: the socket is not its).
 */
function loginAs(uid: number, url: string): Promise<string> {
  const script = `
    const net = require('node:net')
    const url = process.argv[1]
    const m = /[?&]host=([^&]+)/.exec(url)
    const s = m
      ? net.connect(decodeURIComponent(m[1]) + '/.s.PGSQL.5432')
      : net.connect(Number(new URL(url).port || 5432), new URL(url).hostname)
    s.on('error', (e) => { console.log(e.code); process.exit(0) })
    s.on('connect', () => {
      const params = Buffer.from('user\\0postgres\\0database\\0postgres\\0\\0')
      const head = Buffer.alloc(8)
      head.writeInt32BE(8 + params.length, 0)
      head.writeInt32BE(196608, 4)
      s.write(Buffer.concat([head, params]))
    })
    s.on('data', (d) => {
      console.log(d[0] === 0x52 && d.readInt32BE(5) === 0 ? 'ok' : 'refused')
      process.exit(0)
    })`
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['-e', script, url],
      { uid, gid: uid, cwd: '/', timeout: 10_000 },
      (err, stdout) => resolve(err ? `failed: ${err.message}` : stdout.trim()),
    )
  })
}

/**
 * `npm start` (gate-demo) on embedded defaults: PGlite over pglite-socket, aedes, no Redis, three
 * simulated gates syncing and reporting; Ctrl-C stops everything; a second start keeps the data.
 */
describe('npm start: the whole system on embedded defaults', () => {
  const tmp = tempDir()
  const dataDir = path.join(tmp.dir, 'data')
  let ports = { http: 0, mqtt: 0 }
  let current: Up | null = null
  let storedAfterFirst = 0
  afterAll(async () => {
    if (current && current.child.exitCode === null) {
      current.child.kill('SIGKILL')
      await current.exited
    }
    tmp.cleanup()
  })

  const secrets = () =>
    JSON.parse(readFileSync(path.join(dataDir, 'secrets.json'), 'utf8')) as {
      opsToken: string
      gates: Record<string, { key: string; mqttPassword: string }>
    }
  const api = async <T>(p: string): Promise<T> => {
    const r = await fetch(`http://127.0.0.1:${ports.http}${p}`, {
      headers: { authorization: `Bearer ${secrets().opsToken}` },
    })
    return (await r.json()) as T
  }
  const stored = async () =>
    (
      await api<{ gates: Array<{ count: number }> }>('/v1/query/gates/counts?since=2020-01-01T00:00:00Z')
    ).gates.reduce((n, g) => n + Number(g.count), 0)

  it('starts the cloud, the broker, Postgres and three gates that sync and report, and stops on Ctrl-C', async () => {
    ports = { http: await freePort(), mqtt: await freePort() }
    const up = startUp(dataDir, ports)
    current = up
    await eventually(() => up.out().includes('The whole system is up'), 120_000, 250)
    expect(up.out()).toContain(`http://127.0.0.1:${ports.http}/dashboard#token=`)
    expect(up.out()).toContain('embedded PGlite')
    expect(up.out()).toContain('no REDIS_URL') // the cloud says it runs on L1 alone
    // the exact commands to try, with this demo's paths
    expect(up.out()).toContain(`npx gatectl --data-dir ${path.join(dataDir, 'gates', 'gate-1')} status`)
    expect(up.out()).toMatch(/DATABASE_URL='[^']+' npx gate-cloud gates list/)
    // the embedded Postgres asks no password: it is on a socket only this user can reach, and the
    // DATABASE_URL the banner prints is what the CLI needs to reach it
    const dbUrl = /DATABASE_URL='([^']+)'/.exec(up.out())?.[1] ?? ''
    if (process.getuid?.() === 0) expect(await loginAs(65534, dbUrl), 'another local user').toBe('EACCES')
    expect(dbUrl).toBe(`postgres://postgres@/postgres?host=${path.join(dataDir, 'run')}`)
    expect(statSync(path.join(dataDir, 'run')).mode & 0o777).toBe(0o700)
    const listed = await cloudCli(['gates', 'list'], { DATABASE_URL: dbUrl })
    expect(listed.stderr).toBe('')
    expect(listed.stdout).toMatch(/gate-1[\s\S]*gate-2[\s\S]*gate-3/)
    // every gate online over MQTT, and check-ins from every gate stored in Postgres
    await eventually(
      async () => (await api<{ counts: { online: number } }>('/v1/fleet')).counts.online === 3,
      60_000,
      500,
    )
    await eventually(
      async () => {
        const g = (
          await api<{ gates: Array<{ gateId: string; count: number }> }>(
            '/v1/query/gates/counts?since=2020-01-01T00:00:00Z',
          )
        ).gates
        return g.length === 3 && g.every((x) => Number(x.count) > 0)
      },
      90_000,
      1_000,
    )
    // the demo venue's access policy: the hall fills through the first doors, empties through the last
    const hall = await eventually(
      async () => {
        const o = await api<{
          zones: Array<{
            zone: string
            capacity: number
            gates: Array<{ gateId: string; entries: number; exits: number }>
          }>
        }>('/v1/query/events/demo/occupancy')
        const z = o.zones.find((x) => x.zone === 'hall')
        const entered = z?.gates.some((g) => g.gateId !== 'gate-3' && g.entries > 0)
        const left = z?.gates.some((g) => g.gateId === 'gate-3' && g.exits > 0)
        return entered && left ? z : null
      },
      90_000,
      1_000,
    )
    expect(hall.capacity).toBeGreaterThan(0)
    expect(up.out()).toMatch(/access\s+event demo: the main hall holds \d+, gate-3 is its exit/)
    // the broker authenticates every client and keeps each gate to its own topics
    const url = `mqtt://127.0.0.1:${ports.mqtt}`
    await expect(
      mqtt.connectAsync(url, { username: 'gate-1', password: 'wrong', reconnectPeriod: 0 }),
    ).rejects.toThrow()
    // a user name that is an object's built-in property is refused like any other, and crashes nothing
    for (const username of ['constructor', '__proto__', 'toString'])
      await expect(mqtt.connectAsync(url, { username, password: 'x', reconnectPeriod: 0 })).rejects.toThrow()
    const s = secrets()
    // a gate account cannot take another gate's client id (which would knock that gate off)
    await expect(
      mqtt.connectAsync(url, {
        clientId: 'gate-gate-1-0123456789ab',
        username: 'gate-2',
        password: s.gates['gate-2']?.mqttPassword,
        reconnectPeriod: 0,
      }),
    ).rejects.toThrow()
    const spy = await mqtt.connectAsync(url, {
      clientId: 'gate-gate-2-spy',
      username: 'gate-2',
      password: s.gates['gate-2']?.mqttPassword,
      reconnectPeriod: 0,
    })
    const got: string[] = []
    spy.on('message', (t) => got.push(t))
    // another gate's commands: the subscription is refused (SUBACK 128)
    await expect(spy.subscribeAsync('gates/gate-1/cmd')).rejects.toThrow(/Subscribe error/)
    await spy.subscribeAsync('gates/gate-2/cmd')
    const g1 = await mqtt.connectAsync(url, {
      clientId: 'gate-gate-1-test',
      username: 'gate-1',
      password: s.gates['gate-1']?.mqttPassword,
      reconnectPeriod: 0,
    })
    // gate-1 tries to command gate-2: the broker drops it
    await g1.publishAsync('gates/gate-2/cmd', '{"forged":true}', { qos: 0 }).catch(() => {})
    await new Promise((r) => setTimeout(r, 500))
    expect(got).toEqual([])
    await g1.endAsync()
    await spy.endAsync()

    const before = await stored()
    up.child.kill('SIGINT')
    expect(await up.exited).toBe(0)
    expect(processesOn(dataDir)).toEqual([])
    expect(await portOpen(ports.http)).toBe(false) // the cloud stopped too
    // and it says so, and where the data stays
    expect(up.out()).toContain(`stopped: everything is down; the data is in ${dataDir}`)
    storedAfterFirst = before
  }, 240_000)

  it('a second start keeps the data, the keys and the roster', async () => {
    const before = storedAfterFirst
    expect(before).toBeGreaterThan(0)
    const keys = secrets().gates
    const up = startUp(dataDir, ports)
    current = up
    await eventually(() => up.out().includes('The whole system is up'), 120_000, 250)
    expect(up.out()).toMatch(/"inserted":0,"updated":0,"unchanged":305/) // the roster was there
    expect(secrets().gates).toEqual(keys) // the same gate keys: nothing re-provisioned
    await eventually(async () => (await stored()) > before, 90_000, 1_000)
    up.child.kill('SIGTERM')
    expect(await up.exited).toBe(0)
    expect(processesOn(dataDir)).toEqual([])
    expect(await portOpen(ports.http)).toBe(false) // the cloud stopped too
  }, 240_000)

  it('with DATABASE_URL, MQTT_URL and REDIS_URL the same command uses the real servers', async () => {
    const db = await tempDatabase({ migrate: false })
    const realDir = path.join(tmp.dir, 'real')
    const real = { http: await freePort(), mqtt: 0 }
    const mqttUrl = process.env['MQTT_URL'] ?? 'mqtt://127.0.0.1:1883'
    const up = startUp(realDir, real, {
      DATABASE_URL: db.url,
      MQTT_URL: mqttUrl,
      REDIS_URL: process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379',
      FLEET_SHARE_GROUP: `up${process.pid}`,
    })
    current = up
    const sql = await connect(db.url)
    try {
      await eventually(() => up.out().includes('The whole system is up'), 120_000, 250)
      expect(up.out()).toMatch(/Postgres\s+DATABASE_URL/)
      expect(up.out()).toMatch(/MQTT\s+MQTT_URL/)
      expect(up.out()).toMatch(/Redis\s+REDIS_URL/)
      expect(up.out()).not.toContain('no REDIS_URL')
      expect(existsSync(path.join(realDir, 'pglite'))).toBe(false)
      // the check-ins of all three gates land in the real Postgres
      await eventually(
        async () => {
          const r = await sql.query<{ n: string }>(
            'SELECT count(DISTINCT gate_id) AS n FROM attendance_records',
          )
          return Number(r.rows[0]?.n) === 3
        },
        90_000,
        1_000,
      )
      up.child.kill('SIGINT')
      expect(await up.exited).toBe(0)
      expect(processesOn(realDir)).toEqual([])
      expect(await portOpen(real.http)).toBe(false)
    } finally {
      await sql.end()
      await db.drop()
      // the gates' retained statuses on the shared broker
      const c = await mqtt.connectAsync(mqttUrl)
      for (const g of ['gate-1', 'gate-2', 'gate-3'])
        await c.publishAsync(`gates/${g}/status`, '', { retain: true })
      await c.endAsync()
    }
  }, 240_000)
})
