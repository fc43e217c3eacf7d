import type { Queryable } from '../db/pool.js'
import { eventInfo } from './event-figures.js'
import { peakOccupancy } from './zone-minutes.js'

/** An event's report: what an organiser hands on after the doors close. */
export interface EventReport {
  eventId: string
  name: string
  timeZone: string
  expected: number
  arrived: number
  /** first arrivals by hour of the event's local time */
  arrivalsByHour: Array<{ hour: string; arrivals: number }>
  /** the busiest local hour of arrivals (null: none yet) */
  busiestHour: { hour: string; arrivals: number } | null
  decisions: { admits: number; denials: number }
  denialsByReason: Record<string, number>
  /** each zone's highest occupancy: entries minus exits, minute by minute */
  peakOccupancy: Array<{ zone: string; peak: number; at: string | null }>
  from: string | null
  to: string | null
  at: string
}

/**
 * The report of one event from its rollups, a few rows per minute: arrivals, decisions, denials,
 * and each zone's peak occupancy (zone-minutes.ts: entries minus exits, at minute resolution;
 * zones that reset daily are counted across days here, the peak of the whole event).
 */
export async function eventReport(db: Queryable, eventId: string): Promise<EventReport> {
  const info = await eventInfo(db, eventId)
  const [counts, hours, decisions, peaks] = await Promise.all([
    db.query<{ expected: string; arrived: string }>(
      `SELECT (SELECT count(*) FROM participants WHERE event_id = $1 AND status = 'active') AS expected,
              (SELECT coalesce(sum(n), 0) FROM arrival_minutes WHERE event_id = $1) AS arrived`,
      [eventId],
    ),
    db.query<{ hour: string; n: string }>(
      `SELECT to_char(date_trunc('hour', minute AT TIME ZONE $2), 'YYYY-MM-DD"T"HH24:00') AS hour, sum(n) AS n
         FROM arrival_minutes WHERE event_id = $1 GROUP BY 1 HAVING sum(n) <> 0 ORDER BY 1`,
      [eventId, info.timeZone],
    ),
    db.query<{ decision: string; reason: string; n: string; first: Date; last: Date }>(
      `SELECT decision, reason, sum(n) AS n, min(minute) AS first, max(minute) AS last
         FROM decision_minutes WHERE event_id = $1 GROUP BY decision, reason`,
      [eventId],
    ),
    peakOccupancy(db, eventId),
  ])
  const denialsByReason: Record<string, number> = {}
  let admits = 0
  let denials = 0
  let from: Date | null = null
  let to: Date | null = null
  for (const r of decisions.rows) {
    const n = Number(r.n)
    if (!from || r.first < from) from = r.first
    if (!to || r.last > to) to = r.last
    // an annulment is a denial that takes back an admit: the admit did not happen
    if (r.reason === 'not_passed') admits -= n
    else if (r.decision === 'admit') admits += n
    else {
      denials += n
      denialsByReason[r.reason] = (denialsByReason[r.reason] ?? 0) + n
    }
  }
  const arrivalsByHour = hours.rows.map((x) => ({ hour: x.hour, arrivals: Number(x.n) }))
  const busiestHour = arrivalsByHour.reduce<EventReport['busiestHour']>(
    (best, h) => (best === null || h.arrivals > best.arrivals ? h : best),
    null,
  )
  return {
    eventId,
    name: info.name,
    timeZone: info.timeZone,
    expected: Number(counts.rows[0]?.expected ?? 0),
    arrived: Number(counts.rows[0]?.arrived ?? 0),
    arrivalsByHour,
    busiestHour,
    decisions: { admits: Math.max(0, admits), denials },
    denialsByReason,
    peakOccupancy: peaks,
    from: from?.toISOString() ?? null,
    // the last minute's end
    to: to ? new Date(to.getTime() + 60_000).toISOString() : null,
    at: new Date().toISOString(),
  }
}
