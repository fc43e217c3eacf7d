import { type ChildProcess, spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import Database from 'better-sqlite3'
import type pg from 'pg'
import { afterAll, describe, expect, it } from 'vitest'
import { ControlClient, SOCKET_NAME } from '../../agent/control/client.js'
import type { AgentStatus } from '../../shared/status.js'
import { freePort, tempDir } from '../support/helpers.js'
import { connect, tempDatabase } from '../support/pg-helpers.js'
import {
  type AgentProcess,
  CLOUD_BIN,
  cleanEnv,
  cloudCli,
  eventually,
  spawnAgent,
  waitForAgent,
} from '../support/process-helpers.js'
import { controlledProxy } from '../support/tcp-proxy.js'
import { servers, writeResults } from './harness.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const rand = (lo: number, hi: number) => lo + Math.random() * (hi - lo)

/**
 * Real processes, real servers, loopback only: two gates on the simulated source sync through a
 * proxy the test controls to a `gate-cloud serve` on the real Postgres, Redis and Mosquitto, while
 * the test kills gate A with SIGKILL at random moments, cuts the network, kills and restarts the
 * cloud, restarts Postgres, stops Redis and stops the broker. At the end: every decision the gates
 * emitted is in Postgres exactly once, and gate B admitted through every fault.
 */
describe('chaos: faults everywhere, no check-in lost or doubled', () => {
  const tmp = tempDir()
  let db: Awaited<ReturnType<typeof tempDatabase>>
  let sql: pg.Client | null = null
  let cloud: ChildProcess | null = null
  const agents: AgentProcess[] = []
  const emitted = new Map<string, Set<string>>([
    ['chaos-a', new Set()],
    ['chaos-b', new Set()],
  ])
  const tails: ControlClient[] = []

  afterAll(async () => {
    for (const t of tails) t.close()
    for (const a of agents)
      if (a.child.exitCode === null && a.child.signalCode === null) a.child.kill('SIGKILL')
    cloud?.kill('SIGKILL')
    // whatever happened, the machine's servers are left running
    await servers.startRedis().catch(() => {})
    await servers.startBroker().catch(() => {})
    await sql?.end().catch(() => {})
    await db?.drop().catch(() => {})
    tmp.cleanup()
  }, 60_000)

  it('keeps every emitted decision exactly once and never stops admitting', async () => {
    db = await tempDatabase()
    const cloudPort = await freePort()
    const cloudEnv = {
      DATABASE_URL: db.url,
      PORT: String(cloudPort),
      LOG_LEVEL: 'error',
      REDIS_URL: 'redis://127.0.0.1:6379',
      MQTT_URL: 'mqtt://127.0.0.1:1883',
      FLEET_SHARE_GROUP: `chaos${process.pid}`,
      PARTITION_INTERVAL: 'month',
      PG_ACQUIRE_TIMEOUT_MS: '1000',
      OPS_TOKEN: 'chaos-ops-token-0123456789abcdef',
    }
    const startCloud = async () => {
      cloud = spawn(process.execPath, [CLOUD_BIN, 'serve'], { env: cleanEnv(cloudEnv), stdio: 'ignore' })
      await eventually(
        async () => (await fetch(`http://127.0.0.1:${cloudPort}/readyz`).catch(() => null))?.ok,
        60_000,
        200,
      )
    }
    const stopCloud = async (signal: NodeJS.Signals) => {
      const c = cloud
      if (!c) return
      const exited = new Promise((r) => c.once('exit', r))
      c.kill(signal)
      await exited
    }
    await startCloud()
    const keys: Record<string, string> = {}
    for (const g of ['chaos-a', 'chaos-b'])
      keys[g] = (await cloudCli(['gates', 'add', g], { DATABASE_URL: db.url })).stdout.trim()
    const proxy = await controlledProxy(cloudPort)

    const startAgent = async (gateId: string, seed: number, quiet = false) => {
      const dataDir = path.join(tmp.dir, gateId)
      const config = path.join(tmp.dir, `${gateId}.json`)
      writeFileSync(
        config,
        JSON.stringify({
          gateId,
          source: {
            sim: quiet
              ? { participants: 0, revoked: 0, unknown: 0, foreign: 0, seed }
              : { participants: 2000, arrivalSpreadMs: 200_000, seed, loop: true },
          },
          dedup: { windowMs: 5_000 },
          cloud: {
            batchSize: 50,
            syncIntervalMs: 200,
            baseBackoffMs: 100,
            maxBackoffMs: 1_000,
            rosterPullIntervalMs: 2_000,
          },
          mqtt: { url: 'mqtt://127.0.0.1:1883', metricsIntervalMs: 1_000 },
        }),
      )
      const a = spawnAgent(
        dataDir,
        ['--config', config, '--source', 'sim', '--demo', '--log-level', 'error'],
        {
          GATE_CLOUD_URL: `http://127.0.0.1:${proxy.port}`,
          GATE_KEY: keys[gateId] as string,
        },
      )
      agents.push(a)
      await waitForAgent(a)
      // every decision the gate emits, as the field technician's `gatectl tail` sees it
      const t = await ControlClient.connect(path.join(dataDir, SOCKET_NAME), 2_000)
      tails.push(t)
      await t.subscribe(['decisions'], (_s, d) => emitted.get(gateId)?.add((d as { id: string }).id))
      return a
    }
    const status = async (gateId: string): Promise<AgentStatus | null> => {
      try {
        const c = await ControlClient.connect(path.join(tmp.dir, gateId, SOCKET_NAME), 1_000)
        const s = (await c.request('status')) as AgentStatus
        c.close()
        return s
      } catch {
        return null
      }
    }
    /** Both gates have uploaded everything they buffered. */
    const drained = async () => {
      for (const g of ['chaos-a', 'chaos-b']) {
        const s = await status(g)
        if (!s || s.buffer.pending > 0 || s.buffer.inFlight > 0) return false
      }
      return true
    }
    const decisions = async (gateId: string) => {
      const s = await status(gateId)
      const c = s?.counters
      return c ? c.admit + Object.values(c.deny).reduce((x, y) => x + y, 0) : -1
    }

    let a = await startAgent('chaos-a', 11)
    await startAgent('chaos-b', 12)
    await eventually(async () => ((await status('chaos-b'))?.sync?.accepted ?? 0) > 5, 60_000, 250)

    /** Run a fault; gate B must decide during it (it never stops admitting). */
    const faults: Array<{ what: string; count: number; admittedDuring: boolean }> = []
    const fault = async (what: string, run: () => Promise<void>) => {
      const before = await decisions('chaos-b')
      await run()
      const after = await decisions('chaos-b')
      const f = faults.find((x) => x.what === what)
      const ok = after > before
      if (f) {
        f.count++
        f.admittedDuring &&= ok
      } else faults.push({ what, count: 1, admittedDuring: ok })
    }

    const loadFrom = { at: Date.now(), decisions: await decisions('chaos-b') }
    for (let i = 0; i < 10; i++) {
      await fault('gate A killed with SIGKILL (random moment) and restarted', async () => {
        await sleep(rand(500, 2_500))
        a.child.kill('SIGKILL')
        await a.exited
        a = await startAgent('chaos-a', 11)
      })
    }
    await fault('network between gates and cloud cut for 4 s', async () => {
      proxy.cut()
      await sleep(4_000)
      proxy.restore()
    })
    await fault('cloud killed with SIGKILL, restarted', async () => {
      await stopCloud('SIGKILL')
      await sleep(1_500)
      await startCloud()
    })
    await fault('cloud stopped with SIGTERM, restarted', async () => {
      await stopCloud('SIGTERM')
      await sleep(1_000)
      await startCloud()
    })
    await fault('Postgres restarted', async () => {
      await sleep(1_000)
      await servers.restartPostgres()
      await sleep(2_000)
    })
    await fault('Redis stopped for 4 s', async () => {
      await servers.stopRedis()
      await sleep(4_000)
      await servers.startRedis()
    })
    await fault('MQTT broker stopped for 4 s', async () => {
      await servers.stopBroker()
      await sleep(4_000)
      await servers.startBroker()
    })
    await fault('gate A killed with SIGKILL during the backlog drain', async () => {
      proxy.cut()
      await sleep(3_000)
      proxy.restore()
      await sleep(rand(100, 600))
      a.child.kill('SIGKILL')
      await a.exited
      a = await startAgent('chaos-a', 11)
    })

    const loadS = (Date.now() - loadFrom.at) / 1000
    const loadDecisions = (await decisions('chaos-b')) - loadFrom.decisions
    // calm: both gates drain their buffers
    await eventually(drained, 90_000, 500)
    // after the broker's restart both gates are online again on the cloud's fleet view (they
    // publish "online" at every reconnect: a broker restart never leaves a live gate offline)
    await eventually(
      async () => {
        const r = await fetch(`http://127.0.0.1:${cloudPort}/v1/fleet`, {
          headers: { authorization: `Bearer ${cloudEnv.OPS_TOKEN}` },
        })
        const f = (await r.json()) as { gates: Array<{ gateId: string; state: string }> }
        return ['chaos-a', 'chaos-b'].every((g) => f.gates.find((x) => x.gateId === g)?.state === 'online')
      },
      30_000,
      500,
    )
    // the end: stop the gates (their crowds keep them deciding until then), and start them once more
    // without a crowd so that what they decided last is uploaded too, with nothing new coming in
    for (const t of tails) t.close()
    const stopAll = async () => {
      for (const x of agents)
        if (x.child.exitCode === null && x.child.signalCode === null) x.child.kill('SIGTERM')
      await Promise.all(agents.map((x) => x.exited))
    }
    await stopAll()
    await startAgent('chaos-a', 11, true)
    await startAgent('chaos-b', 12, true)
    await eventually(drained, 60_000, 250)
    for (const t of tails) t.close()
    await stopAll()

    sql = await connect(db.url)
    const rows: Array<Omit<Parameters<typeof writeResults>[1][number], never>> = []
    let emittedTotal = 0
    let lostTotal = 0
    for (const gateId of ['chaos-a', 'chaos-b']) {
      const local = new Database(path.join(tmp.dir, gateId, 'agent.db'), { readonly: true })
      const outbox = new Set(
        (local.prepare('SELECT id FROM checkins').all() as Array<{ id: string }>).map((r) => r.id),
      )
      local.close()
      const pgRows = (
        await sql.query<{ id: string; n: string }>(
          'SELECT id::text, count(*) AS n FROM attendance_records WHERE gate_id = $1 GROUP BY id',
          [gateId],
        )
      ).rows
      const inPg = new Set(pgRows.map((r) => r.id))
      const doubled = pgRows.filter((r) => Number(r.n) > 1).length
      const seen = emitted.get(gateId) ?? new Set()
      const lost = [...seen].filter((id) => !inPg.has(id)).length
      emittedTotal += seen.size
      lostTotal += lost
      expect(seen.size, `${gateId}: decisions seen`).toBeGreaterThan(20)
      expect(lost, `${gateId}: emitted decisions missing from Postgres`).toBe(0)
      expect(doubled, `${gateId}: records stored twice`).toBe(0)
      expect([...outbox].filter((id) => !inPg.has(id))).toEqual([]) // every buffered decision reached the cloud
      expect(inPg.size).toBe(outbox.size) // and nothing else did
    }
    for (const f of faults) expect(f.admittedDuring, `gate B decided during: ${f.what}`).toBe(true)
    rows.push(
      ...faults.map((f) => ({
        what: f.what,
        tried: f.count,
        outcome: f.admittedDuring ? 'survived; gate B admitting throughout' : 'gate B stopped admitting',
      })),
      {
        what: `load held: gate B's decisions during the whole fault sequence (${Math.round(loadS)} s)`,
        tried: loadDecisions,
        outcome: `${(loadDecisions / loadS).toFixed(1)} decisions/s, none of the faults stopped it`,
      },
      {
        what: 'decisions emitted by the two gates (seen live on their control sockets)',
        tried: emittedTotal,
        outcome: 'each in Postgres exactly once',
        lost: lostTotal,
      },
    )
    writeResults('faults', rows)
    await proxy.close()
  }, 400_000)
})
