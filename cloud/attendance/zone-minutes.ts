import type pg from 'pg'
import type { Checkin } from '../../shared/checkin.js'
import type { Queryable } from '../db/pool.js'

const MINUTE_MS = 60_000

const ADD_SQL = `
INSERT INTO zone_minutes (event_id, zone, minute, gate_id, delta)
SELECT $1, z, to_timestamp(m::float8 / 1000), $2, d
  FROM unnest($3::text[], $4::bigint[], $5::bigint[]) AS u (z, m, d)
ON CONFLICT (event_id, zone, minute, gate_id) DO UPDATE SET delta = zone_minutes.delta + excluded.delta`

/**
 * Add a stored batch's passages to its event's zone_minutes (migration 1765900000000), in the
 * transaction that stores it: each admit into a zone +1, out of one -1, in its minute; an
 * annulment takes its entry back in its own minute (the annulled admit is read back: annulments
 * are rare). A batch without passages costs nothing.
 */
export async function rollUpZones(
  db: pg.ClientBase,
  eventId: string,
  gateId: string,
  records: readonly Checkin[],
): Promise<void> {
  const delta = new Map<string, { zone: string; minute: number; d: number }>()
  const add = (zone: string, ts: number, d: number) => {
    const minute = Math.floor(ts / MINUTE_MS) * MINUTE_MS
    const key = `${zone}\u0000${minute}`
    const x = delta.get(key)
    if (x) x.d += d
    else delta.set(key, { zone, minute, d })
  }
  const annuls: Checkin[] = []
  for (const r of records) {
    if (r.annuls !== undefined) annuls.push(r)
    if (r.decision !== 'admit') continue
    if (r.zoneIn) add(r.zoneIn, r.ts, 1)
    if (r.zoneOut) add(r.zoneOut, r.ts, -1)
  }
  if (annuls.length > 0) {
    const taken = await db.query<{ id: string; zone_in: string }>(
      `SELECT id::text, zone_in FROM attendance_records
        WHERE id = ANY($1::uuid[]) AND decision = 'admit' AND zone_in IS NOT NULL`,
      [annuls.map((r) => r.annuls)],
    )
    const zoneOf = new Map(taken.rows.map((t) => [t.id, t.zone_in]))
    for (const r of annuls) {
      const zone = zoneOf.get((r.annuls as string).toLowerCase())
      if (zone) add(zone, r.ts, -1)
    }
  }
  const rows = [...delta.values()].filter((x) => x.d !== 0)
  if (rows.length === 0) return
  // key order: concurrent batches of one gate lock the same rows in one order
  rows.sort((a, b) => (a.zone < b.zone ? -1 : a.zone > b.zone ? 1 : a.minute - b.minute))
  await db.query(ADD_SQL, [
    eventId,
    gateId,
    rows.map((x) => x.zone),
    rows.map((x) => x.minute),
    rows.map((x) => x.d),
  ])
}

/** zone_minutes made again from the stored check-ins (as migration 1765900000000 did). */
export async function rebuildZoneMinutes(db: Queryable): Promise<void> {
  const minute = (col: string) => `to_timestamp(floor(extract(epoch FROM ${col}) / 60) * 60)`
  await db.query(
    `INSERT INTO zone_minutes (event_id, zone, minute, gate_id, delta)
     SELECT event_id, zone, minute, gate_id, sum(d) FROM (
       SELECT g.event_id, a.zone_in AS zone, ${minute('a.ts')} AS minute, a.gate_id, 1 AS d
         FROM attendance_records a JOIN gates g ON g.id = a.gate_id
        WHERE g.event_id IS NOT NULL AND a.decision = 'admit' AND a.zone_in IS NOT NULL
       UNION ALL
       SELECT g.event_id, a.zone_out, ${minute('a.ts')}, a.gate_id, -1
         FROM attendance_records a JOIN gates g ON g.id = a.gate_id
        WHERE g.event_id IS NOT NULL AND a.decision = 'admit' AND a.zone_out IS NOT NULL
       UNION ALL
       SELECT g.event_id, e.zone_in, ${minute('x.ts')}, x.gate_id, -1
         FROM attendance_records x JOIN gates g ON g.id = x.gate_id
         JOIN attendance_records e ON e.id = x.annuls
        WHERE g.event_id IS NOT NULL AND e.decision = 'admit' AND e.zone_in IS NOT NULL
     ) p GROUP BY 1, 2, 3, 4`,
    [],
  )
}

/**
 * Each zone's highest occupancy over the whole event, at minute resolution: the running sum of
 * its entries minus exits, minute by minute, and the minute it was reached.
 */
export async function peakOccupancy(
  db: Queryable,
  eventId: string,
): Promise<Array<{ zone: string; peak: number; at: string | null }>> {
  const r = await db.query<{ zone: string; peak: string; at: Date }>(
    `WITH m AS (
       SELECT zone, minute, sum(delta) AS d FROM zone_minutes WHERE event_id = $1 GROUP BY zone, minute
     ), running AS (
       SELECT zone, minute, sum(d) OVER (PARTITION BY zone ORDER BY minute) AS inside FROM m
     )
     SELECT DISTINCT ON (zone) zone, inside AS peak, minute AS at FROM running ORDER BY zone, inside DESC, minute`,
    [eventId],
  )
  return r.rows.map((p) => ({ zone: p.zone, peak: Math.max(0, Number(p.peak)), at: p.at.toISOString() }))
}
