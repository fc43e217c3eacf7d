import type { Queryable } from '../db/pool.js'

/** The active participant holding a token, or null. */
export async function participantByToken(
  db: Queryable,
  token: string,
): Promise<Record<string, unknown> | null> {
  const r = await db.query(
    `SELECT id, token, status, name, email, updated_at AS "updatedAt" FROM participants WHERE token = $1 AND status = 'active'`,
    [token],
  )
  return (r.rows[0] as Record<string, unknown> | undefined) ?? null
}

/** The active participants, most recently changed first, at most `limit` (as participantByToken shows one). */
export async function activeParticipants(
  db: Queryable,
  limit: number,
): Promise<Array<{ token: string } & Record<string, unknown>>> {
  const r = await db.query<{ token: string } & Record<string, unknown>>(
    `SELECT id, token, status, name, email, updated_at AS "updatedAt" FROM participants
      WHERE status = 'active' ORDER BY updated_at DESC LIMIT $1`,
    [limit],
  )
  return r.rows
}

/** Full-text search on name and email (the GIN index), best match first. */
export async function searchParticipants(
  db: Queryable,
  text: string,
  limit: number,
): Promise<Array<Record<string, unknown>>> {
  const r = await db.query(
    `SELECT id, token, status, name, email,
            ts_rank(to_tsvector('english', coalesce(name, '') || ' ' || coalesce(email, '')), query) AS rank
       FROM participants, websearch_to_tsquery('english', $1) AS query
      WHERE to_tsvector('english', coalesce(name, '') || ' ' || coalesce(email, '')) @@ query
      ORDER BY rank DESC, id LIMIT $2`,
    [text, limit],
  )
  return r.rows
}
