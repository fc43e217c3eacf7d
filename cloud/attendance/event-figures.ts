import { GateError } from '../../shared/errors.js'
import { zoneOccupancy } from '../access/occupancy.js'
import type { Queryable } from '../db/pool.js'

/** An event's name and the time zone its figures by hour and day are in. */
export async function eventInfo(
  db: Queryable,
  eventId: string,
): Promise<{ eventId: string; name: string; timeZone: string }> {
  const r = await db.query<{ name: string; time_zone: string }>(
    'SELECT name, time_zone FROM events WHERE id = $1',
    [eventId],
  )
  const row = r.rows[0]
  if (!row) throw new GateError('E_NOT_FOUND', `no event ${eventId}`)
  return { eventId, name: row.name, timeZone: row.time_zone }
}

/** Denials by reason, over a recent span. */
export type DenialsByReason = Record<string, number>

/** What the people who run an event look at first (the console's attendance page). */
export interface AttendanceSummary {
  eventId: string
  name: string
  timeZone: string
  /** active participants of the event */
  expected: number
  /** participants admitted at least once (annulled admits left out) */
  arrived: number
  /** the last 60 minutes, oldest first: admits and denials per minute */
  perMinute: Array<{ minute: string; admits: number; denials: number }>
  denials: { last5: DenialsByReason; last60: DenialsByReason }
  /** each zone's occupancy against its capacity; empty without an access policy */
  zones: Array<{ zone: string; name: string; occupancy: number; capacity: number | null }>
  at: string
}

/**
 * The attendance summary of one event, from the rollups the ingest keeps (rollups.ts): arrived
 * against expected, the last hour by minute, denials by reason over 5 and 60 minutes, occupancy.
 */
export async function attendanceSummary(
  db: Queryable,
  eventId: string,
  now: number,
): Promise<AttendanceSummary> {
  const info = await eventInfo(db, eventId)
  const since = new Date(Math.floor(now / 60_000) * 60_000 - 59 * 60_000)
  const [counts, minutes, zones] = await Promise.all([
    db.query<{ expected: string; arrived: string }>(
      `SELECT (SELECT count(*) FROM participants WHERE event_id = $1 AND status = 'active') AS expected,
              (SELECT coalesce(sum(n), 0) FROM arrival_minutes WHERE event_id = $1) AS arrived`,
      [eventId],
    ),
    db.query<{ minute: Date; decision: string; reason: string; n: string }>(
      `SELECT minute, decision, reason, sum(n) AS n FROM decision_minutes
        WHERE event_id = $1 AND minute >= $2 GROUP BY minute, decision, reason`,
      [eventId, since],
    ),
    zoneOccupancy(db, eventId, now),
  ])
  const perMinute = Array.from({ length: 60 }, (_, i) => ({
    minute: new Date(since.getTime() + i * 60_000).toISOString(),
    admits: 0,
    denials: 0,
  }))
  const last5: DenialsByReason = {}
  const last60: DenialsByReason = {}
  const fiveAgo = since.getTime() + 55 * 60_000
  for (const row of minutes.rows) {
    const at = row.minute.getTime()
    const slot = perMinute[Math.round((at - since.getTime()) / 60_000)]
    const n = Number(row.n)
    // an annulment is a denial naming an admit that did not happen: the admit does not count
    if (row.reason === 'not_passed') {
      if (slot) slot.admits -= n
      continue
    }
    if (row.decision === 'admit') {
      if (slot) slot.admits += n
      continue
    }
    if (slot) slot.denials += n
    last60[row.reason] = (last60[row.reason] ?? 0) + n
    if (at >= fiveAgo) last5[row.reason] = (last5[row.reason] ?? 0) + n
  }
  for (const slot of perMinute) slot.admits = Math.max(0, slot.admits)
  return {
    ...info,
    expected: Number(counts.rows[0]?.expected ?? 0),
    arrived: Number(counts.rows[0]?.arrived ?? 0),
    perMinute,
    denials: { last5, last60 },
    zones: (zones ?? []).map((z) => ({
      zone: z.zone,
      name: z.name,
      occupancy: z.occupancy,
      capacity: z.capacity,
    })),
    at: new Date(now).toISOString(),
  }
}

/**
 * First arrivals by hour of the event's local time, from its arrivals per minute (rollups.ts; every
 * time zone's hours begin on a UTC minute).
 */
export async function arrivalCurve(
  db: Queryable,
  eventId: string,
): Promise<{ eventId: string; timeZone: string; hours: Array<{ hour: string; arrivals: number }> }> {
  const info = await eventInfo(db, eventId)
  const r = await db.query<{ hour: string; n: string }>(
    `SELECT to_char(date_trunc('hour', minute AT TIME ZONE $2), 'YYYY-MM-DD"T"HH24:00') AS hour, sum(n) AS n
       FROM arrival_minutes WHERE event_id = $1 GROUP BY 1 HAVING sum(n) <> 0 ORDER BY 1`,
    [eventId, info.timeZone],
  )
  return {
    eventId,
    timeZone: info.timeZone,
    hours: r.rows.map((x) => ({ hour: x.hour, arrivals: Number(x.n) })),
  }
}

/** The latest decisions of an event's gates, newest first, with the participant's name. */
export async function latestDecisions(
  db: Queryable,
  eventId: string,
  limit: number,
  now: number,
): Promise<{ eventId: string; decisions: Array<Record<string, unknown>> }> {
  await eventInfo(db, eventId)
  // each of the event's gates gives its latest from its index (gate_id, ts DESC), and the few
  // rows are merged: no scan of the event's day, however many check-ins it holds. The last day is
  // where the latest are; its partitions are the only ones read.
  const r = await db.query(
    `SELECT a.id, a.ts, a.gate_id AS "gateId", a.participant_id AS "participantId", p.name,
            a.decision, a.reason, a.method, a.zone_in AS "zoneIn", a.zone_out AS "zoneOut",
            a.explanation, a.actor, a.annuls, a.received_at AS "receivedAt"
       FROM gates g
       CROSS JOIN LATERAL (SELECT * FROM attendance_records r
                            WHERE r.gate_id = g.id AND r.ts >= $3
                            ORDER BY r.ts DESC LIMIT $2) a
       LEFT JOIN participants p ON p.id = a.participant_id
      WHERE g.event_id = $1
      ORDER BY a.ts DESC, a.id DESC LIMIT $2`,
    [eventId, limit, new Date(now - 86_400_000)],
  )
  return { eventId, decisions: r.rows }
}
