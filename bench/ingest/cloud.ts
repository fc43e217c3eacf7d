/** The cloud side of the ingest benchmark: its database made ready, its gates, its service, its roster. */
import type pg from 'pg'
import { addGate } from '../../cloud/gates/store.js'
import { maintainPartitions } from '../../cloud/partitions/manager.js'
import { startService } from '../harness.js'
import { BENCH_EVENT, ROSTER_SQL } from './workload.js'

/** The monthly partitions the records fall in: this month's, and the one a day ago (the backlog's). */
export async function monthlyPartitions(sql: pg.Client): Promise<void> {
  await maintainPartitions(
    sql,
    { interval: 'month', premake: 1, retentionDays: null, dropDetached: true },
    new Date(),
  )
  await maintainPartitions(
    sql,
    { interval: 'month', premake: 1, retentionDays: null, dropDetached: true },
    new Date(Date.now() - 86_400_000),
  )
}

/** Gates bench-0 .. bench-(count-1) registered in the benchmark's event: their keys, in order. */
export async function registerGates(pool: pg.Pool, count: number): Promise<string[]> {
  const keys: string[] = []
  for (let g = 0; g < count; g++) keys.push(await addGate(pool, `bench-${g}`, { eventId: BENCH_EVENT }))
  return keys
}

/**
 * `gate-cloud serve` on the database (BENCH_DE_OFF: no double-entry check; BENCH_PG_POOL_MAX: its
 * pool, 32 by default).
 */
export function startIngestService(dbUrl: string): ReturnType<typeof startService> {
  return startService({
    DATABASE_URL: dbUrl,
    ...(process.env['BENCH_DE_OFF'] ? { DOUBLE_ENTRY_WINDOW_MS: '0' } : {}),
    PG_POOL_MAX: process.env['BENCH_PG_POOL_MAX'] ?? '32',
    PARTITION_INTERVAL: 'month',
  })
}

/**
 * The venue's roster in the cloud, every record is checked against the gate's event: each call
 * imports participants up to P-`upTo` (after those already imported) and returns once the service
 * at `url` holds them all in its roster index.
 */
export function rosterImporter(sql: pg.Client, url: string): (upTo: number) => Promise<void> {
  let rostered = 0
  return async (upTo: number) => {
    await sql.query(ROSTER_SQL, [rostered + 1, upTo])
    // imported before the doors open, as a venue's roster is: vacuumed and analyzed, and read by
    // the service into its roster index (its event check's fast path)
    await sql.query('VACUUM (ANALYZE) participants')
    rostered = upTo
    const total = Number((await sql.query('SELECT count(*) AS n FROM participants')).rows[0].n)
    for (let i = 0; i < 1_200; i++) {
      const m = /^ingest_roster_index_entries (\d+)/m.exec(await (await fetch(`${url}/metrics`)).text())
      if (!m || Number(m[1]) >= total) break
      await new Promise((r) => setTimeout(r, 100))
    }
  }
}
