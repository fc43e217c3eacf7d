import { GateError } from '../../shared/errors.js'
import type { Queryable } from '../db/pool.js'

/**
 * The active participant holding a token, in `eventId` when given, or null. A token is unique
 * within an event only: without an event, a token held in several is a conflict (409) that names
 * none of them.
 */
export async function participantByToken(
  db: Queryable,
  token: string,
  eventId: string | null = null,
): Promise<Record<string, unknown> | null> {
  const r = await db.query(
    `SELECT id, event_id AS "eventId", token, status, name, email, updated_at AS "updatedAt" FROM participants
      WHERE token = $1 AND status = 'active' AND ($2::text IS NULL OR event_id = $2) LIMIT 2`,
    [token, eventId],
  )
  if (r.rows.length > 1)
    throw new GateError('E_CONFLICT', `token ${token} is held in several events: say which with ?event=`)
  return (r.rows[0] as Record<string, unknown> | undefined) ?? null
}

/** The active participants, most recently changed first, at most `limit` (as participantByToken shows one). */
export async function activeParticipants(
  db: Queryable,
  limit: number,
): Promise<Array<{ token: string } & Record<string, unknown>>> {
  const r = await db.query<{ token: string } & Record<string, unknown>>(
    `SELECT id, event_id AS "eventId", token, status, name, email, updated_at AS "updatedAt" FROM participants
      WHERE status = 'active' ORDER BY updated_at DESC LIMIT $1`,
    [limit],
  )
  return r.rows
}

/** `text` for a LIKE pattern: its own % _ and \\ match themselves. */
const likeLiteral = (text: string) => text.replace(/[\\%_]/g, (c) => `\\${c}`)

/**
 * Participants whose name or e-mail holds `text`, accents and case aside: part of a name, an
 * e-mail domain, a name typed without its accents (migration 1765300000000: a trigram index over
 * participant_search_text). Closest first; one event's only with `eventId`.
 */
export async function searchParticipants(
  db: Queryable,
  text: string,
  limit: number,
  eventId: string | null = null,
): Promise<Array<Record<string, unknown>>> {
  const r = await db.query(
    `SELECT id, event_id AS "eventId", token, status, name, email,
            similarity(participant_search_text(name, email), q.norm) AS rank
       FROM participants,
            (SELECT lower(public.unaccent('public.unaccent'::regdictionary, $1)) AS norm) q
      WHERE participant_search_text(name, email) LIKE '%' || lower(public.unaccent('public.unaccent'::regdictionary, $4)) || '%'
        AND ($3::text IS NULL OR event_id = $3)
      ORDER BY rank DESC, id LIMIT $2`,
    [text, limit, eventId, likeLiteral(text)],
  )
  return r.rows
}
