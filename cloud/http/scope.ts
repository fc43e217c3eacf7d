import { GateError } from '../../shared/errors.js'
import { type Principal, seesEvent, visibleEvents } from '../accounts/principal.js'
import type { Queryable } from '../db/pool.js'

/**
 * Checks of an event's scope that a route's path cannot carry (people-auth.ts checks the event a
 * path or query names): the event of a participant, an incident, or a listing's default.
 */

/** Refuse when `p` may not see the participant's event (404 when there is no such participant). */
export async function mustSeeParticipant(
  db: Queryable,
  p: Principal | null,
  participantId: string,
): Promise<void> {
  if (p === null) throw new GateError('E_AUTH', 'not signed in')
  if (p.events === 'all') return
  const r = await db.query<{ event_id: string | null }>('SELECT event_id FROM participants WHERE id = $1', [
    participantId,
  ])
  const eventId = r.rows[0]?.event_id ?? null
  if (eventId === null || !seesEvent(p, eventId))
    throw new GateError('E_FORBIDDEN', `${p.actor} does not run this participant's event`)
}

/** The event of an incident (its gate's), refused when `p` may not see it; 404 for an unknown incident. */
export async function mustSeeIncident(
  db: Queryable,
  p: Principal | null,
  incidentId: number,
): Promise<string | null> {
  if (p === null) throw new GateError('E_AUTH', 'not signed in')
  const r = await db.query<{ event_id: string | null }>(
    'SELECT g.event_id FROM incidents i LEFT JOIN gates g ON g.id = i.gate_id WHERE i.id = $1',
    [incidentId],
  )
  const row = r.rows[0]
  if (!row) throw new GateError('E_NOT_FOUND', `no incident ${incidentId}`)
  if (p.events !== 'all' && (row.event_id === null || !seesEvent(p, row.event_id)))
    throw new GateError('E_FORBIDDEN', `${p.actor} does not run this incident's event`)
  return row.event_id
}

/**
 * The event a listing is limited to when it names none: every event for ops (null), an organiser's
 * only event, and for an organiser of several, a question back.
 */
export function onlyEvent(p: Principal | null): string | null {
  if (p === null) throw new GateError('E_AUTH', 'not signed in')
  const mine = visibleEvents(p)
  if (mine === null) return null
  if (mine.length === 1) return mine[0] as string
  throw new GateError('E_INPUT', `say which event: ?event= one of ${mine.join(', ')}`)
}
