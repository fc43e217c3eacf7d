import type pg from 'pg'
import { type AccessPolicy, parsePolicy } from '../../shared/access/policy.js'
import { GateError } from '../../shared/errors.js'
import type { Queryable } from '../db/pool.js'
import { ensureEvent } from '../participants/import.js'

/**
 * An event's access policy, kept whole in every version (a decision records the version it was
 * made under). The cloud numbers the versions: a policy written is checked by the schema the gates
 * use (shared/access/policy.ts) and stored as the next version, whatever version it carried.
 */

/** The policy in force for an event (the highest version), or null. */
export async function currentPolicy(db: Queryable, eventId: string): Promise<AccessPolicy | null> {
  const r = await db.query<{ policy: AccessPolicy }>(
    'SELECT policy FROM access_policies WHERE event_id = $1 ORDER BY version DESC LIMIT 1',
    [eventId],
  )
  return r.rows[0]?.policy ?? null
}

/**
 * Store `input` as the event's next policy version (E_INPUT naming every problem if the schema
 * refuses it). Writers of one event take turns (a transaction lock on the event), so two at once
 * get two versions, never one.
 */
export async function putPolicy(pool: pg.Pool, eventId: string, input: unknown): Promise<AccessPolicy> {
  const body = typeof input === 'object' && input !== null ? { ...input, version: 0 } : input
  const parsed = parsePolicy(body)
  if (!parsed.ok)
    throw new GateError('E_INPUT', `the access policy is refused: ${parsed.problems.join('; ')}`, {
      context: { problems: parsed.problems },
    })
  const client = await pool.connect()
  try {
    await client.query('BEGIN')
    await ensureEvent(client, eventId)
    await client.query("SELECT pg_advisory_xact_lock(hashtext('access_policies'), hashtext($1))", [eventId])
    const next = await client.query<{ v: number }>(
      'SELECT coalesce(max(version), 0) + 1 AS v FROM access_policies WHERE event_id = $1',
      [eventId],
    )
    const policy: AccessPolicy = { ...parsed.policy, version: Number(next.rows[0]?.v) }
    await client.query('INSERT INTO access_policies (event_id, version, policy) VALUES ($1, $2, $3)', [
      eventId,
      policy.version,
      JSON.stringify(policy),
    ])
    // the event's figures by hour and day are in its venue's time zone
    await client.query('UPDATE events SET time_zone = $2 WHERE id = $1', [eventId, policy.timeZone])
    await client.query('COMMIT')
    return policy
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  } finally {
    client.release()
  }
}
