import type pg from 'pg'
import type { RosterDelta } from '../../shared/sync.js'

// "event_id = $3" and "event_id IS NULL" can use the (event_id, roster_seq) indexes, where
// "IS NOT DISTINCT FROM $3" could not: one query for gates of an event, one for gates without
const deltaSql = (eventMatch: string) => `
SELECT token, id, status, roster_seq, category, tags FROM (
  SELECT token, id, status, roster_seq, category, tags FROM participants WHERE ${eventMatch} AND roster_seq > $1
  UNION ALL
  -- deleted, or moved to another event: inactive here
  SELECT token, participant_id, 'inactive', roster_seq, NULL, '{}' FROM roster_removals WHERE ${eventMatch} AND roster_seq > $1
) c ORDER BY roster_seq LIMIT $2`
const DELTA_SQL = { event: deltaSql('event_id = $3'), noEvent: deltaSql('event_id IS NULL') }

/** How many changes a gate gets at once unless it asks for fewer (what a gate starting from scratch reads first). */
export const DEFAULT_ROSTER_LIMIT = 5_000

/**
 * Roster changes of one event after `since` (participants.roster_seq), oldest first, at most
 * `limit`; with `access`, each with the participant's category and tags (gates that run the
 * access rules ask for them; older gates would refuse fields they do not know). A gate sees its own event's participants only (no event: the participants without one);
 * a participant deleted or moved to another event comes as inactive (roster_removals). Writers take
 * turns (a trigger's lock), so the sequence is commit order and a cursor never passes a change
 * still to commit.
 */
export async function rosterDelta(
  pool: pg.Pool,
  eventId: string | null,
  since: number,
  limit: number,
  access = false,
): Promise<RosterDelta> {
  const r = await pool.query<{
    token: string
    id: string
    status: 'active' | 'revoked' | 'inactive'
    roster_seq: string
    category: string | null
    tags: string[]
  }>(eventId === null ? DELTA_SQL.noEvent : DELTA_SQL.event, [
    since,
    limit + 1,
    ...(eventId === null ? [] : [eventId]),
  ])
  const more = r.rows.length > limit
  const rows = more ? r.rows.slice(0, limit) : r.rows
  const last = rows[rows.length - 1]
  return {
    cursor: last ? Number(last.roster_seq) : since,
    changes: rows.map((x) => ({
      token: x.token,
      participantId: x.id,
      status: x.status,
      seq: Number(x.roster_seq),
      ...(access ? { category: x.category, tags: x.tags } : {}),
    })),
    more,
  }
}
