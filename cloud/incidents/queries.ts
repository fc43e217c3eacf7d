import type { Queryable } from '../db/pool.js'

/** What an incident can be about (the incidents table's `kind`). */
export const INCIDENT_KINDS = [
  'double_entry',
  'clock_skew',
  'late_upload',
  'wrong_event',
  'unknown_participant',
  'id_conflict',
  'anti_passback',
] as const

export type IncidentKind = (typeof INCIDENT_KINDS)[number]

/** Incidents newest first: of one kind or every kind, the open ones or all. */
export async function listIncidents(
  db: Queryable,
  filter: { kind: IncidentKind | null; openOnly: boolean; limit: number },
): Promise<Array<Record<string, unknown>>> {
  const r = await db.query(
    `SELECT id, kind, gate_id AS "gateId", participant_id AS "participantId", record_id AS "recordId", record_ts AS "recordTs",
            other_gate_id AS "otherGateId", other_record_id AS "otherRecordId", detail, created_at AS "createdAt"
       FROM incidents WHERE ($1::text IS NULL OR kind = $1) AND ($2::boolean = false OR resolved_at IS NULL)
      ORDER BY created_at DESC, id DESC LIMIT $3`,
    [filter.kind, filter.openOnly, filter.limit],
  )
  return r.rows
}

/** How many incidents are open, and the 20 most recent of them. */
export async function openIncidents(
  db: Queryable,
): Promise<{ open: number; recent: Array<Record<string, unknown>> }> {
  const r = await db.query<{ total: string } & Record<string, unknown>>(
    `SELECT id, kind, gate_id AS "gateId", participant_id AS "participantId", other_gate_id AS "otherGateId",
            detail, created_at AS "createdAt", count(*) OVER () AS total
       FROM incidents WHERE resolved_at IS NULL ORDER BY created_at DESC, id DESC LIMIT 20`,
    [],
  )
  return {
    open: Number(r.rows[0]?.total ?? 0),
    recent: r.rows.map(({ total: _t, ...row }) => row),
  }
}
