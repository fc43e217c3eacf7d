import { GateError } from '../../shared/errors.js'
import type { Queryable } from '../db/pool.js'
import { INCIDENT_COLUMNS } from './queries.js'

/**
 * Acknowledge an incident: someone is on it. The first acknowledgement is kept (who and when); a
 * note given replaces the one there. E_NOT_FOUND for an unknown id.
 */
export async function acknowledgeIncident(
  db: Queryable,
  id: number,
  by: string,
  note: string | null,
): Promise<Record<string, unknown>> {
  const r = await db.query(
    `UPDATE incidents
        SET acknowledged_at = coalesce(acknowledged_at, now()),
            acknowledged_by = coalesce(acknowledged_by, $2),
            note = coalesce($3, note)
      WHERE id = $1
      RETURNING ${INCIDENT_COLUMNS}`,
    [id, by, note],
  )
  const row = r.rows[0]
  if (!row) throw new GateError('E_NOT_FOUND', `no incident ${id}`)
  return row
}

/**
 * Resolve an incident with a note saying what was done (acknowledging it too if nobody had). A
 * resolved incident stays resolved as it was; resolving it again changes nothing. If the cause
 * comes back, the cloud opens a new incident.
 */
export async function resolveIncident(
  db: Queryable,
  id: number,
  by: string,
  note: string,
): Promise<Record<string, unknown>> {
  const r = await db.query(
    `UPDATE incidents
        SET acknowledged_at = coalesce(acknowledged_at, now()),
            acknowledged_by = coalesce(acknowledged_by, $2),
            resolved_at = now(), resolved_by = $2, note = $3
      WHERE id = $1 AND resolved_at IS NULL
      RETURNING ${INCIDENT_COLUMNS}`,
    [id, by, note],
  )
  const row = r.rows[0]
  if (row) return row
  const existing = await db.query(`SELECT ${INCIDENT_COLUMNS} FROM incidents WHERE id = $1`, [id])
  if (!existing.rows[0]) throw new GateError('E_NOT_FOUND', `no incident ${id}`)
  return existing.rows[0]
}
