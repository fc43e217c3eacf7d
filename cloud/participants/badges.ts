import { GateError } from '../../shared/errors.js'
import type { Queryable } from '../db/pool.js'

/** A participant as a badge action leaves them. */
export interface BadgeHolder {
  id: string
  eventId: string
  token: string
  status: string
  name: string | null
}

const RETURNING = `RETURNING id, event_id AS "eventId", token, status, name`

async function one(
  db: Queryable,
  sql: string,
  values: unknown[],
  eventId: string,
  id: string,
): Promise<BadgeHolder> {
  try {
    const r = await db.query<BadgeHolder & Record<string, unknown>>(sql, values)
    const row = r.rows[0]
    if (!row) throw new GateError('E_NOT_FOUND', `no participant ${id} in event ${eventId}`)
    return row
  } catch (err) {
    if ((err as { code?: string }).code === '23505')
      throw new GateError(
        'E_CONFLICT',
        'that token is already the badge of another active participant of this event',
        {
          cause: err,
        },
      )
    throw err
  }
}

/** A badge's status set, the participant's roster sequence bumped (a trigger): what the gates pull. */
function setStatus(db: Queryable, eventId: string, id: string, status: 'active' | 'revoked') {
  return one(
    db,
    `UPDATE participants SET status = $3, updated_at = now() WHERE event_id = $1 AND id = $2 ${RETURNING}`,
    [eventId, id, status],
    eventId,
    id,
  )
}

/** Revoke a participant's badge: the gates deny it (`revoked`) from their next roster pull. */
export const revokeBadge = (db: Queryable, eventId: string, id: string): Promise<BadgeHolder> =>
  setStatus(db, eventId, id, 'revoked')

/** Make a revoked or inactive participant's badge valid again. */
export const reinstateBadge = (db: Queryable, eventId: string, id: string): Promise<BadgeHolder> =>
  setStatus(db, eventId, id, 'active')

/**
 * Replace a lost badge: the participant holds `token` from now on, active. From their next pull the
 * gates admit the new badge, and keep the old one as revoked (agent/store/roster-store.ts: a
 * participant's former token is retired, not forgotten), so whoever finds it is denied `revoked`.
 */
export function replaceBadge(
  db: Queryable,
  eventId: string,
  id: string,
  token: string,
): Promise<BadgeHolder> {
  return one(
    db,
    `UPDATE participants SET token = $3, status = 'active', updated_at = now()
      WHERE event_id = $1 AND id = $2 ${RETURNING}`,
    [eventId, id, token],
    eventId,
    id,
  )
}
