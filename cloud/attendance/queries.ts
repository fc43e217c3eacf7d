import type { Queryable } from '../db/pool.js'

/** The id that sorts before every other: a page cursor made of a time alone starts there. */
export const NIL_UUID = '00000000-0000-0000-0000-000000000000'

/** Where a page of a participant's check-ins starts: before this time (µs since the epoch) and id. */
export interface CheckinsCursor {
  us: string
  id: string
}

/**
 * A participant's check-ins, newest first, paged by keyset: `before` is the last row's time in
 * microseconds and its id, so rows sharing a time are neither skipped nor repeated across pages.
 * `next` is the cursor of the following page, null on the last one.
 */
export async function participantCheckins(
  db: Queryable,
  participantId: string,
  page: { before: CheckinsCursor | null; limit: number },
): Promise<{ checkins: Array<Record<string, unknown>>; next: string | null }> {
  const r = await db.query<{ ts_us: string } & Record<string, unknown>>(
    `SELECT id, ts, gate_id AS "gateId", method, decision, reason, rssi, received_at AS "receivedAt",
            zone_in AS "zoneIn", zone_out AS "zoneOut", rule_id AS "ruleId", policy_version AS "policyVersion",
            explanation, actor, note, annuls,
            (extract(epoch FROM ts) * 1000000)::bigint AS ts_us
       FROM attendance_records
      WHERE participant_id = $1
        AND ($2::bigint IS NULL OR (ts, id) < ('epoch'::timestamptz + $2::bigint * interval '1 microsecond', $4::uuid))
      ORDER BY ts DESC, id DESC LIMIT $3`,
    [participantId, page.before?.us ?? null, page.limit, page.before?.id ?? NIL_UUID],
  )
  const rows = r.rows.map(({ ts_us: _, ...row }) => row)
  const last = r.rows[r.rows.length - 1]
  return {
    checkins: rows,
    next: r.rows.length === page.limit && last ? `${last.ts_us}:${last['id']}` : null,
  }
}

/** How many check-ins a gate decided since a time, of one decision or both. */
export async function gateCount(
  db: Queryable,
  gateId: string,
  since: Date,
  decision: 'admit' | 'deny' | null,
): Promise<number> {
  const r = await db.query<{ n: string }>(
    `SELECT count(*) AS n FROM attendance_records WHERE gate_id = $1 AND ts >= $2 AND ($3::text IS NULL OR decision = $3)`,
    [gateId, since, decision],
  )
  return Number(r.rows[0]?.n ?? 0)
}

/** Check-ins and admits per gate since a time. */
export async function gateCounts(
  db: Queryable,
  since: Date,
): Promise<{ since: string; gates: Array<{ gateId: string; count: number; admits: number }> }> {
  const r = await db.query<{ gate_id: string; n: string; admits: string }>(
    `SELECT gate_id, count(*) AS n,
            count(*) FILTER (WHERE decision = 'admit') - count(*) FILTER (WHERE annuls IS NOT NULL) AS admits
       FROM attendance_records WHERE ts >= $1 GROUP BY gate_id ORDER BY gate_id`,
    [since],
  )
  return {
    since: since.toISOString(),
    gates: r.rows.map((x) => ({ gateId: x.gate_id, count: Number(x.n), admits: Number(x.admits) })),
  }
}

/** Today's figures (UTC): check-ins, admits, gates heard from, and the incidents still open. */
export async function overallStats(db: Queryable): Promise<Record<string, unknown>> {
  const r = await db.query<{ checkins: string; admits: string; gates: string; open_incidents: string }>(
    `SELECT count(*) AS checkins,
            count(*) FILTER (WHERE decision = 'admit') - count(*) FILTER (WHERE annuls IS NOT NULL) AS admits,
            count(DISTINCT gate_id) AS gates,
            (SELECT count(*) FROM incidents WHERE resolved_at IS NULL) AS open_incidents
       FROM attendance_records WHERE ts >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'`,
    [],
  )
  const x = r.rows[0]
  return {
    since: `${new Date().toISOString().slice(0, 10)}T00:00:00.000Z`,
    checkins: Number(x?.checkins ?? 0),
    admits: Number(x?.admits ?? 0),
    gatesSeen: Number(x?.gates ?? 0),
    openIncidents: Number(x?.open_incidents ?? 0),
  }
}
