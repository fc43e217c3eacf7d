/**
 * The simulated fleet registered in the scratch database, as `gate-cloud gates add` registers a
 * gate: the monitor tracks only the gates of the cloud's `gates` table and counts the others apart,
 * as unknown (cloud/fleet/admission.ts).
 */
import pg from 'pg'
import { addGate } from '../../cloud/gates/store.js'
import { gateIdOf } from './settings.js'

/** addGate calls at once (each its own transaction, a commit each) */
const CONCURRENCY = 8

/** Gates 0 .. count - 1 of the run's fleet added to the database at `url`; returns the seconds it took. */
export async function registerFleet(url: string, prefix: string, count: number): Promise<number> {
  const t0 = performance.now()
  const pool = new pg.Pool({ connectionString: url, max: CONCURRENCY })
  pool.on('error', () => {}) // the database is dropped at the end with FORCE
  try {
    let next = 0
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < count) await addGate(pool, gateIdOf(prefix, next++))
      }),
    )
    const r = await pool.query<{ n: string }>('SELECT count(*) AS n FROM gates')
    if (Number(r.rows[0]?.n) !== count)
      throw new Error(`${count} gates added, but the gates table holds ${r.rows[0]?.n}`)
  } finally {
    await pool.end()
  }
  return (performance.now() - t0) / 1000
}
