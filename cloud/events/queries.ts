import type { Queryable } from '../db/pool.js'

/** The event configuration: every event with its name. */
export async function eventConfig(db: Queryable): Promise<Record<string, unknown>> {
  const r = await db.query('SELECT id, name, created_at AS "createdAt" FROM events ORDER BY id', [])
  return { events: r.rows }
}
