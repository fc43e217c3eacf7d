import type { Checkin } from '../../shared/checkin.js'
import type { MachineMono } from '../clock.js'
import { type Db, setMeta } from './db.js'
import { CHECKIN_COLUMNS } from './outbox-queries.js'

// The re-entry window is rebuilt at start from the decisions in the file. Their wall-clock times
// cannot say how long ago they were made when the clock has jumped since (NTP stepping a Pi without
// a real-time clock, by hours): a clock gone back made decisions of a minute ago look "in the
// future" (not believed, so the people admitted were admitted again), a clock gone forward made
// them look hours old (outside the window, admitted again). Within one boot of the machine its
// monotonic clock runs on across restarts of the agent and never jumps: each run records where its
// own monotonic clock (a check-in's mono_ms) lies on the machine's, and a decision of an earlier
// run of the same machine boot is dated by it. Only decisions of an earlier machine boot are left
// to the wall clock.

/** meta key prefix of a run's place on the machine's monotonic clock, by boot id */
const KEY = 'mono_origin:'

/** a check-in's columns, and its row number (the order decisions were made in) */
const COLUMNS = `seq_no AS seq, ${CHECKIN_COLUMNS}`

/** A recorded decision and, when the machine's monotonic clock says it, how long ago it was made (ms). */
export type RecentDecision = Checkin & { ageMs: number | null }

/**
 * Record where this run's monotonic clock lies on the machine's (read by the next start), and forget
 * the runs of earlier machine boots (their places mean nothing any more).
 */
export function recordRun(db: Db, bootId: string, machine: MachineMono): void {
  db.transaction(() => {
    db.prepare(`DELETE FROM meta WHERE key LIKE '${KEY}%' AND json_extract(value, '$.boot') IS NOT ?`).run(
      machine.boot,
    )
    setMeta(db, `${KEY}${bootId}`, JSON.stringify(machine))
  })()
}

/**
 * The decisions that may be inside the re-entry window now, oldest first: those of earlier runs in
 * this machine boot made less than `windowMs` ago by the machine's monotonic clock (with their
 * age), and those of earlier machine boots whose wall-clock time is within the window (age null:
 * the wall clock alone dates them). `machine` null: the wall clock dates all of them.
 */
export function recentDecisions(
  db: Db,
  opts: { windowMs: number; wallNow: number; machine: MachineMono | null; monoNow: number },
): RecentDecision[] {
  const origins = new Map<string, number>()
  if (opts.machine) {
    const rows = db.prepare(`SELECT key, value FROM meta WHERE key LIKE '${KEY}%'`).all() as Array<{
      key: string
      value: string
    }>
    for (const entry of rows) {
      const run = JSON.parse(entry.value) as MachineMono
      if (run.boot === opts.machine.boot) origins.set(entry.key.slice(KEY.length), run.originMs)
    }
  }
  type Row = Checkin & { seq: number }
  const found: Array<{ seq: number; decision: RecentDecision }> = []
  if (opts.machine && origins.size > 0) {
    // the newest rows first (seq_no order is the order they were made, whatever the wall clock
    // said): stop at the first made before the window, or of a run this boot has no place for
    const machineNow = opts.machine.originMs + opts.monoNow
    for (const row of db
      .prepare(`SELECT ${COLUMNS} FROM checkins ORDER BY seq_no DESC`)
      .iterate() as Iterable<Row>) {
      const origin = origins.get(row.bootId)
      if (origin === undefined) break
      const ageMs = Math.max(0, machineNow - (origin + row.monoMs))
      if (ageMs >= opts.windowMs) break
      const { seq, ...checkin } = row
      found.push({ seq, decision: { ...checkin, ageMs } })
    }
  }
  // decisions of runs this boot has no place for: the wall clock's word, as before
  const byWall = db
    .prepare(`SELECT ${COLUMNS} FROM checkins WHERE wall_ms >= ? ORDER BY seq_no`)
    .all(opts.wallNow - opts.windowMs) as Row[]
  for (const row of byWall) {
    if (origins.has(row.bootId)) continue
    const { seq, ...checkin } = row
    found.push({ seq, decision: { ...checkin, ageMs: null } })
  }
  return found.sort((a, b) => a.seq - b.seq).map((x) => x.decision)
}
