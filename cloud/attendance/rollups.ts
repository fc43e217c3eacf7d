import type pg from 'pg'
import type { Checkin } from '../../shared/checkin.js'
import type { Queryable } from '../db/pool.js'
import { rebuildZoneMinutes, rollUpZones } from './zone-minutes.js'

const MINUTE_MS = 60_000

/** A time as the start of its minute, whatever the session's time zone. */
const MINUTE_OF = (col: string) => `to_timestamp(floor(extract(epoch FROM ${col}) / 60) * 60)`

/**
 * The rollups in one statement, prepared once per connection (the ingest runs it for every batch):
 * decisions per minute, gate, decision and reason; each participant's first admit (an arrival,
 * keyed by arrival_key: migration 1765510000000); and the arrivals this batch made or moved,
 * counted per minute on this gate's rows. It answers the admitted participants who had arrived
 * before this batch: almost always none.
 */
const ROLLUP_SQL = `WITH minutes AS (
  INSERT INTO decision_minutes (event_id, minute, gate_id, decision, reason, n)
  SELECT $1, to_timestamp(m::float8 / 1000), $2, d, r, n
    FROM unnest($3::bigint[], $4::text[], $5::text[], $6::bigint[]) AS u (m, d, r, n)
  ON CONFLICT (event_id, minute, gate_id, decision, reason)
  DO UPDATE SET n = decision_minutes.n + excluded.n
), arrived AS (
  INSERT INTO event_arrivals AS e (k, participant_id, event_id, first_at)
  SELECT arrival_key($1, p), p, $1, to_timestamp(t::float8 / 1000)
    FROM unnest($7::text[], $8::bigint[]) AS u (p, t)
   ORDER BY 1
  ON CONFLICT (k, participant_id, event_id) DO UPDATE
    SET first_at = excluded.first_at, prev_at = e.first_at
    WHERE excluded.first_at < e.first_at
  RETURNING participant_id, first_at, prev_at
), moved AS (
  SELECT ${MINUTE_OF('first_at')} AS minute, 1 AS n FROM arrived
  UNION ALL
  SELECT ${MINUTE_OF('prev_at')}, -1 FROM arrived WHERE prev_at IS NOT NULL
), counted AS (
  INSERT INTO arrival_minutes (event_id, minute, gate_id, n)
  SELECT $1, minute, $2, sum(n) FROM moved GROUP BY minute ORDER BY minute
  ON CONFLICT (event_id, minute, gate_id) DO UPDATE SET n = arrival_minutes.n + excluded.n
)
SELECT p AS "participantId" FROM unnest($7::text[]) AS p
EXCEPT SELECT participant_id FROM arrived WHERE prev_at IS NULL`

/**
 * The rollup statement's name on a connection. Each connection prepares it once; the name differs
 * per connection because the demo's embedded Postgres (PGlite behind one socket) serves every
 * connection from one session, where a second connection preparing the same name is an error.
 */
const statementNames = new WeakMap<pg.ClientBase, string>()
let connections = 0
function statementName(db: pg.ClientBase): string {
  let name = statementNames.get(db)
  if (name === undefined) {
    name = `attendance-rollup-${++connections}`
    statementNames.set(db, name)
  }
  return name
}

/**
 * Add stored check-ins to their event's figures (migration 1765200000000_attendance-rollups):
 * decisions per minute, gate, decision and reason, and each participant's first admit that was
 * not annulled. Called with the records just stored, in the transaction that stores them, so a
 * resent batch (whose records are not stored again) adds nothing, and a batch that fails adds
 * nothing either. Rows are written in key order, so concurrent batches lock them in one order.
 *
 * Answers the participants admitted by `records` who had arrived before (an admit of theirs was
 * stored by an earlier batch, or one of theirs was annulled here), null without an event: the
 * others' admits are their first, and cannot be a double entry (batch-incidents.ts). A concurrent
 * batch admitting the same participant waits for this one's arrival row, and finds it.
 */
export async function rollUp(
  db: pg.ClientBase,
  eventId: string | null,
  gateId: string,
  records: readonly Checkin[],
): Promise<Set<string> | null> {
  if (eventId === null) return null
  if (records.length === 0) return new Set()
  const minutes = minuteCounts(records)
  const arrivals = firstAdmits(records)
  const before = await db.query<{ participantId: string }>({
    name: statementName(db),
    text: ROLLUP_SQL,
    values: [
      eventId,
      gateId,
      minutes.map((x) => x.minute),
      minutes.map((x) => x.decision),
      minutes.map((x) => x.reason),
      minutes.map((x) => x.n),
      arrivals.map((r) => r.participantId),
      arrivals.map((r) => r.ts),
    ],
  })
  const arrivedBefore = new Set(before.rows.map((r) => r.participantId))
  await rollUpZones(db, eventId, gateId, records)
  // an annulment names its participant: their arrival is their first admit that still stands
  const annulled = records.filter((r) => r.annuls !== undefined && r.participantId !== null)
  if (annulled.length > 0) {
    const again = [...new Set(annulled.map((r) => r.participantId as string))]
    await recomputeArrivals(db, eventId, gateId, again)
    for (const p of again) arrivedBefore.add(p)
  }
  return arrivedBefore
}

/** The batch's decisions counted by minute, decision and reason ('' for an admit), in key order. */
function minuteCounts(records: readonly Checkin[]) {
  const counts = new Map<string, { minute: number; decision: string; reason: string; n: number }>()
  for (const r of records) {
    const minute = Math.floor(r.ts / MINUTE_MS) * MINUTE_MS
    const reason = r.reason ?? ''
    const key = `${minute}|${r.decision}|${reason}`
    const c = counts.get(key)
    if (c) c.n++
    else counts.set(key, { minute, decision: r.decision, reason, n: 1 })
  }
  return [...counts.values()].sort(
    (a, b) => a.minute - b.minute || a.decision.localeCompare(b.decision) || a.reason.localeCompare(b.reason),
  )
}

/** Each participant's earliest admit in the batch, by participant id. */
function firstAdmits(records: readonly Checkin[]): Array<Checkin & { participantId: string }> {
  const first = new Map<string, Checkin & { participantId: string }>()
  for (const r of records) {
    if (r.decision !== 'admit' || r.participantId === null) continue
    const seen = first.get(r.participantId)
    if (seen === undefined || r.ts < seen.ts)
      first.set(r.participantId, r as Checkin & { participantId: string })
  }
  return [...first.values()].sort((a, b) =>
    a.participantId < b.participantId ? -1 : a.participantId > b.participantId ? 1 : 0,
  )
}

/**
 * Some of these participants' admits were annulled (they never went through): each has arrived at
 * their first admit to the event that still stands, if any. The records of the batch being stored
 * are visible here (same transaction), its annulments with them. The minutes the arrivals leave
 * and join are counted on this gate's rows.
 */
async function recomputeArrivals(
  db: Queryable,
  eventId: string,
  gateId: string,
  participants: readonly string[],
) {
  const gone = await db.query<{ first_at: Date }>(
    `DELETE FROM event_arrivals
      WHERE (k, participant_id, event_id) IN (SELECT arrival_key($1, p), p, $1 FROM unnest($2::text[]) AS p)
      RETURNING first_at`,
    [eventId, participants],
  )
  const back = await db.query<{ first_at: Date }>(
    `INSERT INTO event_arrivals (k, participant_id, event_id, first_at)
     SELECT arrival_key($1, a.participant_id), a.participant_id, $1, min(a.ts)
       FROM attendance_records a JOIN gates g ON g.id = a.gate_id AND g.event_id = $1
      WHERE a.participant_id = ANY($2::text[]) AND a.decision = 'admit'
        AND NOT EXISTS (SELECT 1 FROM attendance_records x
                         WHERE x.participant_id = a.participant_id AND x.annuls = a.id)
      GROUP BY a.participant_id
     RETURNING first_at`,
    [eventId, participants],
  )
  const delta = new Map<number, number>()
  const count = (at: Date, n: number) => {
    const minute = Math.floor(at.getTime() / MINUTE_MS) * MINUTE_MS
    delta.set(minute, (delta.get(minute) ?? 0) + n)
  }
  for (const r of gone.rows) count(r.first_at, -1)
  for (const r of back.rows) count(r.first_at, 1)
  const changed = [...delta].filter(([, n]) => n !== 0).sort((a, b) => a[0] - b[0])
  if (changed.length === 0) return
  await db.query(
    `INSERT INTO arrival_minutes (event_id, minute, gate_id, n)
     SELECT $1, to_timestamp(m::float8 / 1000), $2, n FROM unnest($3::bigint[], $4::bigint[]) AS u (m, n)
     ON CONFLICT (event_id, minute, gate_id) DO UPDATE SET n = arrival_minutes.n + excluded.n`,
    [eventId, gateId, changed.map(([m]) => m), changed.map(([, n]) => n)],
  )
}

/**
 * Make the figures again from the stored check-ins (what migration 1765200000000 did for the
 * check-ins stored before it; the console benchmark builds its rollups so). Counts a gate's
 * check-ins in the gate's event.
 */
export async function rebuildRollups(db: Queryable): Promise<void> {
  await db.query('TRUNCATE decision_minutes, event_arrivals, arrival_minutes, zone_minutes', [])
  await db.query(
    `INSERT INTO decision_minutes (event_id, minute, gate_id, decision, reason, n)
     SELECT g.event_id, date_trunc('minute', a.ts), a.gate_id, a.decision, coalesce(a.reason, ''), count(*)
       FROM attendance_records a JOIN gates g ON g.id = a.gate_id
      WHERE g.event_id IS NOT NULL
      GROUP BY 1, 2, 3, 4, 5`,
    [],
  )
  await db.query(
    `INSERT INTO event_arrivals (k, participant_id, event_id, first_at)
     SELECT arrival_key(g.event_id, a.participant_id), a.participant_id, g.event_id, min(a.ts)
       FROM attendance_records a JOIN gates g ON g.id = a.gate_id
      WHERE g.event_id IS NOT NULL AND a.decision = 'admit' AND a.participant_id IS NOT NULL
        AND a.id NOT IN (SELECT annuls FROM attendance_records WHERE annuls IS NOT NULL)
      GROUP BY g.event_id, a.participant_id`,
    [],
  )
  await db.query(
    `INSERT INTO arrival_minutes (event_id, minute, gate_id, n)
     SELECT event_id, ${MINUTE_OF('first_at')}, '', count(*) FROM event_arrivals GROUP BY 1, 2`,
    [],
  )
  await rebuildZoneMinutes(db)
}
