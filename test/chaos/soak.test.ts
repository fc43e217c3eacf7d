import path from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, describe, expect, it } from 'vitest'
import { tempDir } from '../support/helpers.js'
import { tempDatabase } from '../support/pg-helpers.js'
import { controlledProxy } from '../support/tcp-proxy.js'
import {
  account,
  type Cloud,
  decided,
  drained,
  gateStatus,
  sleep,
  startCloud,
  startTailedGate,
  stopGate,
  type TailedGate,
  writeGateConfig,
} from './gates.js'
import { writeResults } from './harness.js'

/** How many times the gate is killed (`CHAOS_KILLS`; `npm run test:soak` runs it with 100). */
const KILLS = Number(process.env['CHAOS_KILLS'] ?? 100)
/** Every this many kills, the kill falls in a backlog drain (the uplink cut, then back). */
const DRAIN_EVERY = 10
const rand = (lo: number, hi: number) => lo + Math.random() * (hi - lo)

/**
 * The soak of the SIGKILL part of the faults suite: one gate on the simulated source syncs through
 * a proxy to its own `gate-cloud serve` (real Postgres) and is killed with SIGKILL `CHAOS_KILLS`
 * times at random moments of scanning and syncing, one kill in ten in the middle of a backlog
 * drain. Nothing but the gate is killed: the machine's servers keep running, so this can run
 * beside other work. At the end every decision the gate emitted is in its file and in Postgres
 * exactly once, the file and Postgres hold the same records, and the file passes quick_check.
 * Not in CI (`npm run test:chaos` kills the gate ten times in faults.test.ts).
 */
describe('soak: the gate killed with SIGKILL again and again', () => {
  const tmp = tempDir('gate-soak-')
  let db: Awaited<ReturnType<typeof tempDatabase>> | null = null
  let cloud: Cloud | null = null
  let gate: TailedGate | null = null

  afterAll(async () => {
    if (gate) await stopGate(gate).catch(() => {})
    await cloud?.stop('SIGKILL')
    await db?.drop().catch(() => {})
    tmp.cleanup()
  }, 60_000)

  it(
    `keeps every emitted decision through ${KILLS} kills`,
    async () => {
      expect(KILLS, 'CHAOS_KILLS').toBeGreaterThan(0)
      db = await tempDatabase()
      cloud = await startCloud(db.url)
      const key = await cloud.addGate('soak-a')
      const proxy = await controlledProxy(cloud.port)
      const dataDir = path.join(tmp.dir, 'soak-a')
      const cloudConfig = {
        batchSize: 50,
        syncIntervalMs: 200,
        baseBackoffMs: 100,
        maxBackoffMs: 1_000,
        rosterPullIntervalMs: 2_000,
      }
      const crowd = writeGateConfig(tmp.dir, 'soak-a', {
        source: { sim: { participants: 2000, arrivalSpreadMs: 20_000, seed: 21, loop: true } },
        dedup: { windowMs: 5_000 },
        cloud: cloudConfig,
      })
      const quiet = writeGateConfig(tmp.dir, 'soak-a-quiet', {
        gateId: 'soak-a',
        source: { sim: { participants: 0, revoked: 0, unknown: 0, foreign: 0, seed: 21 } },
        cloud: cloudConfig,
      })
      const env = { GATE_CLOUD_URL: `http://127.0.0.1:${proxy.port}`, GATE_KEY: key }
      const args = (config: string) => [
        '--config',
        config,
        '--source',
        'sim',
        '--demo',
        '--log-level',
        'error',
      ]
      const emitted = new Map<string, number>()
      const start = async (config: string) => {
        gate = await startTailedGate(dataDir, args(config), env, emitted)
        return gate
      }

      let g = await start(crowd)
      const t0 = Date.now()
      let inDrain = 0
      let decidedBeforeKills = 0
      for (let i = 1; i <= KILLS; i++) {
        // the simulated crowd starts again with each start and reaches the gate after ~5 s: a kill
        // 3 to 8 s after the start falls before, during or between decisions and uploads
        await sleep(rand(3_000, 8_000))
        if (i % DRAIN_EVERY === 0) {
          // a backlog: the uplink down for 3 s, then the kill while the gate catches up
          proxy.cut()
          await sleep(3_000)
          proxy.restore()
          await sleep(rand(100, 600))
          inDrain++
        }
        decidedBeforeKills += Math.max(0, decided(await gateStatus(dataDir)))
        g.close()
        g.agent.child.kill('SIGKILL')
        await g.agent.exited
        g = await start(crowd)
      }
      const soakS = (Date.now() - t0) / 1000
      // the end: stop the crowd, start once more without one so that the last decisions are
      // uploaded with nothing new coming in
      await stopGate(g)
      g = await start(quiet)
      await drained(dataDir)
      await stopGate(g)
      gate = null
      await proxy.close()

      const a = await account(db.url, 'soak-a', dataDir, emitted.keys())
      const boots = new Database(path.join(dataDir, 'agent.db'), { readonly: true })
      const starts = (boots.prepare('SELECT count(*) AS n FROM boots').get() as { n: number }).n
      boots.close()
      writeResults('soak', [
        {
          what: `gate killed with SIGKILL at random moments of scanning and syncing (1 in ${DRAIN_EVERY} during a backlog drain) and restarted, over ${Math.round(soakS)} s`,
          tried: KILLS,
          outcome: `${starts} starts; ${a.emitted.toLocaleString('en-US')} decisions emitted: ${a.lostFromFile} missing from the file, ${a.lostFromCloud} from Postgres, ${a.doubled} stored twice; quick_check ${a.integrity}`,
          lost: a.lost,
        },
      ])
      expect(starts, 'agent starts recorded in the file').toBe(KILLS + 2)
      expect(inDrain).toBe(Math.floor(KILLS / DRAIN_EVERY))
      expect(decidedBeforeKills, 'decisions made between kills').toBeGreaterThan(KILLS)
      expect(a.emitted).toBeGreaterThan(KILLS)
      expect(a.lostFromFile, 'emitted decisions missing from the file').toBe(0)
      expect(a.lostFromCloud, 'emitted decisions missing from Postgres').toBe(0)
      expect(a.doubled, 'records stored twice').toBe(0)
      expect(a.notSynced, 'rows of the file not in Postgres').toBe(0)
      expect(a.foreign, 'records in Postgres the file does not hold').toBe(0)
      expect(a.integrity).toBe('ok')
    },
    KILLS * 20_000 + 240_000,
  )
})
