import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { freePort, tempDir } from '../support/helpers.js'
import { tempDatabase } from '../support/pg-helpers.js'
import { cleanEnv, eventually, spawnAgent, waitForAgent } from '../support/process-helpers.js'
import { writeResults } from './harness.js'

const CLOUD_BIN = path.resolve(import.meta.dirname, '..', '..', 'bin', 'gate-cloud.js')

/** Secrets given to the programs never reach their logs, even at the debug level. */
describe('secrets stay out of the logs', () => {
  const tmp = tempDir()
  afterAll(() => tmp.cleanup())

  it('gate-cloud serve and gate-agent run at debug level: no key, token, password or database password logged', async () => {
    const secrets = {
      ops: 'OPS-SECRET-4f1d2c3b4a5968778695a4b3',
      cmd: 'CMD-SECRET-0a1b2c3d4e5f60718293a4b5',
      mqttPw: 'MQTT-SECRET-99887766554433221100',
      gateKey: 'gk_abcdefabcdef_GATEKEYSECRETabcdefabcdefabcdefabcdefabcdefabcd',
      dbPw: 'DB-SECRET-5566778899',
    }
    const db = await tempDatabase()
    const u = new URL(db.url)
    u.password = secrets.dbPw // trust auth: the password is accepted and ignored, but must not be logged
    const port = await freePort()
    let cloudLog = ''
    const cloud = spawn(process.execPath, [CLOUD_BIN, 'serve'], {
      env: cleanEnv({
        DATABASE_URL: u.toString(),
        PORT: String(port),
        LOG_LEVEL: 'debug',
        OPS_TOKEN: secrets.ops,
        FLEET_COMMAND_SECRET: secrets.cmd,
        MQTT_URL: 'mqtt://127.0.0.1:1883',
        MQTT_USERNAME: 'gate-cloud',
        MQTT_PASSWORD: secrets.mqttPw,
        FLEET_SHARE_GROUP: `sec${process.pid}`,
      }),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    cloud.stdout?.on('data', (b: Buffer) => {
      cloudLog += b.toString()
    })
    cloud.stderr?.on('data', (b: Buffer) => {
      cloudLog += b.toString()
    })
    try {
      await eventually(
        async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => null))?.ok,
        30_000,
      )
      // requests carrying secrets: a wrong ops token, a made-up gate key, the right ops token
      for (const auth of [
        `Bearer ${secrets.ops}`,
        `Bearer ${secrets.gateKey}`,
        'Bearer wrong-token-0123456789',
      ]) {
        await fetch(`http://127.0.0.1:${port}/v1/fleet`, { headers: { authorization: auth } })
        await fetch(`http://127.0.0.1:${port}/v1/roster`, { headers: { authorization: auth } })
      }
      const dataDir = path.join(tmp.dir, 'gate')
      const config = path.join(tmp.dir, 'agent.json')
      writeFileSync(config, JSON.stringify({ gateId: 'sec-1', mqtt: { url: 'mqtt://127.0.0.1:1883' } }))
      const agent = spawnAgent(
        dataDir,
        ['--config', config, '--source', 'sim', '--demo', '--log-level', 'debug'],
        {
          GATE_CLOUD_URL: `http://127.0.0.1:${port}`,
          GATE_KEY: secrets.gateKey,
          MQTT_PASSWORD: secrets.mqttPw,
          GATE_CMD_SECRET: secrets.cmd,
        },
      )
      await waitForAgent(agent)
      await new Promise((r) => setTimeout(r, 3_000)) // syncs refused (unknown key), MQTT attempts, debug lines
      agent.child.kill('SIGTERM')
      await agent.exited
      const logs = { cloud: cloudLog, agent: agent.stdout() + agent.stderr() }
      expect(logs.agent.length).toBeGreaterThan(1_000) // it did log, at debug level
      expect(logs.cloud.length).toBeGreaterThan(200)
      for (const [who, text] of Object.entries(logs))
        for (const [name, value] of Object.entries(secrets))
          expect(text.includes(value), `${who} logged ${name}`).toBe(false)
      writeResults('secrets', [
        {
          what: 'secrets (ops token, command secret, MQTT password, gate key, database password) in the logs of gate-cloud and gate-agent at debug level',
          tried: Object.keys(secrets).length * 2,
          outcome: 'none found',
        },
      ])
    } finally {
      cloud.kill('SIGTERM')
      await new Promise((r) => cloud.once('exit', r))
      await db.drop()
    }
  }, 90_000)
})
