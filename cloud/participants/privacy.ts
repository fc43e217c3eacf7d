import { GateError } from '../../shared/errors.js'
import type { Queryable } from '../db/pool.js'

/** A participant's personal data erased (their name and e-mail): the check-ins and counts stay. */
export async function eraseParticipant(
  db: Queryable,
  eventId: string,
  participantId: string,
): Promise<{ id: string; eventId: string; erasedAt: string }> {
  const r = await db.query<{ id: string; erased_at: Date }>(
    `UPDATE participants SET name = NULL, email = NULL, erased_at = coalesce(erased_at, now()), updated_at = now()
      WHERE event_id = $1 AND id = $2 RETURNING id, erased_at`,
    [eventId, participantId],
  )
  const row = r.rows[0]
  if (!row) throw new GateError('E_NOT_FOUND', `no participant ${participantId} in event ${eventId}`)
  return { id: row.id, eventId, erasedAt: row.erased_at.toISOString() }
}

/** How many days after its last check-in an event's personal data is erased (null: kept). */
export async function setRetention(
  db: Queryable,
  eventId: string,
  days: number | null,
): Promise<{ eventId: string; retentionDays: number | null }> {
  const r = await db.query('UPDATE events SET retention_days = $2 WHERE id = $1', [eventId, days])
  if (r.rowCount === 0) throw new GateError('E_NOT_FOUND', `no event ${eventId}`)
  return { eventId, retentionDays: days }
}

/**
 * Erase the names and e-mails of every event whose retention has run out: `retention_days` after
 * its last check-in (its last minute of decisions), or after its creation when it has none. Each
 * node may run it (an erased participant is not erased again). Returns the participants erased per
 * event, for the audit trail.
 */
export async function eraseExpired(db: Queryable): Promise<Array<{ eventId: string; erased: number }>> {
  const r = await db.query<{ event_id: string; erased: string }>(
    `WITH due AS (
       SELECT e.id FROM events e
        WHERE e.retention_days IS NOT NULL
          AND greatest(e.created_at, (SELECT max(minute) FROM decision_minutes d WHERE d.event_id = e.id))
              + make_interval(days => e.retention_days) < now()
     ), erased AS (
       UPDATE participants p SET name = NULL, email = NULL, erased_at = now(), updated_at = now()
         FROM due
        WHERE p.event_id = due.id AND p.erased_at IS NULL
        RETURNING p.event_id
     )
     SELECT event_id, count(*) AS erased FROM erased GROUP BY event_id ORDER BY event_id`,
    [],
  )
  return r.rows.map((x) => ({ eventId: x.event_id, erased: Number(x.erased) }))
}
