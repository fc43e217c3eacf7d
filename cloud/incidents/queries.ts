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

/** Where an incident is in its handling. */
export const INCIDENT_STATES = ['open', 'unacknowledged', 'acknowledged', 'resolved', 'all'] as const
export type IncidentState = (typeof INCIDENT_STATES)[number]

/** The columns of an incident as the API gives it. */
export const INCIDENT_COLUMNS = `id, kind, gate_id AS "gateId", participant_id AS "participantId", record_id AS "recordId",
  record_ts AS "recordTs", other_gate_id AS "otherGateId", other_record_id AS "otherRecordId", detail,
  created_at AS "createdAt", acknowledged_at AS "acknowledgedAt", acknowledged_by AS "acknowledgedBy",
  resolved_at AS "resolvedAt", resolved_by AS "resolvedBy", note`

/**
 * Incidents newest first: of one kind or every kind; in one state (`open`: not resolved,
 * acknowledged or not; `all`); of one event's gates or every gate.
 */
export async function listIncidents(
  db: Queryable,
  filter: {
    kind: IncidentKind | null
    state: IncidentState
    eventId?: string | null
    /** only these events' incidents (an organiser's); null or absent: every incident */
    events?: readonly string[] | null
    limit: number
  },
): Promise<Array<Record<string, unknown>>> {
  const r = await db.query(
    `SELECT ${INCIDENT_COLUMNS}
       FROM incidents
      WHERE ($1::text IS NULL OR kind = $1)
        AND CASE $2::text
              WHEN 'open' THEN resolved_at IS NULL
              WHEN 'unacknowledged' THEN resolved_at IS NULL AND acknowledged_at IS NULL
              WHEN 'acknowledged' THEN resolved_at IS NULL AND acknowledged_at IS NOT NULL
              WHEN 'resolved' THEN resolved_at IS NOT NULL
              ELSE true END
        AND ($4::text IS NULL OR gate_id IN (SELECT id FROM gates WHERE event_id = $4))
        AND ($5::text[] IS NULL OR gate_id IN (SELECT id FROM gates WHERE event_id = ANY($5::text[])))
      ORDER BY created_at DESC, id DESC LIMIT $3`,
    [filter.kind, filter.state, filter.limit, filter.eventId ?? null, filter.events ?? null],
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
