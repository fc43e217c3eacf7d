/**
 * The ingest benchmark's last phase: a gate back online with a day's backlog of buffered check-ins
 * drains it to the cloud while it keeps deciding, and its decision latency is measured meanwhile.
 */
import path from 'node:path'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import type pg from 'pg'
import { GateAgent } from '../../agent/agent.js'
import { PushSource } from '../../agent/ble/push-source.js'
import { systemClock } from '../../agent/clock.js'
import { agentConfigSchema } from '../../agent/config/schema.js'
import { openDatabase } from '../../agent/store/db.js'
import type { DecisionEvent } from '../../shared/control.js'
import { startFsyncProbe } from './fsync-probe.js'
import { scheduleAsAGate } from './gate-scheduling.js'
import { BENCH_EVENT, bufferBacklog, type Checkins } from './workload.js'

/** What the drain measured. */
export interface Drain {
  /** until every buffered row was synced; NaN if not within 5 minutes */
  seconds: number
  /** the gate's records in Postgres at the end (the backlog and the decisions made meanwhile) */
  inPostgres: number
  /** each decision's latency during the drain, ms */
  decisionLat: number[]
  /** how the agent's event loop was scheduled */
  scheduling: string
  /** times the sync went down to one batch at a time for slow decision commits */
  drainYields: number
  /** the agent's durable commits, p50 and p99, ms */
  commitP50: number
  commitP99: number
  /** the disk baseline's syncs, ms */
  diskLat: number[]
  /** the agent's event-loop delay, p50 and p99, ms */
  loopP50: number
  loopP99: number
}

/**
 * Gate `gateId` (key `gateKey`) with `backlog` check-ins in its files under `dir` syncs to the service
 * at `url`; `importRoster` puts the backlog's participants on the venue's roster first.
 */
export async function backlogDrain(o: {
  sql: pg.Client
  url: string
  gateId: string
  gateKey: string | undefined
  dir: string
  backlog: number
  checkins: Checkins
  importRoster: (upTo: number) => Promise<void>
}): Promise<Drain> {
  const { sql, url, gateId, checkins } = o
  // phases are kept apart: Postgres writes out what the phases above left dirty now, not during the
  // drain (a gate coming back finds the cloud in its own state, not flushing this benchmark's 1.6
  // million rows); the disk baseline below shows what the disk gives during the drain all the same
  await sql.query('CHECKPOINT')
  // the roster for the backlog's records and the badges the gate sees during the drain, before the
  // backlog is made: its records' times end when it is made, as a gate's would when it comes back
  const tokens = Array.from({ length: 500 }, (_, i) => (0x5000 + i).toString(16).padStart(16, '0'))
  await sql.query(
    `INSERT INTO participants (id, event_id, token, status)
     SELECT 'B-' || (i - 1), $2, t, 'active' FROM unnest($1::text[]) WITH ORDINALITY AS x(t, i)`,
    [tokens, BENCH_EVENT],
  )
  await o.importRoster(checkins.made + o.backlog)
  // the gate was deciding all day with its roster: it has pulled every change there is (a gate
  // starting from nothing would pull the whole venue's roster first, here millions of entries)
  const rosterCursor = Number((await sql.query('SELECT last_value AS n FROM roster_seq')).rows[0].n)
  const dataDir = path.join(o.dir, 'gate')
  const config = agentConfigSchema.parse({
    gateId,
    dataDir,
    source: { kind: 'sim' },
    cloud: {
      url,
      gateKey: o.gateKey,
      batchSize: Number(process.env['BENCH_SYNC_BATCH'] ?? 1_000),
      concurrency: Number(process.env['BENCH_SYNC_CONCURRENCY'] ?? 4),
      drainYieldCommitMs: Number(process.env['BENCH_DRAIN_YIELD_MS'] ?? 4),
      syncIntervalMs: 1_000,
      rosterPullIntervalMs: 600_000,
    },
    log: { level: 'warn' },
    ...(process.env['BENCH_CHECKPOINT'] ? { outbox: { checkpoint: process.env['BENCH_CHECKPOINT'] } } : {}),
  })
  bufferBacklog(checkins, dataDir, gateId, o.backlog)
  const source = new PushSource()
  const agent = new GateAgent({
    config,
    clock: systemClock,
    log: (await import('pino')).pino({ level: 'silent' }),
    makeSource: () => source,
    beforeStart: ({ roster }) => {
      roster.importEntries(
        tokens.map((t, i) => ({ token: t, participantId: `B-${i}`, status: 'active' as const })),
      )
      roster.applyDelta([], rosterCursor)
    },
  })
  await agent.start()
  const scheduling = scheduleAsAGate()
  const decisionLat: number[] = []
  agent.pipelineForTests?.on('decision', (d: DecisionEvent) => decisionLat.push(d.latencyMs))
  // what else the gate's event loop and disk go through during the drain
  const eld = monitorEventLoopDelay({ resolution: 1 })
  eld.enable()
  agent.outboxForTests?.commitLatencyUs.reset()
  const disk = startFsyncProbe(path.join(dataDir, 'fsync-probe.bin'))
  // the baseline process is scheduled as the agent's event loop is
  scheduling.sameFor(disk.pid)
  const d0 = performance.now()
  let k = 0
  // a busy door: a new badge every 20 ms (three adverts each), for as long as the drain takes
  const feeder = setInterval(() => {
    const t = tokens[k++ % tokens.length] as string
    const mfg = Buffer.concat([Buffer.from('ffffca11', 'hex'), Buffer.from(t, 'hex')])
    for (let i = 0; i < 3; i++)
      source.push({
        address: 'c0:00:00:00:00:02',
        rssi: -45,
        manufacturerData: mfg,
        ts: systemClock.mono(),
      })
  }, 20)
  let drainSeconds = Number.NaN
  // drained: every row buffered before the gate came back is marked synced in its SQLite file (the
  // agent marks a row only after the cloud's answer). Decisions made during the drain keep coming
  // every 20 ms and are synced as they come, so "nothing pending" is not the test.
  const probe = openDatabase(path.join(dataDir, 'agent.db'), { readonly: true })
  // (an index probe, not a count: this process is the agent, and a count would block its loop)
  const backlogLeft = probe
    .prepare('SELECT EXISTS (SELECT 1 FROM checkins WHERE state < 2 AND seq_no <= ?)')
    .pluck()
  for (;;) {
    if (backlogLeft.get(o.backlog) === 0) {
      drainSeconds = (performance.now() - d0) / 1000
      break
    }
    if (performance.now() - d0 > 300_000) break
    await new Promise((r) => setTimeout(r, 50))
  }
  probe.close()
  clearInterval(feeder)
  eld.disable()
  const diskLat = await disk.stop()
  const commits = agent.outboxForTests?.commitLatencyUs
  const commitP = (p: number) => (commits ? commits.percentile(p) / 1000 : Number.NaN)
  // the last decisions made during the drain reach the cloud too (checked below: exactly once each)
  for (let i = 0; i < 200; i++) {
    const b = agent.status().buffer
    if (b.pending === 0 && b.inFlight === 0) break
    await new Promise((r) => setTimeout(r, 50))
  }
  const drainYields = agent.syncStatus().drainYields ?? 0
  await agent.stop()
  const remote = await sql.query(`SELECT count(*)::int AS n FROM attendance_records WHERE gate_id = $1`, [
    gateId,
  ])
  return {
    seconds: drainSeconds,
    inPostgres: remote.rows[0].n,
    decisionLat,
    scheduling: scheduling.describe(),
    drainYields,
    commitP50: commitP(50),
    commitP99: commitP(99),
    diskLat,
    loopP50: eld.percentile(50) / 1e6,
    loopP99: eld.percentile(99) / 1e6,
  }
}
