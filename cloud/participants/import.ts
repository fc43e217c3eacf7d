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
): Promise<{ inserted: number; updated: number; unchanged: number }> {
  const client = await pool.connect()
  let inserted = 0
  let updated = 0
  try {
    await client.query('BEGIN')
    for (let i = 0; i < entries.length; i += CHUNK) {
      const part = entries.slice(i, i + CHUNK)
      const r = await client.query<{ inserted: boolean }>(
        `INSERT INTO participants (id, token, status, name, email)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
         ON CONFLICT (id) DO UPDATE SET token = EXCLUDED.token, status = EXCLUDED.status, name = EXCLUDED.name, email = EXCLUDED.email
          WHERE (participants.token, participants.status, participants.name, participants.email)
                IS DISTINCT FROM (EXCLUDED.token, EXCLUDED.status, EXCLUDED.name, EXCLUDED.email)
         RETURNING (xmax = 0) AS inserted`,
        [
          part.map((e) => e.participantId),
          part.map((e) => e.token),
          part.map((e) => e.status),
          part.map((e) => e.name ?? null),
          part.map((e) => e.email ?? null),
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
        `two active participants would hold the same token: ${(err as { detail?: string }).detail ?? ''}; nothing was imported`,
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
