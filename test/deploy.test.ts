import { execFile, execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort, tempDir } from './helpers.js'
import { eventually } from './process-helpers.js'

const DEPLOY = path.resolve(import.meta.dirname, '..', 'deploy')
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
        env: { ...process.env, PASSWORD: password },
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
  })
})
