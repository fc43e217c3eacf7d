import type pg from 'pg'
import { GateError } from '../../shared/errors.js'
import type { RosterEntry } from '../../shared/roster.js'

const CHUNK = 5_000

/**
 * Load roster entries idempotently: new participants are inserted, changed ones updated (which
 * bumps their roster sequence so gates pull the change), unchanged ones left alone.
 */
export async function importParticipants(
  pool: pg.Pool,
  entries: readonly RosterEntry[],
  opts: { eventId?: string | undefined } = {},
): Promise<{ inserted: number; updated: number; unchanged: number }> {
  const client = await pool.connect()
  let inserted = 0
  let updated = 0
  const eventId = opts.eventId ?? null
  try {
    await client.query('BEGIN')
    if (eventId !== null) await ensureEvent(client, eventId)
    for (let i = 0; i < entries.length; i += CHUNK) {
      const part = entries.slice(i, i + CHUNK)
      const r = await client.query<{ inserted: boolean }>(
        // tags go as one JSON array per participant (unnest cannot take an array of arrays of
        // different lengths)
        `INSERT INTO participants (id, token, status, name, email, category, tags, event_id)
         SELECT u.id, u.token, u.status, u.name, u.email, u.category,
                ARRAY(SELECT jsonb_array_elements_text(u.tags)), $8::text
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::jsonb[])
                AS u(id, token, status, name, email, category, tags)
         ON CONFLICT (id) DO UPDATE SET token = EXCLUDED.token, status = EXCLUDED.status, name = EXCLUDED.name,
                                        email = EXCLUDED.email, category = EXCLUDED.category, tags = EXCLUDED.tags,
                                        event_id = EXCLUDED.event_id
          WHERE (participants.token, participants.status, participants.name, participants.email,
                 participants.category, participants.tags, participants.event_id)
                IS DISTINCT FROM (EXCLUDED.token, EXCLUDED.status, EXCLUDED.name, EXCLUDED.email,
                                  EXCLUDED.category, EXCLUDED.tags, EXCLUDED.event_id)
         RETURNING (xmax = 0) AS inserted`,
        [
          part.map((e) => e.participantId),
          part.map((e) => e.token),
          part.map((e) => e.status),
          part.map((e) => e.name ?? null),
          part.map((e) => e.email ?? null),
          part.map((e) => e.category ?? null),
          part.map((e) => JSON.stringify(e.tags ?? [])),
          eventId,
        ],
      )
      for (const row of r.rows) row.inserted ? inserted++ : updated++
    }
    await client.query('COMMIT')
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    if ((err as { code?: string }).code === '23505') {
      throw new GateError(
        'E_INPUT',
        `two active participants of one event would hold the same token: ${(err as { detail?: string }).detail ?? ''}; nothing was imported`,
        {
          cause: err,
        },
      )
    }
    throw err
  } finally {
    client.release()
  }
  return { inserted, updated, unchanged: entries.length - inserted - updated }
}

/** The event row (id as its name when new): gates and participants name their event. */
export async function ensureEvent(db: pg.ClientBase | pg.Pool, eventId: string): Promise<void> {
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/.test(eventId))
    throw new GateError('E_INPUT', `event id "${eventId}": letters, digits, '-' and '_' only, at most 64`)
  await db.query('INSERT INTO events (id, name) VALUES ($1, $1) ON CONFLICT (id) DO NOTHING', [eventId])
}
