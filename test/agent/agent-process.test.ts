import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ControlClient, SOCKET_NAME } from '../../agent/control/client.js'
import type { DecisionEvent } from '../../shared/control.js'
import type { AgentStatus } from '../../shared/status.js'
import { tempDir } from '../support/helpers.js'
import {
  type AgentProcess,
  cloudCli,
  eventually,
  gatectl,
  runAgentToExit,
  spawnAgent,
  waitForAgent,
} from '../support/process-helpers.js'

/** A crowd that reaches the gate within seconds, so tests see decisions quickly. */
const FAST_CROWD = {
  source: {
    sim: { participants: 80, revoked: 6, unknown: 6, foreign: 10, arrivalSpreadMs: 1_000, seed: 11 },
  },
}

const writeConfig = (dir: string, cfg: unknown): string => {
  const file = path.join(dir, 'agent.json')
  writeFileSync(file, JSON.stringify(cfg))
  return file
}

describe('gate-agent run on the simulated source, driven through gatectl', () => {
  const tmp = tempDir()
  const dataDir = path.join(tmp.dir, 'data')
  let agent: AgentProcess
  let configFile: string

  beforeAll(async () => {
    configFile = writeConfig(tmp.dir, FAST_CROWD)
    agent = spawnAgent(dataDir, ['--config', configFile, '--source', 'sim', '--demo'])
    await waitForAgent(agent)
  })

  afterAll(async () => {
    if (agent.child.exitCode === null) {
      agent.child.kill('SIGKILL')
      await agent.exited
    }
    tmp.cleanup()
  })

  it('status shows a running daemon on the sim source with the demo roster', async () => {
    const r = await gatectl(['--data-dir', dataDir, '--json', 'status'])
    expect(r.code).toBe(0)
    const s = JSON.parse(r.stdout) as AgentStatus
    expect(s.daemon).toBe('running')
    expect(s.source).toMatchObject({ kind: 'sim', adapterState: 'poweredOn', scanning: true })
    expect(s.roster.active).toBeGreaterThanOrEqual(80)
    expect(s.roster.revoked).toBe(6)
    // the event loop's scheduling, read by the daemon on that thread: started by hand, not realtime
    expect(s.scheduling).toEqual({ policy: 'normal', rtPriority: 0, nice: os.getPriority() })
  })

  it('doctor checks the gate as it runs (the simulated source needs no adapter) without being told', async () => {
    const r = await gatectl(['--data-dir', dataDir, '--json', 'doctor'])
    const doctor = JSON.parse(r.stdout) as { checks: Array<{ name: string; status: string; detail: string }> }
    const configuration = doctor.checks.find((c) => c.name === 'configuration')
    expect(configuration?.detail).toMatch(/source sim; as the gate runs it, from .*config-in-use\.json/)
    // the source is a flag of the running agent, not in its config file: the defaults say noble
    const adapter = doctor.checks.find((c) => c.name === 'bluetooth adapter')
    expect(adapter?.status).not.toBe('fail')
  })

  it('gatectl without a data directory names the gate data it finds', async () => {
    const r = await gatectl(['status'], {}, 30_000, tmp.dir)
    expect(r.code).toBe(4)
    expect(r.stderr).toContain(`no gate data in ${path.join(tmp.dir, 'data', 'agent')}`)
    expect(r.stderr).toMatch(/Gate data found here:\n {2}data {2}\(gate /)
    expect(r.stderr).toContain('gatectl --data-dir data status')
  })

  // what the systemd unit's ExecStartPost does once the agent is up (a realtime policy needs root)
  it.runIf(process.getuid?.() === 0)(
    "after the unit's chrt, status and doctor say the event loop is realtime",
    async () => {
      const chrt = spawnSync('chrt', ['--rr', '--reset-on-fork', '--pid', '5', String(agent.child.pid)])
      expect(chrt.status, String(chrt.stderr)).toBe(0)
      const s = JSON.parse((await gatectl(['--data-dir', dataDir, '--json', 'status'])).stdout) as AgentStatus
      expect(s.scheduling).toMatchObject({ policy: 'rr', rtPriority: 5 })
      expect((await gatectl(['--data-dir', dataDir, 'status'])).stdout).toMatch(
        /event loop\s+realtime \(SCHED_RR 5\)/,
      )
      const doctor = JSON.parse((await gatectl(['--data-dir', dataDir, '--json', 'doctor'])).stdout) as {
        checks: Array<{ name: string; status: string; detail: string }>
      }
      expect(doctor.checks.find((c) => c.name === 'event-loop scheduling')).toEqual({
        name: 'event-loop scheduling',
        status: 'pass',
        detail: 'realtime (SCHED_RR 5)',
      })
    },
  )

  it('shows the last decisions, then streams live ones that are already in the database', async () => {
    // three decisions in the file first, for `-n 3` to show
    await eventually(
      async () => {
        const db = new Database(path.join(dataDir, 'agent.db'), { readonly: true })
        try {
          return (db.prepare('SELECT count(*) FROM checkins').pluck().get() as number) >= 3
        } finally {
          db.close()
        }
      },
      30_000,
      100,
    )
    const r = await gatectl(
      ['--data-dir', dataDir, '--json', 'tail', '-n', '3', '--count', '2', '--timeout', '60'],
      {},
      70_000,
    )
    expect(r.code).toBe(0)
    const decisions = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as DecisionEvent & { stream: string })
    // as `tail -n 3`: the last three from the file, oldest first, then two live ones
    expect(decisions).toHaveLength(5)
    const times = decisions.map((d) => d.ts)
    expect([...times].sort((a, b) => a - b)).toEqual(times)
    const db = new Database(path.join(dataDir, 'agent.db'), { readonly: true })
    try {
      for (const d of decisions) {
        expect(d.stream).toBe('decisions')
        expect(d.method).toBe('ble')
        const row = db.prepare('SELECT decision, token FROM checkins WHERE id = ?').get(d.id)
        expect(row).toEqual({ decision: d.decision, token: d.token })
      }
    } finally {
      db.close()
    }
  })

  it('admits active badges and denies revoked and unknown ones with a reason', async () => {
    const s = await eventually(
      async () => {
        const r = await gatectl(['--data-dir', dataDir, '--json', 'status'])
        const st = JSON.parse(r.stdout) as AgentStatus
        const c = st.counters
        return c && c.admit > 0 && (c.deny['revoked'] ?? 0) > 0 && (c.deny['unknown'] ?? 0) > 0 ? st : null
      },
      90_000,
      500,
    )
    expect(s.decoders?.['foreign']).toBeGreaterThan(0)
    expect(s.buffer.pending).toBeGreaterThan(0)
  })

  it('roster lookup explains why a revoked badge is denied', async () => {
    const db = new Database(path.join(dataDir, 'agent.db'), { readonly: true })
    const revoked = db.prepare("SELECT token FROM roster WHERE status = 'revoked' LIMIT 1").get() as {
      token: string
    }
    db.close()
    const r = await gatectl(['--data-dir', dataDir, 'roster', 'lookup', revoked.token])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/would be DENY \(revoked\)/)
    const unknown = await gatectl(['--data-dir', dataDir, '--json', 'roster', 'lookup', 'abcdef0123456789'])
    expect(unknown.code).toBe(6)
    expect(JSON.parse(unknown.stdout).wouldBe).toMatchObject({ decision: 'deny', reason: 'unknown' })
  })

  it('checkins lists and counts what was buffered', async () => {
    const count = await gatectl(['--data-dir', dataDir, '--json', 'checkins', 'count'])
    expect(count.code).toBe(0)
    expect(JSON.parse(count.stdout).pending).toBeGreaterThan(0)
    const list = await gatectl([
      '--data-dir',
      dataDir,
      '--json',
      'checkins',
      'list',
      '--state',
      'pending',
      '--limit',
      '3',
    ])
    expect(list.code).toBe(0)
    expect(JSON.parse(list.stdout)).toHaveLength(3)
  })

  it('capture records what the agent hears into a file that the replay source plays back', async () => {
    const file = path.join(tmp.dir, 'hall.jsonl')
    const r = await gatectl(['--data-dir', dataDir, 'capture', '-o', file, '--count', '200'], {}, 30_000)
    expect(r.code).toBe(0)
    const lines = readFileSync(file, 'utf8').trim().split('\n')
    expect(lines).toHaveLength(201)
    expect(JSON.parse(lines[0] ?? '')).toMatchObject({ capture: 1, gateId: 'gate-1', source: 'sim' })
    expect(JSON.parse(lines[1] ?? '')).toMatchObject({
      t: 0,
      address: expect.stringMatching(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/),
    })
    const again = await gatectl(['--data-dir', dataDir, 'capture', '-o', file, '--count', '1'])
    expect(again.code).toBe(2)
    expect(again.stderr).toMatch(/exists/)

    const replayDir = path.join(tmp.dir, 'replay')
    const replay = spawnAgent(replayDir, ['--source', 'replay', '--replay', file])
    try {
      await waitForAgent(replay)
      const st = await eventually(
        async () => {
          const s = JSON.parse(
            (await gatectl(['--data-dir', replayDir, '--json', 'status'])).stdout,
          ) as AgentStatus
          return s.counters && s.counters.adverts === 200 ? s : null
        },
        30_000,
        200,
      )
      expect(st.source).toMatchObject({ kind: 'replay' })
      expect(st.decoders?.['foreign']).toBeGreaterThan(0)
    } finally {
      replay.child.kill('SIGTERM')
      expect(await replay.exited).toBe(0)
    }
  })

  it('refuses a second daemon on the same data directory, before writing to its database', async () => {
    const boots = () => {
      const f = new Database(path.join(dataDir, 'agent.db'), { readonly: true })
      try {
        return (f.prepare('SELECT count(*) AS n FROM boots').get() as { n: number }).n
      } finally {
        f.close()
      }
    }
    const before = boots()
    const r = await runAgentToExit(['run', '--data-dir', dataDir, '--source', 'sim'])
    expect(r.code).toBe(5)
    expect(r.stderr).toMatch(/already running/i)
    expect(boots()).toBe(before)
  })

  it('stops cleanly on SIGTERM, and status then answers from the database', async () => {
    agent.child.kill('SIGTERM')
    expect(await agent.exited).toBe(0)
    expect(agent.stdout()).toMatch(/"msg":"stopped"/)
    const r = await gatectl(['--data-dir', dataDir, '--json', 'status'])
    expect(r.code).toBe(5)
    const s = JSON.parse(r.stdout) as AgentStatus
    expect(s.daemon).toBe('down')
    expect(s.buffer.pending).toBeGreaterThan(0)
    const human = await gatectl(['--data-dir', dataDir, 'status'])
    expect(human.stdout).toMatch(/DOWN/)
  })
})

describe('crash safety', () => {
  it('loses no check-in whose decision was emitted when the agent is killed with SIGKILL', async () => {
    const tmp = tempDir()
    const dataDir = path.join(tmp.dir, 'data')
    const configFile = writeConfig(tmp.dir, {
      source: { sim: { participants: 3000, arrivalSpreadMs: 4_000, revoked: 50, unknown: 50, seed: 3 } },
    })
    const agent = spawnAgent(dataDir, [
      '--config',
      configFile,
      '--source',
      'sim',
      '--demo',
      '--log-level',
      'warn',
    ])
    try {
      await waitForAgent(agent)
      const client = await ControlClient.connect(path.join(dataDir, SOCKET_NAME), 2_000)
      const emitted: DecisionEvent[] = []
      await client.subscribe(['decisions'], (_s, d) => emitted.push(d as DecisionEvent))
      await eventually(() => emitted.length >= 300, 90_000)
      agent.child.kill('SIGKILL')
      expect(await agent.exited).toBe('SIGKILL')
      client.close()

      const db = new Database(path.join(dataDir, 'agent.db'), { readonly: true })
      const has = db.prepare('SELECT token, decision, reason, participant_id FROM checkins WHERE id = ?')
      const missing = emitted.filter((d) => has.get(d.id) === undefined)
      expect(missing).toEqual([])
      for (const d of emitted.slice(0, 50)) {
        expect(has.get(d.id)).toEqual({
          token: d.token,
          decision: d.decision,
          reason: d.reason,
          participant_id: d.participantId,
        })
      }
      db.close()

      // the next start recovers: same database, a new boot, and it keeps admitting
      const again = spawnAgent(dataDir, ['--config', configFile, '--source', 'sim'])
      try {
        await waitForAgent(again)
        const r = await gatectl(['--data-dir', dataDir, '--json', 'status'])
        const s = JSON.parse(r.stdout) as AgentStatus
        expect(s.daemon).toBe('running')
        expect(s.buffer.pending).toBeGreaterThanOrEqual(emitted.length)
      } finally {
        again.child.kill('SIGTERM')
        expect(await again.exited).toBe(0)
      }
    } finally {
      if (agent.child.exitCode === null && agent.child.signalCode === null) agent.child.kill('SIGKILL')
      tmp.cleanup()
    }
  })
})

describe('start-up failures are clear and leave data alone', () => {
  it('no Bluetooth adapter (this machine): exit 3 naming the cause and --source sim', async () => {
    const tmp = tempDir()
    try {
      const r = await runAgentToExit(['run', '--data-dir', tmp.dir, '--source', 'noble'])
      expect(r.code).toBe(3)
      expect(r.stderr).toMatch(/--source sim/)
      expect(r.stderr).toMatch(/EAFNOSUPPORT|adapter/i)
    } finally {
      tmp.cleanup()
    }
  })

  it('a bad command line: exit 2 with the usage, for gate-agent and gate-cloud as for gatectl', async () => {
    for (const args of [['run', '--bogus'], ['run', '--source', 'radio'], ['runn']]) {
      const r = await runAgentToExit(args)
      expect(r.code, `gate-agent ${args.join(' ')}`).toBe(2)
      expect(r.stderr).toMatch(/error: .*(unknown|invalid)/)
    }
    for (const args of [['serve', '--bogus'], ['gates', 'add'], ['servee']]) {
      const r = await cloudCli(args, {})
      expect(r.code, `gate-cloud ${args.join(' ')}`).toBe(2)
      expect(r.stderr).toMatch(/error: .*(unknown|missing)/)
    }
  })

  it('a bad config file: exit 2 listing every problem at once', async () => {
    const tmp = tempDir()
    try {
      const file = writeConfig(tmp.dir, {
        gateId: 'bad id!',
        proximity: { enterDbm: 5 },
        source: { kind: 'radio' },
      })
      const r = await runAgentToExit(['run', '--config', file, '--data-dir', tmp.dir])
      expect(r.code).toBe(2)
      expect(r.stderr).toMatch(/gateId/)
      expect(r.stderr).toMatch(/proximity\.enterDbm/)
      expect(r.stderr).toMatch(/source\.kind/)
    } finally {
      tmp.cleanup()
    }
  })

  it('a corrupted database: exit 4 with a clear message, and the file is not modified', async () => {
    const tmp = tempDir()
    try {
      const dbFile = path.join(tmp.dir, 'agent.db')
      const junk = Buffer.alloc(64 * 1024)
      Buffer.from('SQLite format 3\0').copy(junk)
      for (let i = 100; i < junk.length; i += 7) junk[i] = (i * 31) & 0xff
      writeFileSync(dbFile, junk)
      const before = createHash('sha256').update(readFileSync(dbFile)).digest('hex')
      const r = await runAgentToExit(['run', '--data-dir', tmp.dir, '--source', 'sim'])
      expect(r.code).toBe(4)
      expect(r.stderr).toMatch(/agent\.db/)
      expect(createHash('sha256').update(readFileSync(dbFile)).digest('hex')).toBe(before)
    } finally {
      tmp.cleanup()
    }
  })

  it('a foreign SQLite file is refused, not migrated over', async () => {
    const tmp = tempDir()
    try {
      const dbFile = path.join(tmp.dir, 'agent.db')
      const other = new Database(dbFile)
      other.exec(
        'CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount REAL); INSERT INTO invoices VALUES (1, 9.5)',
      )
      other.close()
      const r = await runAgentToExit(['run', '--data-dir', tmp.dir, '--source', 'sim'])
      expect(r.code).toBe(4)
      expect(r.stderr).toMatch(/not a gate agent database/i)
      const check = new Database(dbFile, { readonly: true })
      expect(check.prepare('SELECT amount FROM invoices').get()).toEqual({ amount: 9.5 })
      expect(check.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'checkins'").get()).toEqual({
        n: 0,
      })
      check.close()
    } finally {
      tmp.cleanup()
    }
  })
})
