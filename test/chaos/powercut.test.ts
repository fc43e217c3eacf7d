import { spawn } from 'node:child_process'
import { closeSync, fsyncSync, mkdirSync, openSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import Database from 'better-sqlite3'
import pg from 'pg'
import { afterAll, describe, expect, it } from 'vitest'
import { Crowd } from '../../agent/ble/sim/crowd.js'
import { agentConfigSchema } from '../../agent/config/schema.js'
import { ControlClient, SOCKET_NAME } from '../../agent/control/client.js'
import { importParticipants } from '../../cloud/participants/import.js'
import type { DecisionEvent } from '../../shared/control.js'
import { advertToLine, CAPTURE_FORMAT_VERSION } from '../../shared/replay.js'
import type { ParticipantStatus, RosterEntry } from '../../shared/roster.js'
import { freePort, tempDir } from '../support/helpers.js'
import { tempDatabase } from '../support/pg-helpers.js'
import {
  type AgentProcess,
  cleanEnv,
  eventually,
  GATECTL_BIN,
  spawnAgent,
  waitForAgent,
} from '../support/process-helpers.js'
import { account, type Cloud, drained, startCloud } from './gates.js'
import { type ChaosResult, writeResults } from './harness.js'
import { type LazyFs, lazyFsUnavailable, mountLazyFs, threadsOf } from './lazyfs/lazyfs.js'

// The durability promise against a power cut, not a SIGKILL: the gate's data directory is on lazyfs
// (test/chaos/lazyfs), where whatever was not fsynced is gone at a cut. POWERCUT_CUTS sets the number
// of cuts (50 by default; more for a longer run), POWERCUT_LATENCY_S the length of each slow-fsync run.

const CUTS = Number(process.env['POWERCUT_CUTS'] ?? 50)
const LATENCY_S = Number(process.env['POWERCUT_LATENCY_S'] ?? 10)
/** participants of the cloud roster whose every update changes every one of them */
const ROSTER_N = 2_000
/** entries of the roster file a technician imports with gatectl, each file changing every one */
const LOCAL_N = 3_000

const why = lazyFsUnavailable()
if (why) console.error(`power-cut suite skipped: ${why}`)

/** a line on stderr: where a long run is (vitest shows it as the test's output) */
const began = Date.now()
const progress = (msg: string) =>
  process.stderr.write(`powercut: ${((Date.now() - began) / 1000).toFixed(0)} s: ${msg}\n`)
/** run a step of the cut loop, and say so when it took long (a run of the suite must stay bounded) */
async function step<T>(what: string, fn: () => T | Promise<T>): Promise<T> {
  const t = Date.now()
  const watch = setInterval(
    () => progress(`still in ${what} after ${Math.round((Date.now() - t) / 1000)} s`),
    15_000,
  )
  try {
    const v = await fn()
    if (Date.now() - t > 5_000) progress(`${what} took ${((Date.now() - t) / 1000).toFixed(1)} s`)
    return v
  } finally {
    clearInterval(watch)
  }
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const rand = (lo: number, hi: number) => lo + Math.random() * (hi - lo)
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN
}

/** A decision as emitted: the fields the file must hold the same after a cut. */
type Emitted = Pick<DecisionEvent, 'id' | 'token' | 'decision' | 'reason' | 'bootId' | 'bootSeq' | 'ts'>

/** The cloud roster's generation g: participant i's status cycles with g, so every update changes every row. */
const rosterStatus = (i: number, g: number): ParticipantStatus =>
  (['active', 'revoked', 'inactive'] as const)[(i + g) % 3] as ParticipantStatus
const rosterGeneration = (g: number): RosterEntry[] =>
  Array.from({ length: ROSTER_N }, (_, i) => ({
    token: `fc${i.toString(16).padStart(10, '0')}`,
    participantId: `pc-${i}`,
    status: rosterStatus(i, g),
  }))

/**
 * A capture (shared/replay.ts) of the simulated crowd `sim` from `fromS` to `fromS + seconds` of its
 * virtual time: what a gate's radio hears at that moment of the event, to play with `--source replay`.
 */
function venueCapture(file: string, sim: Record<string, unknown>, fromS: number, seconds: number): string {
  const config = agentConfigSchema.parse({ gateId: 'capture', source: { sim } })
  const crowd = new Crowd(config.source.sim, config.decoders)
  crowd.advance(fromS * 1_000, () => {})
  const lines = [JSON.stringify({ capture: CAPTURE_FORMAT_VERSION, startedAt: new Date().toISOString() })]
  crowd.advance((fromS + seconds) * 1_000, (i, rssi, vt) =>
    lines.push(JSON.stringify(advertToLine(crowd.advert(i, rssi, vt), vt - fromS * 1_000))),
  )
  writeFileSync(file, `${lines.join('\n')}\n`)
  return file
}

/**
 * An MQTT broker in the test (aedes) that sees every fleet event a gate publishes. Holding, it
 * never acknowledges them (no PUBACK), so they stay queued in the gate's SQLite file; every event
 * it has seen was committed there before it was published.
 */
async function eventBroker(gateId: string) {
  const { Aedes } = await import('aedes')
  const seen = new Set<string>()
  const acked = new Map<string, number>()
  const state = { hold: false }
  const broker = await Aedes.createBroker({
    authorizePublish: (client, packet, done) => {
      if (client && packet.topic === `gates/${gateId}/events`) {
        const id = (JSON.parse(packet.payload.toString()) as { id: string }).id
        seen.add(id)
        if (state.hold) return // no answer: the gate keeps the event and sends it again
        acked.set(id, (acked.get(id) ?? 0) + 1)
      }
      done(null)
    },
  })
  const server = net.createServer(broker.handle)
  const port = await freePort()
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()))
  return {
    url: `mqtt://127.0.0.1:${port}`,
    seen,
    acked,
    state,
    close: async () => {
      await new Promise<void>((r) => broker.close(() => r()))
      await new Promise<void>((r) => server.close(() => r()))
    },
  }
}

/** A gate started on `dataDir`, each decision it emits on its control socket handed to `onDecision`. */
interface Gate {
  agent: AgentProcess
  tail: ControlClient
}

describe.skipIf(why !== null)('chaos: power cuts under a gate at venue load (lazyfs)', () => {
  const tmp = tempDir('powercut-')
  const rows: Array<Omit<ChaosResult, 'suite'>> = []
  let fs: LazyFs | null = null
  let db: Awaited<ReturnType<typeof tempDatabase>> | null = null
  let cloud: Cloud | null = null
  let pool: pg.Pool | null = null
  let broker: Awaited<ReturnType<typeof eventBroker>> | null = null
  const gates: Gate[] = []
  /** the cloud roster updates of the cut test, stopped at its end (or in afterAll if it failed) */
  const roster = { running: false, loop: Promise.resolve() }

  const setUp = async () => {
    if (fs) return
    fs = await mountLazyFs(path.join(tmp.dir, 'fs'))
    db = await tempDatabase()
    cloud = await startCloud(db.url)
    pool = new pg.Pool({ connectionString: db.url, max: 2 })
    broker = await eventBroker('pc-gate')
  }

  afterAll(async () => {
    roster.running = false
    await roster.loop.catch(() => {})
    for (const g of gates) g.tail.close()
    await fs?.unmount() // kills the gates still running on it
    await cloud?.stop('SIGKILL')
    await pool?.end()
    await broker?.close()
    await db?.drop().catch(() => {})
    tmp.cleanup()
  }, 120_000)

  /** The gate's data directory on the mount, made durable as an installer would leave it. */
  const dataDirOn = (name: string) => {
    const dir = path.join((fs as LazyFs).mountpoint, name)
    mkdirSync(dir, { recursive: true, mode: 0o750 })
    // systemd's StateDirectory made it long before the gate's first start: its name is on the disk
    const fd = openSync((fs as LazyFs).mountpoint, 'r')
    fsyncSync(fd)
    closeSync(fd)
    return dir
  }

  /** A config file named `name` (the gate id, unless `config` names another) outside the mount. */
  const writeConfig = (name: string, config: Record<string, unknown>) => {
    const file = path.join(tmp.dir, `${name}.json`)
    writeFileSync(file, JSON.stringify({ gateId: name, ...config }))
    return file
  }

  /**
   * Venue load: the simulated crowd (5,000 participants arriving over 150 s, ~2,000 adverts/s,
   * 30-40 decisions/s), fast-forwarded past its first minute and played from a capture: the sim
   * source starts its crowd from nobody at every start, and a gate restarted every few seconds
   * would never see more than its first arrivals. Several captures, each from another moment of the
   * crowd, so that a restart does not meet the same people again. The roster is the crowd's demo
   * roster (`--demo`, from the same sim settings).
   */
  const venue = (seed: number, captures: number) => {
    const sim = { participants: 5_000, arrivalSpreadMs: 150_000, seed, loop: true }
    const files = Array.from({ length: captures }, (_, k) =>
      venueCapture(path.join(tmp.dir, `venue-${seed}-${k}.jsonl`), sim, 40 + 20 * k, 25),
    )
    return files.map((file) => ({ kind: 'replay', replay: { file, speed: 1, loop: true }, sim }))
  }
  const quiet = { kind: 'sim', sim: { participants: 0, revoked: 0, unknown: 0, foreign: 0, seed: 1 } }
  const cloudSync = {
    batchSize: 100,
    syncIntervalMs: 200,
    baseBackoffMs: 100,
    maxBackoffMs: 1_000,
    rosterPullIntervalMs: 500,
  }

  // warnings too: what a gate says when something goes wrong (decisions are logged at info)
  const agentArgs = (config: string) => ['--config', config, '--demo', '--log-level', 'warn']
  const startGate = async (
    dataDir: string,
    config: string,
    env: Record<string, string>,
    onDecision: (d: DecisionEvent) => void,
  ): Promise<Gate> => {
    const agent = spawnAgent(dataDir, agentArgs(config), env)
    await waitForAgent(agent, 60_000)
    const tail = await ControlClient.connect(path.join(dataDir, SOCKET_NAME), 5_000)
    await tail.subscribe(['decisions'], (_s, d) => onDecision(d as DecisionEvent))
    const g = { agent, tail }
    gates.push(g)
    return g
  }
  /** how long each clean stop took, ms */
  const stopMs: number[] = []
  /** the handles named by each stop the process outlived (it then exits by itself after 1 s) */
  const stopsKept: string[] = []
  /** A clean stop (SIGTERM), which must end the process well within systemd's TimeoutStopSec (15 s). */
  const stopGate = async (g: Gate) => {
    g.tail.close()
    if (g.agent.child.exitCode === null && g.agent.child.signalCode === null) g.agent.child.kill('SIGTERM')
    const t = Date.now()
    const ended = await Promise.race([g.agent.exited.then(() => true), sleep(15_000).then(() => false)])
    stopMs.push(Date.now() - t)
    // the gate exits by itself 1 s after a stop that something outlived, and names what: a bug to see
    const kept = g.agent.stdout().match(/"handles":(\[[^\]]*\]).*kept the process/)
    if (kept) stopsKept.push(kept[1] as string)
    if (!ended) {
      const where = `the gate:\n${threadsOf(g.agent.child.pid)}\nthe lazyfs daemon:\n${threadsOf(fs?.daemonPid())}`
      g.agent.child.kill('SIGKILL')
      throw new Error(
        `the gate did not exit within 15 s of SIGTERM:\n${where}\n${g.agent.stderr()}\n${g.agent.stdout().slice(-4_000)}`,
      )
    }
  }

  /**
   * `gatectl roster import` of the technician's roster file number `g` (every entry named g<g>),
   * while the gate runs: ok once it said it was done, not if it was cut (killed, or failed on the
   * dead disk first), and how long it ran. Its process is in `importers` for the cut to kill with the gate.
   */
  const importers = new Set<number>()
  const importLocal = (dataDir: string, g: number): Promise<{ ok: boolean; ms: number }> => {
    const file = path.join(tmp.dir, `local-${g}.json`)
    const entries = Array.from({ length: LOCAL_N }, (_, i) => ({
      token: `fd${i.toString(16).padStart(10, '0')}`,
      participantId: `pl-${i}`,
      status: rosterStatus(i, g),
      name: `g${g}`,
    }))
    writeFileSync(file, JSON.stringify(entries))
    const child = spawn(process.execPath, [GATECTL_BIN, '--data-dir', dataDir, 'roster', 'import', file], {
      env: cleanEnv(),
      stdio: 'ignore',
    })
    if (child.pid) importers.add(child.pid)
    const t = performance.now()
    return new Promise((resolve) =>
      child.once('exit', (code) => {
        if (child.pid) importers.delete(child.pid)
        resolve({ ok: code === 0, ms: performance.now() - t })
      }),
    )
  }

  /**
   * What the gate's file holds now (read while it runs: a WAL reader sees committed transactions
   * only). Opened and closed in one go: the test process never holds a file on the mount at a cut.
   */
  const readFile = (dataDir: string) => {
    const f = new Database(path.join(dataDir, 'agent.db'), { readonly: true, fileMustExist: true })
    try {
      return f.transaction(() => ({
        checkins: f
          .prepare(
            'SELECT id, token, decision, reason, boot_id AS bootId, boot_seq AS bootSeq, wall_ms AS ts FROM checkins',
          )
          .all() as Emitted[],
        roster: f
          .prepare("SELECT participant_id AS p, status FROM roster WHERE participant_id LIKE 'pc-%'")
          .all() as Array<{ p: string; status: ParticipantStatus }>,
        local: f
          .prepare("SELECT participant_id AS p, status, name FROM roster WHERE participant_id LIKE 'pl-%'")
          .all() as Array<{ p: string; status: ParticipantStatus; name: string }>,
        cursor: Number(
          (f.prepare("SELECT value FROM meta WHERE key = 'roster_cursor'").pluck().get() as
            | string
            | undefined) ?? 0,
        ),
        check: String(f.pragma('quick_check', { simple: true })),
      }))()
    } finally {
      f.close()
    }
  }

  /** Emitted decisions missing from the file, or held there with other fields. */
  const missing = (emitted: Map<string, Emitted>, inFile: Emitted[]) => {
    const byId = new Map(inFile.map((r) => [r.id, r]))
    return [...emitted.values()].filter((e) => {
      const r = byId.get(e.id)
      return (
        !r ||
        r.token !== e.token ||
        r.decision !== e.decision ||
        r.reason !== e.reason ||
        r.bootId !== e.bootId ||
        r.bootSeq !== e.bootSeq ||
        r.ts !== e.ts
      )
    })
  }
  const keep = (emitted: Map<string, Emitted>) => (d: DecisionEvent) =>
    emitted.set(d.id, {
      id: d.id,
      token: d.token,
      decision: d.decision,
      reason: d.reason,
      bootId: d.bootId,
      bootSeq: d.bootSeq,
      ts: d.ts,
    })

  it(
    `keeps every emitted decision, the roster whole and every fleet event through ${CUTS} power cuts`,
    async () => {
      await setUp()
      const lfs = fs as LazyFs
      const gateId = 'pc-gate'
      const key = await (cloud as Cloud).addGate(gateId)
      const env = { GATE_CLOUD_URL: (cloud as Cloud).url, GATE_KEY: key }
      const b = broker as NonNullable<typeof broker>
      const mqtt = { url: b.url, metricsIntervalMs: 1_000, diskLowBytes: 2 ** 52 } // disk_low: one event per start
      const dataDir = dataDirOn(gateId)
      const busy = venue(21, 4).map((source, k) =>
        writeConfig(`${gateId}-${k}`, { gateId, source, dedup: { windowMs: 5_000 }, cloud: cloudSync, mqtt }),
      )
      const anyBusy = () => busy[Math.floor(Math.random() * busy.length)] as string

      // the cloud roster changes every second (every participant at once) while the gate pulls it
      const gens = new Map<number, number>() // cursor (max roster_seq) -> generation
      roster.running = true
      roster.loop = (async () => {
        const p = pool as pg.Pool
        for (let g = 1; roster.running; g++) {
          await importParticipants(p, rosterGeneration(g))
          const s = await p.query<{ s: string }>(
            "SELECT max(roster_seq)::text AS s FROM participants WHERE id LIKE 'pc-%'",
          )
          gens.set(Number(s.rows[0]?.s), g)
          await sleep(1_000)
        }
      })()

      /** The cloud roster must be one whole generation, the one its cursor says it pulled; returns it. */
      const cloudGenerationOf = async (r: ReturnType<typeof readFile>): Promise<number> => {
        if (r.roster.length === 0) return 0
        const g = await eventually(() => gens.get(r.cursor), 10_000, 50)
        const wrong = r.roster.filter((x) => x.status !== rosterStatus(Number(x.p.slice(3)), g))
        expect(
          { rows: r.roster.length, wrong: wrong.length },
          `cloud roster at cursor ${r.cursor} (generation ${g}) is a mix`,
        ).toEqual({ rows: ROSTER_N, wrong: 0 })
        return g
      }
      /** The roster imported with gatectl must be one whole file: returns its generation (0: none yet). */
      const localGenerationOf = (r: ReturnType<typeof readFile>): number => {
        if (r.local.length === 0) return 0
        const files = [...new Set(r.local.map((x) => x.name))]
        const g = Number(files[0]?.slice(1))
        const wrong = r.local.filter((x) => x.status !== rosterStatus(Number(x.p.slice(3)), g)).length
        expect(
          { rows: r.local.length, files: files.length, wrong },
          `roster imported with gatectl is a mix (${files.join(', ')})`,
        ).toEqual({ rows: LOCAL_N, files: 1, wrong: 0 })
        return g
      }

      const emitted = new Map<string, Emitted>()
      let dropped = 0
      let torn = 0
      const eventsQueuedAtCut = new Set<string>()
      const cloudGens = new Set<number>()
      const cutsWhen = { starting: 0, restarted: 0 }
      /** gatectl roster imports: finished before the cut, or cut (killed, or failed on the dead disk) */
      const local = { tried: 0, done: 0, cutOld: 0, cutNew: 0 }
      /** the roster file generation in the gate's file since the last import ended */
      let hasLocal = 0
      /** the import the last cut fell on (or after), resolved by the next run's check */
      let pending: Promise<{ ok: boolean; ms: number }> | null = null
      /** about how long an import takes here (node's start, the file, the transaction), ms: the cut aims at its end */
      let importMs = 2_000
      const t0 = Date.now()
      for (let i = 0; i <= CUTS; i++) {
        // the gate must start cleanly on what the last cut left (a corrupted file would refuse it)
        const gate = await step('start', () => startGate(dataDir, anyBusy(), env, keep(emitted)))
        const r = await step('read', () => readFile(dataDir))
        expect(r.check, `quick_check after cut ${i}`).toBe('ok')
        expect(missing(emitted, r.checkins), `emitted decisions missing after cut ${i}`).toEqual([])
        cloudGens.add(await step('cloud roster', () => cloudGenerationOf(r)))
        const g = localGenerationOf(r)
        if (pending) {
          // after the cut: the file before, or the one imported, whole
          expect([hasLocal, hasLocal + 1], 'an interrupted import left neither roster').toContain(g)
          const done = await step('import', () => pending as NonNullable<typeof pending>)
          // aim the next cut at the commit: later if this one came before it, earlier if after
          if (done.ok) {
            local.done++
            expect(g, 'a roster import that finished is not in the file').toBe(hasLocal + 1)
            importMs = 0.8 * importMs + 0.2 * done.ms
          } else if (g > hasLocal) local.cutNew++
          else {
            local.cutOld++
            importMs *= 1.1
          }
          hasLocal = g
          pending = null
        } else expect(g).toBe(hasLocal)
        if (i === CUTS) {
          await stopGate(gate)
          break
        }
        // most runs end with their fleet event unacknowledged by the broker, so still queued at the cut
        b.state.hold = Math.random() < 0.7
        // where the cut falls: mostly while the gate decides at venue load; one run in ten while it
        // starts again after a clean stop (the stop checkpointed and deleted the WAL, unsynced: it
        // may come back), one in ten shortly after such a restart
        const when = i % 10 === 5 ? 'starting' : i % 10 === 9 ? 'restarted' : 'deciding'
        let importing: ReturnType<typeof importLocal> | null = null
        let victim: AgentProcess = gate.agent
        let tail: ControlClient | null = gate.tail
        if (when === 'deciding') {
          // every other run, a technician imports the next roster file with gatectl while the gate
          // decides, and the cut comes near the end of the import, where its transaction is
          importing = i % 2 === 0 ? importLocal(dataDir, hasLocal + 1) : null
          if (importing) local.tried++
          await sleep(importing ? rand(0.6, 1.1) * importMs : rand(200, 1_500))
        } else {
          await sleep(rand(200, 800))
          await stopGate(gate)
          if (when === 'starting') {
            victim = spawnAgent(dataDir, agentArgs(anyBusy()), env)
            tail = null
            await sleep(rand(100, 1_500))
          } else {
            const again = await step('restart', () => startGate(dataDir, anyBusy(), env, keep(emitted)))
            victim = again.agent
            tail = again.tail
            await sleep(rand(0, 600))
          }
          cutsWhen[when]++
        }
        for (const id of b.seen) if (!b.acked.has(id)) eventsQueuedAtCut.add(id)
        // the power goes for the whole gate: the agent, and the technician's gatectl if it runs
        const cut = await step('cut', () =>
          lfs.cut({ torn: i % 2 === 1, pids: [victim.child.pid as number, ...importers] }),
        )
        tail?.close()
        await step('exit', () => victim.exited)
        dropped += cut.droppedBytes
        if (i % 2 === 1) torn++
        pending = importing
        if ((i + 1) % 10 === 0 || i === 0)
          progress(`cut ${i + 1}/${CUTS}: ${emitted.size} decisions emitted so far, none lost`)
      }
      const cutsS = (Date.now() - t0) / 1000
      roster.running = false
      await roster.loop

      // after the last cut: the gate starts once more, checked, then without a crowd, with the broker
      // acknowledging, until everything it holds is in Postgres and every event the broker ever saw
      // was delivered
      progress(`${CUTS} cuts in ${Math.round(cutsS)} s; final sync`)
      b.state.hold = false
      const calm = writeConfig(`${gateId}-calm`, {
        gateId, // the same gate, without its crowd
        source: quiet,
        dedup: { windowMs: 5_000 },
        cloud: cloudSync,
        mqtt,
      })
      const final = await startGate(dataDir, calm, env, keep(emitted))
      await drained(dataDir, 120_000)
      progress('drained; waiting for the fleet events')
      // (not met in time: the expectation below names the events never delivered)
      await eventually(() => [...b.seen].every((id) => b.acked.has(id)), 60_000, 250).catch(() => {})
      await stopGate(final)

      const acc = await account((db as NonNullable<typeof db>).url, gateId, dataDir, emitted.keys())
      const eventsDuplicated = [...b.acked.values()].reduce((x, y) => x + y - 1, 0)
      expect(acc.emitted).toBeGreaterThan(CUTS * 5)
      expect(acc.integrity).toBe('ok')
      expect(acc.lostFromFile, 'emitted decisions missing from the file').toBe(0)
      expect(acc.lostFromCloud, 'emitted decisions missing from Postgres').toBe(0)
      expect(acc.doubled, 'records stored twice in Postgres').toBe(0)
      expect(acc.notSynced, 'rows of the file never synced').toBe(0)
      expect(acc.foreign, 'records in Postgres the file does not hold').toBe(0)
      expect(
        [...b.seen].filter((id) => !b.acked.has(id)),
        'fleet events seen but never delivered',
      ).toEqual([])
      expect(b.seen.size).toBeGreaterThan(CUTS / 4)

      rows.push(
        {
          what: `power cut (lazyfs: unsynced writes dropped; every 2nd cut torn: a random half of the unsynced pages kept) under a gate at venue load, syncing; restarted on what survived (${Math.round(cutsS)} s)`,
          tried: CUTS,
          outcome: `started cleanly every time, quick_check ok; ${stopMs.length} clean stops (SIGTERM), median ${pct(stopMs, 50)} ms, slowest ${Math.max(...stopMs)} ms, ${stopsKept.length} held by a handle after the stop${stopsKept.length ? ` (${[...new Set(stopsKept)].join('; ')})` : ''}; ${cutsWhen.starting} cut while the gate started, ${cutsWhen.restarted} just after a clean stop and restart, the rest while deciding; ${torn} torn; ${(dropped / 1024 / 1024).toFixed(1)} MB of unsynced writes thrown away`,
        },
        {
          what: 'decisions emitted (seen live on the control socket), checked in the SQLite file after every cut and in Postgres after the final sync',
          tried: acc.emitted,
          outcome: `each in the file with the same fields; in Postgres exactly once (${acc.doubled} doubled)`,
          lost: acc.lostFromFile + acc.lostFromCloud,
        },
        {
          what: `cloud roster (${ROSTER_N.toLocaleString('en-US')} participants, every one changed per update every second, pulled every 0.5 s): the gate's roster after each cut`,
          tried: CUTS + 1,
          outcome: `always one whole generation, the one its cursor names (${cloudGens.size} generations seen); never a mix`,
        },
        {
          what: `roster files (${LOCAL_N.toLocaleString('en-US')} entries, every one changed) imported with gatectl while the gate runs, the cut falling at a random moment of the import`,
          tried: local.tried,
          outcome: `${local.done} finished before the cut and were whole in the file; ${local.cutOld + local.cutNew} cut: ${local.cutOld} left the old roster whole, ${local.cutNew} the new one; never a mix`,
        },
        {
          what: 'fleet events (MQTT, QoS 1) the broker saw (so committed on the gate), most left unacknowledged at the cut',
          tried: b.seen.size,
          outcome: `all delivered after the restarts (${eventsQueuedAtCut.size} of them still queued at a cut; ${eventsDuplicated} delivered twice: at least once, as the reporter promises)`,
          lost: [...b.seen].filter((id) => !b.acked.has(id)).length,
        },
      )
      writeResults('powercut', rows)
    },
    CUTS * 20_000 + 240_000,
  )

  it('catches the loss when the disk lies about fsync (the test can fail)', async () => {
    await setUp()
    const lfs = fs as LazyFs
    const gateId = 'pc-liar'
    const dataDir = dataDirOn(gateId)
    const config = writeConfig(gateId, { source: venue(22, 1)[0], dedup: { windowMs: 5_000 } })
    const emitted = new Map<string, Emitted>()
    let lost: Emitted[] = []
    let tries = 0
    while (lost.length === 0 && tries < 3) {
      tries++
      const gate = await startGate(dataDir, config, {}, keep(emitted))
      await sleep(2_000)
      // from now on fsync succeeds and keeps nothing: the decisions emitted now are on no disk
      await lfs.ignoreFsync(true)
      const before = emitted.size
      await eventually(() => emitted.size > before + 10, 30_000, 50)
      await lfs.cut({ pids: [gate.agent.child.pid as number] })
      gate.tail.close()
      await gate.agent.exited
      const check = await startGate(dataDir, config, {}, () => {})
      lost = missing(emitted, readFile(dataDir).checkins)
      await stopGate(check)
    }
    expect(lost.length, 'emitted decisions lost when fsync is ignored').toBeGreaterThan(0)
    rows.push({
      what: 'negative control: the same check with a disk that ignores fsync (lazyfs ignore-fsync) before the cut',
      tried: tries,
      outcome: `caught: ${lost.length} of ${emitted.size} emitted decisions missing from the file after the cut`,
    })
    writeResults('powercut', rows)
  }, 180_000)

  it(
    `measures the decision latency at venue load with slow fsync (an SD card: 20-100 ms per fsync)`,
    async () => {
      await setUp()
      const lfs = fs as LazyFs
      const runs: Array<{ label: string; lo: number; hi: number }> = [
        { label: 'fsync as fast as lazyfs goes', lo: 0, hi: 0 },
        { label: 'slow fsync, 20-100 ms each', lo: 20, hi: 100 },
      ]
      for (const run of runs) {
        const gateId = `pc-sd-${run.hi}`
        const key = await (cloud as Cloud).addGate(gateId)
        const dataDir = dataDirOn(gateId)
        // the same crowd (seed) for both runs
        const config = writeConfig(gateId, {
          source: venue(23, 1)[0],
          dedup: { windowMs: 5_000 },
          cloud: cloudSync,
        })
        await lfs.setFsyncDelay(run.lo, run.hi)
        const lat: number[] = []
        let warm = false
        const gate = await startGate(
          dataDir,
          config,
          { GATE_CLOUD_URL: (cloud as Cloud).url, GATE_KEY: key },
          (d) => {
            if (warm) lat.push(d.latencyMs)
          },
        )
        await sleep(2_000) // start-up and the first of the crowd
        warm = true
        const before = await lfs.stats()
        const t = Date.now()
        await sleep(LATENCY_S * 1_000)
        const s = (Date.now() - t) / 1000
        const after = await lfs.stats()
        await stopGate(gate)
        await lfs.setFsyncDelay(0, 0)
        expect(lat.length).toBeGreaterThan(LATENCY_S * 5)
        const fsyncs = after.fsyncs + after.dirsyncs - before.fsyncs - before.dirsyncs
        rows.push({
          what: `decision latency (advert to emitted, after its commit) at venue load, ${run.label} (${Math.round(s)} s)`,
          tried: lat.length,
          outcome: `p50 ${pct(lat, 50).toFixed(1)} ms, p99 ${pct(lat, 99).toFixed(1)} ms, max ${Math.max(...lat).toFixed(1)} ms; ${(lat.length / s).toFixed(1)} decisions/s, ${(fsyncs / s).toFixed(1)} fsyncs/s`,
        })
      }
      writeResults('powercut', rows)
    },
    LATENCY_S * 2_000 + 180_000,
  )
})
