import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import Database from 'better-sqlite3'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { AgentStatus } from '../../shared/status.js'
import { freePort, tempDir } from '../support/helpers.js'
import { connect, tempDatabase } from '../support/pg-helpers.js'
import {
  CLOUD_BIN,
  cleanEnv,
  cloudCli,
  eventually,
  gatectl,
  spawnAgent,
  waitForAgent,
} from '../support/process-helpers.js'

describe('end to end: a simulated gate syncing to gate-cloud serve, killed mid-sync', () => {
  const tmp = tempDir()
  let db: Awaited<ReturnType<typeof tempDatabase>>
  let sql: pg.Client
  let cloud: ReturnType<typeof spawn> | null = null
  let url = ''
  const agents: Array<ReturnType<typeof spawnAgent>> = []

  beforeAll(async () => {
    db = await tempDatabase({ migrate: false })
    sql = await connect(db.url)
    const env = { DATABASE_URL: db.url }
    expect((await cloudCli(['migrate'], env)).code).toBe(0)
    const port = await freePort()
    url = `http://127.0.0.1:${port}`
    cloud = spawn(process.execPath, [CLOUD_BIN, 'serve'], {
      env: cleanEnv({ ...env, PORT: String(port), LOG_LEVEL: 'warn', PARTITION_INTERVAL: 'month' }),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    await eventually(async () => (await fetch(`${url}/readyz`)).ok, 30_000, 200)
  }, 60_000)
  afterAll(async () => {
    for (const a of agents) if (a.child.exitCode === null) a.child.kill('SIGKILL')
    cloud?.kill('SIGTERM')
    await sql?.end()
    await db?.drop()
    tmp.cleanup()
  })

  it('ends with every check-in exactly once in Postgres', async () => {
    const added = await cloudCli(['gates', 'add', 'gate-e2e'], { DATABASE_URL: db.url })
    expect(added.code).toBe(0)
    const key = added.stdout.trim()
    expect(key).toMatch(/^gk_[a-z0-9]{12}_/)
    expect((await cloudCli(['gates', 'add', 'gate-e2e'], { DATABASE_URL: db.url })).code).toBe(2) // exists

    const dataDir = path.join(tmp.dir, 'data')
    const configFile = path.join(tmp.dir, 'agent.json')
    writeFileSync(
      configFile,
      JSON.stringify({
        gateId: 'gate-e2e',
        source: {
          sim: { participants: 2000, revoked: 20, unknown: 20, arrivalSpreadMs: 6_000, loop: false, seed: 8 },
        },
        cloud: { batchSize: 100, syncIntervalMs: 100, baseBackoffMs: 100, maxBackoffMs: 1_000 },
      }),
    )
    const env = { GATE_CLOUD_URL: url, GATE_KEY: key }
    const args = ['--config', configFile, '--source', 'sim', '--demo', '--log-level', 'warn']
    const first = spawnAgent(dataDir, args, env)
    agents.push(first)
    await waitForAgent(first)
    // kill it while it is both deciding and uploading
    await eventually(
      async () => {
        const s = JSON.parse(
          (await gatectl(['--data-dir', dataDir, '--json', 'status'])).stdout,
        ) as AgentStatus
        return (s.sync?.accepted ?? 0) > 100 && s.buffer.pending > 0 ? s : null
      },
      60_000,
      50,
    )
    first.child.kill('SIGKILL')
    expect(await first.exited).toBe('SIGKILL')

    const second = spawnAgent(dataDir, args, env)
    agents.push(second)
    try {
      await waitForAgent(second)
      const done = await eventually(
        async () => {
          const s = JSON.parse(
            (await gatectl(['--data-dir', dataDir, '--json', 'status'])).stdout,
          ) as AgentStatus
          return s.buffer.pending === 0 && s.buffer.inFlight === 0 && s.source?.radio !== 'scanning'
            ? s
            : null
        },
        90_000,
        250,
      )
      expect(done.sync?.state).toBe('idle')
      const sync = await gatectl(['--data-dir', dataDir, 'sync'])
      expect(sync.code).toBe(0)
      expect(sync.stdout).toMatch(/state\s+idle/)
    } finally {
      second.child.kill('SIGTERM')
      expect(await second.exited).toBe(0)
    }

    const local = new Database(path.join(dataDir, 'agent.db'), { readonly: true })
    const ids = (local.prepare('SELECT id FROM checkins').pluck().all() as string[]).sort()
    const unsynced = local.prepare('SELECT count(*) FROM checkins WHERE state < 2').pluck().get()
    local.close()
    expect(unsynced).toBe(0)
    expect(ids.length).toBeGreaterThan(500)
    const remote = await sql.query<{ id: string; n: number }>(
      `SELECT id::text AS id, count(*)::int AS n FROM attendance_records GROUP BY id`,
    )
    expect(remote.rows.every((r) => r.n === 1)).toBe(true)
    expect(remote.rows.map((r) => r.id).sort()).toEqual(ids)
  }, 240_000)
})
